"""Run the real CLI against a running sandbox over loopback, and look at what it wrote.

``sandbox_cli(state_dir, config)`` starts a :class:`Sandbox` with ``config`` and yields a
:class:`SandboxCli`: ``run(...)`` invokes ``flightsync.cli.app`` in-process through Typer's
CliRunner with the sandbox's environment (every provider pointed at it, its credentials) and
the test's hermetic ``FLIGHTSYNC_STATE_DIR``; ``requests(...)`` reads the sandbox's counters and
``count(...)`` / ``rows(...)`` read the database the CLI wrote (SQLite in the state directory
unless a database URL is given). Test modules wrap it in their own fixtures with the
SandboxConfig they need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
import yaml
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.providers import registry
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment

TABLES = ("flight", "flight_change", "source_observation", "conflict", "sync_run")


@dataclass(frozen=True)
class CliResult:
    """One CLI invocation: exit code, stdout parsed as JSON (None when it is not JSON)."""

    exit_code: int
    data: Any
    stdout: str
    stderr: str

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


@dataclass
class SandboxCli:
    sandbox: Sandbox
    state_dir: Path
    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, *args: str, stdin: str | bytes | None = None, config: Path | None = None,
            env: Mapping[str, str] | None = None) -> CliResult:
        """``flightsync [--config config] args...`` with JSON on stdout (not a terminal)."""
        argv = [*(["--config", str(config)] if config is not None else []), *args]
        try:
            result = self.runner.invoke(app, argv, input=stdin, env={**self.env, **(env or {})})
        finally:
            # The CLI configures structlog for its own stderr; sandbox threads log after it.
            structlog.reset_defaults()
            structlog.contextvars.clear_contextvars()
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        try:
            data = json.loads(result.stdout) if result.stdout.strip() else None
        except json.JSONDecodeError:
            data = None
        return CliResult(result.exit_code, data, result.stdout, result.stderr)

    def sync(self, flight: str, day: str, *extra: str, config: Path | None = None) -> CliResult:
        return self.run("sync", flight, "--date", day, *extra, config=config)

    def requests(self, provider: str | None = None) -> int:
        """Data calls the sandbox answered (one provider's, or all providers' together)."""
        stats = self.sandbox.stats()
        names = [provider] if provider else list(stats)
        return sum(stats[name]["requests"] for name in names)

    def scenario(self, **keys: Any) -> None:
        """Replace these scenario keys (as in a scenario YAML) while the sandbox runs."""
        self.sandbox.set_scenario(keys)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def count(self, table: str) -> int:
        assert table in TABLES
        return int(self.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])

    def counts(self) -> dict[str, int]:
        """Row counts of every table a sync writes (all zero before the database exists)."""
        if self.database_url.startswith("sqlite") and not self.sqlite_path.exists():
            return dict.fromkeys(TABLES, 0)
        return {table: self.count(table) for table in TABLES}

    @property
    def sqlite_path(self) -> Path:
        return self.state_dir / "flightsync.db"

    def write_config(self, name: str, settings: Mapping[str, Any],
                     policy: Mapping[str, Any] | None = None) -> Path:
        """A YAML config file (and, given ``policy``, a policy file beside it)."""
        folder = self.state_dir.parent / "configs"
        folder.mkdir(exist_ok=True)
        data = dict(settings)
        if policy is not None:
            policy_path = folder / f"{name}.policy.yaml"
            policy_path.write_text(yaml.safe_dump(dict(policy)), encoding="utf-8")
            data["policy"] = policy_path.name
        path = folder / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path


@contextmanager
def sandbox_cli(state_dir: Path, config: SandboxConfig | None = None, *,
                database_url: str | None = None,
                extra_env: Mapping[str, str] | None = None) -> Iterator[SandboxCli]:
    """A running sandbox and a CLI pointed at it; stops the sandbox afterwards."""
    with Sandbox(config or SandboxConfig()) as sandbox:
        env = {**sandbox_environment(sandbox.base_url), "FLIGHTSYNC_STATE_DIR": str(state_dir),
               "FLIGHTSYNC_RAISE_ERRORS": "1", **(extra_env or {})}
        if database_url is not None:
            env["FLIGHTSYNC_DATABASE_URL"] = database_url
        url = database_url or f"sqlite:///{state_dir / 'flightsync.db'}"
        cli = SandboxCli(sandbox=sandbox, state_dir=state_dir, database_url=url, env=env)
        try:
            yield cli
        finally:
            structlog.reset_defaults()


def only_providers(*names: str) -> dict[str, str]:
    """Extra environment leaving every other built-in provider without credentials (an empty
    variable counts as unset), for tests whose outcome rests on these providers' votes."""
    return {var: "" for name in registry.BUILTINS if name not in names
            for var in registry.get(name).credential_env}


def batch_csv(flights: Sequence[tuple[str, str]]) -> str:
    return "flight,date\n" + "".join(f"{f},{d}\n" for f, d in flights)


def batch_jsonl(flights: Sequence[tuple[str, str]]) -> str:
    return "".join(json.dumps({"flight": f, "date": d}) + "\n" for f, d in flights)


# Packages a whole-process command pays for on import (issue 7); stdout and stderr are pipes
# in these runs, so the CLI prints JSON and logs JSON lines.
HEAVY = ("sqlalchemy", "httpx", "alembic", "numpy", "rich", "pygments", "stamina",
         "prometheus_client")


def loaded_heavy_modules(cli: SandboxCli, *args: str) -> tuple[int, set[str]]:
    """Run `flightsync args...` in a fresh interpreter; its exit code and which of the heavy
    packages it imported."""
    probe = ("import runpy, sys\n"
             "sys.argv = ['flightsync', *sys.argv[1:]]\n"
             "code = 0\n"
             "try:\n"
             "    runpy.run_module('flightsync', run_name='__main__')\n"
             "except SystemExit as exc:\n"
             "    code = exc.code or 0\n"
             f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
             "sys.stderr.write('\\nLOADED ' + ' '.join(heavy) + '\\n')\n"
             "sys.exit(code)\n")
    env = {**os.environ, **cli.env}
    done = subprocess.run([sys.executable, "-c", probe, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("LOADED")][-1]
    return done.returncode, set(line.split()[1:])
