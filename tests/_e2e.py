"""Shared helpers for the reliability tests: the real CLI (in process through Typer's runner,
or as a subprocess of the venv's `flightsync`) against a sandbox running as its own process
(`flightsync sandbox serve`), and integrity checks on what a run left in the database.

Not a test module (leading underscore): tests import it as ``from tests._e2e import ...``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
import yaml
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.models import PROVIDER_NAMES
from flightsync.sandbox import sandbox_environment

FLIGHTSYNC = Path(sys.executable).parent / "flightsync"
DAY = "2026-03-01"
PROVIDERS = PROVIDER_NAMES  # every built-in provider, from the one list that names them
OAUTH_PROVIDERS = ("amadeus", "lufthansa")
# A flight each provider covers, that at least two other providers cover too.
FLIGHT_OF = {"amadeus": "LH400", "lufthansa": "LH400", "airfrance_klm": "AF1006",
             "british_airways": "BA117", "flightaware": "LH400",
             "cirium": "LH400", "aviationstack": "LH400", "aerodatabox": "LH400"}
# The environment variables holding each provider's secret credential and its base URL.
SECRET_VAR = {"amadeus": "AMADEUS_CLIENT_SECRET", "lufthansa": "LUFTHANSA_CLIENT_SECRET",
              "airfrance_klm": "AFKLM_API_KEY", "british_airways": "BA_CLIENT_KEY",
              "flightaware": "FLIGHTAWARE_API_KEY", "cirium": "CIRIUM_APP_KEY",
              "aviationstack": "AVIATIONSTACK_ACCESS_KEY", "aerodatabox": "AERODATABOX_API_KEY"}
BASE_URL_VAR = {"amadeus": "AMADEUS_BASE_URL", "lufthansa": "LUFTHANSA_BASE_URL",
                "airfrance_klm": "AFKLM_BASE_URL", "british_airways": "BA_BASE_URL",
                "flightaware": "FLIGHTAWARE_BASE_URL", "cirium": "CIRIUM_BASE_URL",
                "aviationstack": "AVIATIONSTACK_BASE_URL", "aerodatabox": "AERODATABOX_BASE_URL"}
ROW_TABLES = ("flight", "flight_change", "source_observation", "conflict", "sync_run",
              "webhook_event")


@dataclass(frozen=True)
class Outcome:
    """One CLI invocation: exit code, stdout, stderr."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        """The JSON document on stdout (the last non-empty line)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"no JSON on stdout; stderr: {self.stderr[-1500:]}"
        return json.loads(lines[-1])

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The structlog JSON lines on stderr (those named ``name`` when given)."""
        found = []
        for line in self.stderr.splitlines():
            if line.startswith("{"):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if name is None or event.get("event") == name:
                    found.append(event)
        return found

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def assert_clean(self) -> None:
        """No traceback anywhere, and a failure is explained by exactly one `error:` line
        (a failed sync explains itself in its JSON instead)."""
        text = self.stdout + self.stderr
        assert "Traceback" not in text, text[-3000:]
        assert self.exit_code != 70, f"internal error: {self.stderr[-2000:]}"
        assert len(self.error_lines()) <= 1, self.stderr[-2000:]


def invoke(args: Sequence[str], env: Mapping[str, str | None] | None = None,
           stdin: bytes | None = None) -> Outcome:
    """The real CLI in this process (stdout and stderr are not terminals: JSON mode)."""
    try:
        result = CliRunner().invoke(app, list(args), env=dict(env or {}), input=stdin,
                                    catch_exceptions=True)
    finally:
        # The CLI configures structlog for its run; do not leak that into the next test.
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"the CLI raised {result.exception!r}") from result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def run(args: Sequence[str], env: Mapping[str, str], *, stdin: bytes | None = None,
        timeout: float = 120) -> Outcome:
    """The real CLI as a subprocess of the venv's `flightsync` script."""
    done = subprocess.run([str(FLIGHTSYNC), *args], env={**os.environ, **env}, input=stdin,
                          capture_output=True, timeout=timeout, check=False)
    return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"),
                   done.stderr.decode("utf-8", "replace"))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def write_config(path: Path, **sections: Any) -> Path:
    """A YAML config file with these top-level sections."""
    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


# --- the sandbox as its own process --------------------------------------------------------

@dataclass
class SandboxProcess:
    """`flightsync sandbox serve` on an ephemeral port, controlled over HTTP."""

    process: subprocess.Popen[bytes]
    base_url: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=10)

    def environment(self) -> dict[str, str]:
        return sandbox_environment(self.base_url)

    def scenario(self, **keys: Any) -> None:
        """Replace these scenario keys (faults, hang_seconds, ...) and zero the counters."""
        response = self.client.post("/_sandbox/scenario", json=keys)
        assert response.status_code == 200, response.text
        self.client.post("/_sandbox/reset").raise_for_status()

    def stats(self) -> dict[str, dict[str, int]]:
        response = self.client.get("/_sandbox/stats")
        response.raise_for_status()
        data: dict[str, dict[str, int]] = response.json()
        return data

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def sandbox_process(tmp: Path, scenario: Mapping[str, Any] | None = None
                    ) -> Iterator[SandboxProcess]:
    """Start the sandbox server process (with an optional scenario file) until the block ends."""
    args = [str(FLIGHTSYNC), "sandbox", "serve"]
    if scenario is not None:
        args += ["--scenario", str(write_config(tmp / "scenario.yaml", **scenario))]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTSYNC_")}
    env["FLIGHTSYNC_STATE_DIR"] = str(tmp / "sandbox-state")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=env)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("http://"):
        process.kill()
        process.wait()
        process.stdout.close()
        raise AssertionError(f"the sandbox did not announce its URL: {line!r}")
    server = SandboxProcess(process, line)
    try:
        yield server
    finally:
        server.stop()


# --- databases ------------------------------------------------------------------------------

def migrated_template(folder: Path) -> Path:
    """An empty SQLite database at the migration head, made once and copied into each test's
    state directory by :func:`seed_database` (migrating costs more than a whole sync)."""
    from flightsync.store import migrate  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "flightsync.db"
    migrate.upgrade(f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


def seed_database(template: Path, state_dir: Path) -> Path:
    """Copy the migrated template to where the CLI's default database lives."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = sqlite_file(state_dir)
    shutil.copyfile(template, target)
    target.chmod(0o600)
    return target


# --- what a run left behind ----------------------------------------------------------------

def sqlite_file(state_dir: Path) -> Path:
    return state_dir / "flightsync.db"


def row_counts(db: Path) -> dict[str, int]:
    """Rows per table (an absent database counts as empty)."""
    if not db.exists():
        return dict.fromkeys(ROW_TABLES, 0)
    with _connect(db) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ROW_TABLES}


@contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    # Read-write: the first opener after a crash must be able to recover the WAL.
    conn = sqlite3.connect(db, timeout=30)
    try:
        yield conn
    finally:
        conn.close()


def integrity_problems(db: Path) -> list[str]:
    """Everything wrong with the stored flights, as sentences (empty: consistent).

    - SQLite's own ``PRAGMA integrity_check`` and foreign keys;
    - each leg's audit trail replays, in version order, to the values stored in its row, the
      trail's latest version is the row's version, and no version was written by two runs
      (a lost update);
    - no half-applied flight: every run that audited one leg of a flight wrote every leg of
      it, legs are numbered 0..n-1, and a leg changed by a run has that run's observations.
    """
    from flightsync.models import OBSERVED_FIELDS  # noqa: PLC0415
    from flightsync.store import Database  # noqa: PLC0415
    from flightsync.store import repository as repo  # noqa: PLC0415

    problems: list[str] = []
    with _connect(db) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            problems.append(f"integrity_check: {check[:5]}")
        fk = conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            problems.append(f"foreign_key_check: {fk[:5]}")
        flights = conn.execute(
            "SELECT id, carrier, flight_number, suffix, departure_date, leg_index, version "
            "FROM flight ORDER BY id").fetchall()
        changes: dict[int, list[tuple[str, str | None, int, str | None]]] = {}
        for fid, name, new, version, run_id in conn.execute(
                "SELECT flight_id, field, new, version, run_id FROM flight_change "
                "ORDER BY version, id"):
            changes.setdefault(fid, []).append((name, new, version, run_id))
        observed = {(fid, run) for fid, run in conn.execute(
            "SELECT DISTINCT flight_id, run_id FROM source_observation")}
    database = Database.open(f"sqlite:///{db}")
    try:
        with database.session() as session:
            keys = list({(c, n, s, _day(d)) for _, c, n, s, d, _, _ in flights})
            stored = repo.load_legs(session, keys)
    finally:
        database.close()
    by_id = {leg.id: leg for legs in stored.values() for leg in legs}
    runs_of: dict[tuple[Any, ...], dict[str, set[int]]] = {}
    for fid, carrier, number, suffix, day, _leg, version in flights:
        leg = by_id[fid]
        trail = changes.get(fid, [])
        replayed: dict[str, str | None] = {}
        for name, new, _version, run_id in trail:
            replayed[name] = new
            runs_of.setdefault((carrier, number, suffix, day), {}).setdefault(
                run_id or "", set()).add(fid)
            if (fid, run_id) not in observed:
                problems.append(f"flight {fid}: run {run_id} changed it without observations")
        for name in OBSERVED_FIELDS:
            # The store treats an empty list (codeshares) and "not reported" alike.
            if name in replayed and _plain(replayed[name]) != _plain(
                    repo.encode(leg.values.get(name))):
                problems.append(f"flight {fid}: {name} stored {leg.values.get(name)!r}, "
                                f"audit trail says {replayed[name]}")
        writers: dict[int, set[str | None]] = {}
        for _, _, change_version, run_id in trail:
            writers.setdefault(change_version, set()).add(run_id)
        for change_version, authors in writers.items():
            if len(authors) > 1:  # two runs wrote the same version: one overwrote the other
                problems.append(f"flight {fid}: version {change_version} written by runs "
                                f"{sorted(map(str, authors))} (lost update)")
        latest = max((v for _, _, v, _ in trail), default=1)
        if latest != version:
            problems.append(f"flight {fid}: version {version}, audit trail ends at {latest}")
    for key, legs in stored.items():
        indexes = sorted(leg.leg_index for leg in legs)
        if indexes != list(range(len(indexes))):
            problems.append(f"flight {key}: legs {indexes}, expected 0..{len(indexes) - 1}")
    legs_of = {(c, n, s, d): {fid for fid, c2, n2, s2, d2, _, _ in flights
                              if (c2, n2, s2, d2) == (c, n, s, d)}
               for _, c, n, s, d, _, _ in flights}
    for key, runs in runs_of.items():
        for run_id, touched in runs.items():
            # A leg whose values did not change writes no audit row, but its observations do.
            missing = {fid for fid in legs_of[key] - touched if (fid, run_id) not in observed}
            if missing:
                problems.append(f"flight {key}: run {run_id} wrote legs {sorted(touched)} "
                                f"but not {sorted(missing)}")
    return problems


def _plain(encoded: str | None) -> Any:
    value = None if encoded is None else json.loads(encoded)
    return None if value == [] else value


def _day(value: Any) -> Any:
    from datetime import date  # noqa: PLC0415

    return value if isinstance(value, date) else date.fromisoformat(str(value))
