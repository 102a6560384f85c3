"""The CLI frame: help for every command, global options, the one error boundary (docs/CONTRACTS.md
section 2), JSON vs terminal output, the on/off switch, --sandbox wiring, logging and
redaction, and the light import path behind `flightsync --help`.

The engine is replaced at the CLI's one seam (``flightsync.cli._engine.open_engine``) by
functions that raise or record; the commands' real engine calls are exercised end to end by
tests/test_quickstart.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.main import get_command
from typer.testing import CliRunner

from flightsync import errors, logs
from flightsync.cli import _engine, _state, app
from flightsync.config import Settings
from flightsync.engine import BatchResult
from flightsync.models import PROVIDER_NAMES

runner = CliRunner()



def command_paths() -> list[tuple[str, ...]]:
    """Every command and subcommand, as the words typed after `flightsync`."""
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(get_command(app), ())
    return paths


def engine_raising(exc: BaseException) -> Callable[..., Any]:
    @contextmanager
    def opener(settings: Settings, *, run_kind: str, run_id: str) -> Iterator[Any]:
        raise exc
        yield  # pragma: no cover

    return opener


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- help ------------------------------------------------------------------------------------

def test_top_level_help_lists_every_command() -> None:
    """`flightsync --help` exits 0 and names every top-level command and global option."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for path in command_paths():
        if len(path) == 1:
            assert path[0] in result.stdout
    for option in ("--config", "--json", "--sandbox", "--verbose", "-q"):
        assert option in result.stdout


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """Each command and subcommand answers --help with exit 0 and its own description."""
    command: Any = get_command(app)
    for name in path:
        command = command.commands[name]
    assert command.help and command.help.strip()
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    assert command.help.strip().split()[0] in result.stdout
    assert f"Usage: flightsync {' '.join(path)}" in " ".join(result.stdout.split())


def test_design_commands_exist() -> None:
    """The commands of docs/CONTRACTS.md section 1 are all registered."""
    expected = {("sync",), ("batch",), ("ingest-webhook",), ("status",), ("migrate",),
                ("migrate", "upgrade"), ("migrate", "downgrade"), ("migrate", "current"),
                ("migrate", "history"), ("conflicts", "list"), ("conflicts", "resolve"),
                ("explain",), ("breaker", "reset"), ("cache", "clear"), ("providers",),
                ("sources",), ("sandbox", "serve")}
    assert expected <= set(command_paths())


# --- the error boundary ----------------------------------------------------------------------

def _instances() -> list[errors.FlightsyncError]:
    classes: list[type[errors.FlightsyncError]] = []
    pending = [errors.FlightsyncError]
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending.extend(cls.__subclasses__())
    out = []
    for cls in classes:
        message = f"{cls.__name__} happened: see the manual"
        if issubclass(cls, errors.ProviderError | errors.CircuitOpenError):
            out.append(cls(message, provider="lufthansa"))
        else:
            out.append(cls(message))
    return out


@pytest.mark.parametrize("error", _instances(), ids=lambda e: type(e).__name__)
def test_boundary_maps_each_error_class(monkeypatch: pytest.MonkeyPatch,
                                       error: errors.FlightsyncError) -> None:
    """Every FlightsyncError becomes its class's exit code, one `error:` line on stderr, the
    JSON error object on stdout, and no traceback."""
    monkeypatch.setattr(_engine, "open_engine", engine_raising(error))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == type(error).exit_code
    assert error_lines(result.stderr) == [f"error: {error.message}"]
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout) == {"error": {"code": error.code, "message": error.message}}


def test_multiline_message_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message with line breaks is still printed as a single line."""
    monkeypatch.setattr(_engine, "open_engine",
                        engine_raising(errors.StoreError("database gone\naway")))
    result = runner.invoke(app, ["status"])
    assert error_lines(result.stderr) == ["error: database gone away"]
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_exception_is_exit_70_with_details_in_the_log(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug is exit 70 with one `error:` line; the traceback goes to the (JSON) log only."""
    monkeypatch.setattr(_engine, "open_engine", engine_raising(KeyError("boom")))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 70
    assert len(error_lines(result.stderr)) == 1
    assert "KeyError" in error_lines(result.stderr)[0]
    assert not any(line.startswith("Traceback") for line in result.stderr.splitlines())
    assert json.loads(result.stdout)["error"]["code"] == "internal_error"
    log_events = [json.loads(line) for line in result.stderr.splitlines()
                  if line.startswith("{")]
    crash = [e for e in log_events if e["event"] == "cli.internal_error"]
    assert crash and "KeyError" in crash[0]["exception"]
    assert crash[0]["run_id"] in error_lines(result.stderr)[0]


def test_raise_errors_lets_unknown_exceptions_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """With FLIGHTSYNC_RAISE_ERRORS=1 a bug propagates instead of becoming exit 70."""
    monkeypatch.setenv("FLIGHTSYNC_RAISE_ERRORS", "1")
    monkeypatch.setattr(_engine, "open_engine", engine_raising(KeyError("boom")))
    with pytest.raises(KeyError, match="boom"):
        runner.invoke(app, ["status"], catch_exceptions=False)


def test_raise_errors_keeps_deliberate_errors_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLIGHTSYNC_RAISE_ERRORS=1 does not change how FlightsyncErrors are reported."""
    monkeypatch.setenv("FLIGHTSYNC_RAISE_ERRORS", "1")
    monkeypatch.setattr(_engine, "open_engine", engine_raising(errors.SchemaBehindError("old")))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == errors.SchemaBehindError.exit_code


@pytest.mark.parametrize("argv", [
    ["--bogus", "status"],
    ["sync", "--date", "2026-02-25"],
    ["batch", "--limit", "zero", "x.csv"],
    ["nonsense"],
    ["conflicts", "resolve", "7"],
    ["conflicts", "resolve", "7", "--use", "lufthansa", "--value", "C16"],
    ["batch"],
    ["batch", "file.csv", "--due"],
    ["cache", "clear", "LH400"],
])
def test_usage_errors_are_exit_2(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """Usage errors exit 2 with one `error:` line (plus usage) and never reach the engine."""
    monkeypatch.setattr(_engine, "open_engine", engine_raising(AssertionError("engine")))
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert len(error_lines(result.stderr)) == 1
    assert json.loads(result.stdout)["error"]["code"] == "usage"


@pytest.mark.parametrize(("argv", "code"), [
    (["sync", "LH40000", "--date", "2026-02-25"], "invalid_flight"),
    (["sync", "LH400", "--date", "2026-02-30"], "invalid_date"),
    (["sync", "LH400", "--date", "25.02.2026"], "invalid_date"),
    (["explain", "4", "--date", "2026-02-25"], "invalid_flight"),
    (["cache", "clear", "LH400", "--date", "tomorrow"], "invalid_date"),
])
def test_bad_flight_or_date_is_exit_2(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                      code: str) -> None:
    """Flight designators and dates go through FlightQuery.parse: exit 2, named code."""
    monkeypatch.setattr(_engine, "open_engine", engine_raising(AssertionError("engine")))
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == code


def test_missing_batch_file_is_exit_2(tmp_path: Path) -> None:
    """A batch file that cannot be read at all is exit 2 and names the file."""
    missing = tmp_path / "absent.csv"
    result = runner.invoke(app, ["batch", str(missing)])
    assert result.exit_code == 2
    assert str(missing) in error_lines(result.stderr)[0]


# --- output modes, the switch, settings wiring ----------------------------------------------

def recording_engine(seen: dict[str, Any], answer: Any) -> Callable[..., Any]:
    """An engine seam that records the settings it was opened with and answers ``status``."""

    class Recorder:
        def status(self) -> Any:
            return answer

    @contextmanager
    def opener(settings: Settings, *, run_kind: str, run_id: str) -> Iterator[Any]:
        seen.update(settings=settings, run_kind=run_kind, run_id=run_id)
        yield Recorder()

    return opener


def test_json_after_the_command_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a terminal, output is a table unless --json is given, before or after the command."""
    monkeypatch.setattr(_state, "_isatty", lambda stream: True)
    status = {"breakers": {}, "cache": {"entries": 0}, "tokens": {}, "database": {},
              "last_run": None, "alerts": []}
    monkeypatch.setattr(_engine, "open_engine", recording_engine({}, status))
    table = runner.invoke(app, ["status"])
    assert table.exit_code == 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(table.stdout)
    for argv in (["status", "--json"], ["--json", "status"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0
        assert json.loads(result.stdout) == status


def test_json_after_a_group_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a terminal, `conflicts --json list` (and `breaker`, `cache`) print JSON, as
    `--json` after a command's own name does."""
    monkeypatch.setattr(_state, "_isatty", lambda stream: True)

    class Operator:
        def conflicts(self, *, include_resolved: bool = False,
                      limit: int | None = None) -> dict[str, Any]:
            return {"conflicts": [], "more": False}

        def reset_breaker(self, name: str | None = None) -> list[str]:
            return ["lufthansa"]

        def clear_cache(self, query: Any = None) -> int:
            return 3

    @contextmanager
    def opener(settings: Settings, *, run_kind: str, run_id: str) -> Iterator[Any]:
        yield Operator()

    monkeypatch.setattr(_engine, "open_engine", opener)
    for argv, expected in ((["conflicts", "--json", "list"], {"conflicts": [], "more": False}),
                           (["breaker", "--json", "reset"], {"reset": ["lufthansa"]}),
                           (["cache", "--json", "clear"],
                            {"cleared": 3, "flight": None, "date": None})):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == expected


def test_status_check_exits_3_naming_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    """`status --check` exits 3 and names each alert; without --check the same status is 0."""
    alert = "breaker lufthansa open for 12 minutes"
    status = {"breakers": {}, "cache": {}, "tokens": {}, "database": {}, "last_run": None,
              "alerts": [alert]}
    monkeypatch.setattr(_engine, "open_engine", recording_engine({}, status))
    checked = runner.invoke(app, ["status", "--check"])
    assert checked.exit_code == 3
    assert alert in checked.stderr
    assert runner.invoke(app, ["status"]).exit_code == 0


@pytest.mark.parametrize("argv", [
    ["sync", "LH400", "--date", "2026-02-25"],
    ["batch", "--due"],
    ["batch", "missing-file.csv"],
    ["ingest-webhook", "-"],
])
def test_switched_off_jobs_exit_0(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """FLIGHT_SYNC_ENABLED=false: sync, batch and ingest-webhook say why and exit 0 without
    touching the engine or their input."""
    monkeypatch.setenv("FLIGHT_SYNC_ENABLED", "false")
    monkeypatch.setattr(_engine, "open_engine", engine_raising(AssertionError("engine")))
    result = runner.invoke(app, argv)
    assert result.exit_code == 0
    assert "FLIGHT_SYNC_ENABLED=false" in result.stderr
    assert json.loads(result.stdout)["skipped"] is True


def test_switched_off_by_the_config_file_says_so(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """`enabled: false` in the config file (the variable unset) is named as the reason."""
    monkeypatch.delenv("FLIGHT_SYNC_ENABLED", raising=False)
    monkeypatch.setattr(_engine, "open_engine", engine_raising(AssertionError("engine")))
    config = tmp_path / "off.yaml"
    config.write_text("enabled: false\n")
    result = runner.invoke(app, ["--config", str(config), "batch", "--due"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["reason"] == (
        "flightsync is switched off (enabled: false in the config file)")


def test_batch_needs_a_file_or_due_and_says_which_mistake(tmp_path: Path) -> None:
    """Neither FILE nor --due asks for one of them; both at once says not both (exit 2)."""
    neither = runner.invoke(app, ["batch"])
    both = runner.invoke(app, ["batch", str(tmp_path / "f.csv"), "--due"])
    assert neither.exit_code == both.exit_code == 2
    assert "or --due: one of them" in neither.stderr
    assert "or --due: not both" in both.stderr


def test_settings_layers_reach_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine gets settings from --config, the environment and the run's run id."""
    config = tmp_path / "fs.yaml"
    config.write_text("database_url: sqlite:////from/yaml.db\nbatch: {size: 3}\n")
    monkeypatch.setenv("FLIGHTSYNC_DATABASE_URL", "sqlite:////from/env.db")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(_engine, "open_engine", recording_engine(seen, {"alerts": []}))
    result = runner.invoke(app, ["--config", str(config), "status"])
    assert result.exit_code == 0
    assert seen["settings"].database_url == "sqlite:////from/env.db"
    assert seen["settings"].batch.size == 3
    assert seen["run_kind"] == "status"
    assert len(seen["run_id"]) >= 8


def test_sandbox_option_points_every_provider_at_a_running_sandbox(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--sandbox starts the sandbox, hands the engine every provider's base URL and sandbox
    credentials, and stops the sandbox when the command ends."""
    seen: dict[str, Any] = {}
    base_urls: list[str] = []

    def opener(settings: Settings, *, run_kind: str, run_id: str) -> Any:
        seen["settings"] = settings
        url = settings.providers["lufthansa"].base_url
        assert url is not None
        base_urls.append(url)
        with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=5) as answer:
            assert answer.status == 200  # it is serving while the command runs
        return recording_engine({}, {"alerts": []})(settings, run_kind=run_kind,
                                                     run_id=run_id)

    monkeypatch.setattr(_engine, "open_engine", opener)
    result = runner.invoke(app, ["--sandbox", "status"])
    assert result.exit_code == 0
    providers = seen["settings"].providers
    assert set(providers) == set(PROVIDER_NAMES)
    for settings in providers.values():
        assert settings.base_url and settings.base_url.startswith("http://127.0.0.1:")
        assert settings.credentials and set(settings.credentials.values()) == {"sandbox"}
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base_urls[0]}/_sandbox/stats", timeout=5)


# --- logging ---------------------------------------------------------------------------------

def test_log_lines_carry_run_id_and_mask_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON log lines carry the run id; values under secret keys and registered secret values
    are masked wherever they appear."""
    logs.register_secret("s3cr3t-value-123")
    logs.configure_logging(verbosity=0, json=True, run_id="run-abc")
    log = structlog.get_logger("test")
    log.warning("provider.fetch.failed", provider="lufthansa", client_secret="plain",
                url="https://x.test/?key=s3cr3t-value-123",
                headers={"Authorization": "Bearer t0ken", "Accept": "json"})
    line = json.loads(capsys.readouterr().err.strip())
    assert line["run_id"] == "run-abc"
    assert line["client_secret"] == logs.MASK
    assert line["url"] == f"https://x.test/?key={logs.MASK}"
    assert line["headers"] == {"Authorization": logs.MASK, "Accept": "json"}
    assert "s3cr3t" not in json.dumps(line)


def test_verbosity_sets_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    """Default shows warnings, -v adds info, -q keeps errors only."""
    for verbosity, shown in ((0, {"warning", "error"}), (1, {"info", "warning", "error"}),
                             (-1, {"error"})):
        logs.configure_logging(verbosity=verbosity, json=True, run_id=None)
        log = structlog.get_logger("test")
        log.info("e.info")
        log.warning("e.warning")
        log.error("e.error")
        levels = {json.loads(line)["level"] for line in capsys.readouterr().err.splitlines()}
        assert levels == shown


def test_credentials_never_reach_stderr_or_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configured credential that ends up in an error message is masked in the `error:` line,
    the JSON error and the log."""
    secret = "am-secret-0042"
    monkeypatch.setenv("AMADEUS_CLIENT_ID", "id-0042-client")
    monkeypatch.setenv("AMADEUS_CLIENT_SECRET", secret)
    for error in (RuntimeError(f"token call sent {secret}"),
                  errors.ProviderAuthError(f"refused {secret}", provider="amadeus")):
        monkeypatch.setattr(_engine, "open_engine", engine_raising(error))
        result = runner.invoke(app, ["status"])
        assert result.exit_code in (70, errors.ProviderAuthError.exit_code)
        assert secret not in result.stderr and secret not in result.stdout
        assert logs.MASK in error_lines(result.stderr)[0]


# --- startup ---------------------------------------------------------------------------------

HEAVY = ("sqlmodel", "sqlalchemy", "httpx", "alembic", "structlog", "pydantic", "yaml",
         "flightsync.engine", "flightsync.config", "rich")


def test_help_imports_nothing_heavy() -> None:
    """`flightsync --help` loads neither the database, HTTP, validation nor logging stacks."""
    script = (
        "import sys\n"
        "sys.argv = ['flightsync', '--help']\n"
        "from flightsync.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.')"
        " for h in heavy))\n"
        "sys.stderr.write(repr(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert "Usage: flightsync" in done.stdout
    assert done.stderr == "[]"


def test_version_prints_the_installed_distributions_version() -> None:
    """`--version` names the same version the installed distribution carries, and exits 0
    without running a command."""
    from importlib.metadata import version  # noqa: PLC0415

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"flightsync {version('flightsync')}\n"


def test_module_entry_point() -> None:
    """`python -m flightsync` runs the same CLI."""
    done = subprocess.run([sys.executable, "-m", "flightsync", "--help"], check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "Usage: flightsync" in done.stdout



# --- batch input and options ----------------------------------------------------------------

def test_batch_dry_run_reports_bad_lines_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--dry-run lists the distinct flights, reports bad lines by line number (exit 1) and
    never opens the engine."""
    monkeypatch.setattr(_engine, "open_engine", engine_raising(AssertionError("engine")))
    source = tmp_path / "flights.csv"
    source.write_text("flight,date\nLH400,2026-02-25\nlh 400,2026-02-25\nXX,2026-02-25\n"
                      "AF1,2026-02-26\n")
    result = runner.invoke(app, ["batch", str(source), "--dry-run"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["flights"] == [{"flight": "LH400", "date": "2026-02-25"},
                                 {"flight": "AF1", "date": "2026-02-26"}]
    assert [bad["line"] for bad in report["failed"]] == [4]
    strict = runner.invoke(app, ["batch", str(source), "--dry-run", "--strict"])
    assert strict.exit_code == 2


def test_batch_reads_stdin_and_passes_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """`batch -` reads JSON Lines from stdin; --concurrency overrides http.max_workers for this
    run; the exit code and JSON come from the engine's BatchResult."""
    seen: dict[str, Any] = {}

    class Recorder:
        def batch(self, queries: Any, *, notify: bool, progress: Any) -> BatchResult:
            seen.update(queries=list(queries), notify=notify)
            return BatchResult.of("r", (), datetime.now(UTC))

    @contextmanager
    def opener(settings: Settings, *, run_kind: str, run_id: str) -> Iterator[Any]:
        seen.update(settings=settings, run_kind=run_kind)
        yield Recorder()

    monkeypatch.setattr(_engine, "open_engine", opener)
    lines = '{"flight": "KL419", "date": "2026-02-25"}\n{"flight": "LH4", "date": "bad"}\n'
    result = runner.invoke(app, ["batch", "-", "--concurrency", "3", "--no-notify"], input=lines)
    assert seen["settings"].http.max_workers == 3
    assert [q.designator for q in seen["queries"]] == ["KL419"]
    assert seen["notify"] is False
    assert result.exit_code == 1  # the bad line
    assert [bad["line"] for bad in json.loads(result.stdout)["failed"]] == [2]


def test_terminal_tables_list_plain_values_and_never_split_a_token() -> None:
    """A table shows lists one item per line and flat mappings as `key: value` lines, not
    JSON; at a terminal too narrow for a name it ends the name in an ellipsis instead of
    folding its rest onto the next line (issue 20: no value split mid-token)."""
    from rich.console import Console  # noqa: PLC0415

    from flightsync.cli import _render  # noqa: PLC0415

    wide = Console(record=True, width=160, highlight=False)
    _render.records(wide, [{"name": "airfrance_klm", "carriers": ["AF", "KL"],
                            "values": {"lufthansa": "32N", "flightaware": None}}])
    text = wide.export_text()
    assert "lufthansa: 32N" in text and "flightaware: -" in text
    assert [line.split("│")[2].strip() for line in text.splitlines()
            if "airfrance_klm" in line or (line.count("│") == 4 and "KL" in line)] == ["AF", "KL"]
    assert '"' not in text and "[" not in text

    narrow = Console(record=True, width=12, highlight=False)
    _render.records(narrow, [{"name": "airfrance_klm"}])
    cut = narrow.export_text()
    assert "…" in cut
    assert "klm" not in cut and "airfrance_klm" not in cut
