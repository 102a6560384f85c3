"""README "Run it in production", tested as far as a test can: the install names the extra
that brings the PostgreSQL driver (and its absence is one line, exit 2), the README's steps and
the shipped crontab run as written with their folders moved under a temporary directory, the
due job's output is JSON Lines, and the systemd units verify and name real commands.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from flightsync.config import ENV_VARS
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from flightsync.store._engine import POSTGRES_INSTALL

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
UNITS = REPO / "config" / "systemd"
ENV_EXAMPLE = REPO / "config" / "flightsync.env.example"
ENV_FILE = "/etc/flightsync/flightsync.env"
DAY = "2026-02-25"


def _production_section() -> str:
    return README.split("## Run it in production", 1)[1].split("\n## ", 1)[0]


def _moved(text: str, root: Path) -> str:
    """``text`` with the production layout's folders under ``root`` and the venv's bin."""
    text = text.replace("/opt/flightsync/bin", str(BIN))
    for folder in ("/etc/flightsync", "/var/lib/flightsync", "/var/log/flightsync"):
        text = text.replace(folder, f"{root}{folder}")
    return text


def _env_file(root: Path, database_url: str, base_url: str, **extra: str) -> Path:
    """The shipped example filled in as the README says (state dir, database, credentials),
    with the providers pointed at a sandbox server, installed 0600 where the jobs read it."""
    sandbox = sandbox_environment(base_url)
    lines = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        key = line.partition("=")[0]
        if line.startswith("#") or "=" not in line:
            lines.append(line)
        elif key == "FLIGHTSYNC_DATABASE_URL":
            lines.append(f"{key}={database_url}")
        elif key in sandbox:
            lines.append(f"{key}={sandbox[key]}")
        else:
            lines.append(_moved(line, root))
    lines += [f"{k}={v}" for k, v in sandbox.items() if k.endswith("_BASE_URL")]
    lines += [f"{k}={v}" for k, v in extra.items()]
    path = Path(_moved(ENV_FILE, root))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    for folder in ("/var/lib/flightsync", "/var/log/flightsync"):  # the README's install -d
        Path(f"{root}{folder}").mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _sh(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("FLIGHTSYNC_", "FLIGHT_SYNC_"))}
    return subprocess.run(["/bin/sh", "-c", script], env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as server:
        yield server


# --- the driver --------------------------------------------------------------------------

def test_readme_install_names_the_extra_that_brings_the_postgres_driver() -> None:
    """The production install command installs the `[postgres]` extra, the extra holds
    psycopg, and the missing-driver message names that same command."""
    installs = [line for line in _production_section().splitlines() if "pip install" in line]
    assert installs and all("[postgres]" in line for line in installs), installs
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extra = project["project"]["optional-dependencies"]["postgres"]
    assert any(req.startswith("psycopg") for req in extra), extra
    assert "[postgres]" in POSTGRES_INSTALL


@pytest.mark.parametrize("command", [["status"], ["migrate"], ["sync", "LH400", "--date", DAY]])
def test_a_missing_postgres_driver_is_one_line_with_the_install_command(
        command: list[str]) -> None:
    """With psycopg not importable, a PostgreSQL URL is refused with one `error:` line naming
    the install command, exit 2, no traceback and no password."""
    probe = ("import sys\n"
             "sys.modules['psycopg'] = None  # as if the extra were not installed\n"
             "sys.argv = ['flightsync', *sys.argv[1:]]\n"
             "from flightsync.cli import main\n"
             "main()\n")
    env = {**os.environ, "FLIGHTSYNC_DATABASE_URL":
           "postgresql+psycopg://fs:hunter2-secret@127.0.0.1:1/flights"}
    done = subprocess.run([sys.executable, "-c", probe, *command], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if not line.startswith("{")]
    assert errors == [f"error: PostgreSQL needs the psycopg driver, which is not installed: "
                      f"{POSTGRES_INSTALL}"]
    assert "Traceback" not in done.stderr and "hunter2" not in done.stdout + done.stderr
    assert json.loads(done.stdout)["error"]["code"] == "invalid_config"


# --- the README's steps and the crontab, as written ---------------------------------------

def _readme_setup_script(root: Path) -> str:
    """The README's last install step (migrate, then providers --check) as the service user
    runs it, with the folders moved."""
    line = next(line for line in _production_section().splitlines()
                if "sudo -u flightsync sh -c" in line)
    return _moved(shlex.split(line.strip())[-1], root)


def _cron_jobs(root: Path) -> list[tuple[str, str]]:
    """``(schedule, command)`` of every job in crontab.example, folders moved."""
    jobs = []
    for line in (REPO / "crontab.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line):
            fields = line.split(None, 5)
            jobs.append((" ".join(fields[:5]), _moved(fields[5], root)))
    return jobs


def _cron_path(root: Path) -> str:
    text = (REPO / "crontab.example").read_text(encoding="utf-8")
    return _moved(re.search(r"^PATH=(.*)$", text, re.M).group(1), root)  # type: ignore[union-attr]


def _due_job(root: Path) -> str:
    return next(cmd for schedule, cmd in _cron_jobs(root) if "batch --due" in cmd)


def _json_lines(path: Path) -> list[dict[str, object]]:
    """Every line of ``path`` parsed as JSON (fails on the first line that is not)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.postgres
def test_production_steps_on_postgresql(pg_url: str, tmp_path: Path, sandbox: Sandbox) -> None:
    """With the README's environment file and a PostgreSQL URL: its setup step migrates and
    checks the credentials, a sync writes to PostgreSQL, the crontab's due job (migrate, then
    batch --due) appends its JSON line, `status` reports the database, and a `--sandbox` sync
    writes nothing there."""
    env_file = _env_file(tmp_path, pg_url, sandbox.base_url)
    assert env_file.stat().st_mode & 0o777 == 0o600
    setup = _sh(_readme_setup_script(tmp_path))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "check: lufthansa: ok" in setup.stderr

    with_env = f"set -a; . {env_file}; set +a; {BIN}/flightsync"
    synced = _sh(f"{with_env} sync LH400 --date {DAY}")
    assert synced.returncode == 0, synced.stderr
    due = _sh(_due_job(tmp_path), {"PATH": _cron_path(tmp_path)})
    assert due.returncode == 0, due.stderr
    lines = _json_lines(tmp_path / "var/log/flightsync/due.log")
    assert len(lines) == 1 and "summary" in lines[0], lines

    status = _sh(f"{with_env} status")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["database"]["url"].startswith("postgresql+psycopg://")
    assert data["database"]["flights"] >= 1

    engine = sa.create_engine(pg_url)
    try:
        def flights() -> int:
            with engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM flight")).scalar_one())
        before = flights()
        fake = _sh(f"{with_env} --sandbox sync BA117 --date {DAY}")
        assert fake.returncode == 0, fake.stderr
        assert flights() == before
    finally:
        engine.dispose()


def test_crontab_due_job_works_as_pasted_and_logs_json_lines(
        tmp_path: Path, sandbox: Sandbox) -> None:
    """The due job, run as cron would (its PATH, sh), migrates and syncs with the
    environment file's credentials; due.log stays JSON Lines whatever happens (a run, a run
    switched off, a run whose config is broken: its `error:` line goes to due.stderr.log)."""
    database = f"sqlite:///{tmp_path}/var/lib/flightsync/flightsync.db"
    env_file = _env_file(tmp_path, database, sandbox.base_url)
    cron = {"PATH": _cron_path(tmp_path)}
    setup = _sh(_readme_setup_script(tmp_path))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    with_env = f"set -a; . {env_file}; set +a; {BIN}/flightsync"
    assert _sh(f"{with_env} sync LH400 --date {DAY}").returncode == 0

    first = _sh(_due_job(tmp_path), cron)
    assert first.returncode == 0, first.stderr
    with env_file.open("a", encoding="utf-8") as out:
        out.write("FLIGHT_SYNC_ENABLED=false\n")
    assert _sh(_due_job(tmp_path), cron).returncode == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("batch: {size: -1}\n", encoding="utf-8")
    with env_file.open("a", encoding="utf-8") as out:
        out.write(f"FLIGHTSYNC_CONFIG={broken}\n")
    assert _sh(_due_job(tmp_path), cron).returncode == 2

    lines = _json_lines(tmp_path / "var/log/flightsync/due.log")
    assert "summary" in lines[0] and lines[1].get("skipped") is True, lines
    assert len(lines) == 2  # the broken run stopped at migrate, before the due job
    stderr_log = (tmp_path / "var/log/flightsync/due.stderr.log").read_text(encoding="utf-8")
    assert any(line.startswith("error: ") and "batch.size" in line
               for line in stderr_log.splitlines()), stderr_log
    assert (tmp_path / "var/lib/flightsync/flightsync.db").exists()


def test_every_flightsync_invocation_of_crontab_and_units_is_a_real_command(
        tmp_path: Path) -> None:
    """Each `flightsync ...` the crontab and the systemd units run parses: its command and
    options exist (`--help` after them exits 0), and the schedules have five fields."""
    invocations: list[list[str]] = []
    for schedule, command in _cron_jobs(tmp_path):
        assert len(schedule.split()) == 5
        for part in re.split(r"&&|\|\||;|\|", command):
            words = shlex.split(re.sub(r"\d?[<>]>?\s*\S+", "", part))  # no redirections
            if words and words[0] == "flightsync":
                invocations.append(words[1:])
    for unit in UNITS.glob("*.service"):
        for key, value in _unit(unit)["Service"].items():
            if key.startswith("execstart"):
                words = shlex.split(value)
                assert words[0] == "/opt/flightsync/bin/flightsync", value
                invocations.append(words[1:])
    assert len(invocations) >= 5
    for args in invocations:
        done = subprocess.run([str(BIN / "flightsync"), *args, "--help"], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, (args, done.stderr)


# --- systemd --------------------------------------------------------------------------------

def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read(path, encoding="utf-8")
    return parser


def test_systemd_units_are_wired_to_the_production_layout() -> None:
    """Each service runs as flightsync with the README's environment file and a private
    state directory, the due service migrates before `batch --due` and treats the SIGTERM
    exit (130) as a clean stop, each timer starts its service on a calendar, and the
    webhook server is a long-running service restarted on failure."""
    services = {p.stem: _unit(p) for p in UNITS.glob("*.service")}
    timers = {p.stem: _unit(p) for p in UNITS.glob("*.timer")}
    assert set(services) == {"flightsync-due", "flightsync-check", "flightsync-serve"}
    assert set(timers) == {"flightsync-due", "flightsync-check"}
    for name, unit in services.items():
        service = unit["Service"]
        assert service["User"] == "flightsync"
        assert service["Type"] == ("simple" if name == "flightsync-serve" else "oneshot")
        assert service["EnvironmentFile"] == ENV_FILE
        assert service["StateDirectory"] == "flightsync"
        assert service["StateDirectoryMode"] == "0700"
        if name in timers:
            assert "OnCalendar" in timers[name]["Timer"]
            assert timers[name]["Install"]["WantedBy"] == "timers.target"
    serve = services["flightsync-serve"]
    assert serve["Service"]["ExecStart"].split()[1] == "serve"
    assert serve["Service"]["Restart"] == "on-failure"
    assert serve["Install"]["WantedBy"] == "multi-user.target"
    due = services["flightsync-due"]["Service"]
    assert due["ExecStartPre"].endswith("flightsync -q migrate")
    assert due["ExecStart"].endswith("flightsync batch --due")
    assert due["SuccessExitStatus"] == "130"
    assert due["StandardOutput"] == "append:/var/log/flightsync/due.log"
    assert services["flightsync-check"]["Service"]["ExecStart"].endswith("status --check")
    assert f"-m 0600 config/flightsync.env.example {ENV_FILE}" in _production_section()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts every unit without a warning (unknown keys, bad
    values), with the flightsync binary of this venv standing in for /opt's."""
    for unit in UNITS.iterdir():
        text = unit.read_text(encoding="utf-8").replace("/opt/flightsync/bin", str(BIN))
        (tmp_path / unit.name).write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *sorted(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_the_environment_file_names_only_variables_flightsync_reads() -> None:
    """Every variable of config/flightsync.env.example is one the config loader reads, and
    every provider credential variable is in it."""
    names = {line.lstrip("#").partition("=")[0]
             for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
             if re.match(r"^#?[A-Z_]+=", line)}
    assert names and names <= set(ENV_VARS), names - set(ENV_VARS)
    credentials = {v for v in ENV_VARS if v.endswith(("_ID", "_SECRET", "_KEY"))
                   and not v.startswith("FLIGHTSYNC_")}
    assert credentials <= names, credentials - names
