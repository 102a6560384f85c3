"""The benchmark's world: a temporary state directory and SQLite file, the sandbox at a set
latency, a config file, and the environment that points the CLI and the engine at all of it.

Four providers for one carrier: in the sandbox (as in reality) only three cover any one
carrier (for LH: lufthansa, amadeus, flightaware). The config makes airfrance_klm cover LH as
well, so every LH sync makes four real provider calls; the sandbox's AF-KLM answers each with
its real "no such flight" reply after the configured latency.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType

from flightsync.config import Settings, load_settings
from flightsync.models import FlightQuery
from flightsync.providers import registry
from flightsync.sandbox import sandbox_environment
from flightsync.store import migrate

CARRIER = "LH"
PYCACHE = Path(tempfile.gettempdir()) / "flightsync-bench-pycache"
# The four the policy and write measurements were calibrated with; the syncs ask these and
# every other built-in adapter that covers all carriers (it answers LH too).
FOUR = ("lufthansa", "amadeus", "flightaware", "airfrance_klm")
PROVIDERS = (*FOUR, *(
    name for name in registry.BUILTINS
    if name not in ("amadeus", "flightaware") and registry.get(name).default_carriers is None))
_CONFIG = """\
# Written by python -m benchmarks: airfrance_klm covers LH too (every provider per flight).
providers:
  airfrance_klm: {carriers: [AF, KL, LH]}
"""
# Variables of the caller that would point the CLI elsewhere.
_FOREIGN = ("FLIGHTSYNC_", "FLIGHT_SYNC_", "AMADEUS_", "LUFTHANSA_", "AFKLM_", "BA_",
            "FLIGHTAWARE_", "CIRIUM_", "AVIATIONSTACK_", "AERODATABOX_", "NOTIFY_")


def flight_day() -> date:
    """Tomorrow (UTC): an active flight, so cached entries live 15 minutes."""
    return (datetime.now(UTC) + timedelta(days=1)).date()


def queries(start: int, count: int, day: date | None = None) -> list[FlightQuery]:
    """``count`` distinct LH flights from number ``start`` (each never synced before when the
    caller keeps its ranges apart)."""
    when = day or flight_day()
    return [FlightQuery(carrier=CARRIER, number=start + i, departure_date=when)
            for i in range(count)]


@dataclass
class Bench:
    """Owns the temporary folder and the sandbox for one benchmark run."""

    latency_ms: float
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fs-bench-")))
    sandbox: subprocess.Popen[str] | None = None
    base_url: str = ""

    @property
    def config_path(self) -> Path:
        return self.root / "flightsync.yaml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.root / 'flightsync.db'}"

    def start(self) -> Bench:
        """Migrate, then start `flightsync sandbox serve` in a process of its own: the
        providers are remote to the engine, so they must not share its interpreter lock."""
        self.config_path.write_text(_CONFIG, encoding="utf-8")
        migrate.upgrade(self.database_url)
        command = [sys.executable, "-m", "flightsync", "sandbox", "serve",
                   "--latency-ms", f"{self.latency_ms:g}"]
        self.sandbox = subprocess.Popen(command, env=self.env(), stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        assert self.sandbox.stdout is not None
        first = self.sandbox.stdout.readline().strip()
        if not first.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {first!r}")
        self.base_url = first
        return self

    def env(self) -> dict[str, str]:
        """The environment for the engine and for `flightsync` child processes."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        # Bytecode as an installed package has it (pip compiles on install), kept out of the
        # source tree in a folder that outlives the run: without it every process would
        # compile flightsync from source again.
        clean.pop("PYTHONDONTWRITEBYTECODE", None)
        clean["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        if self.base_url:
            clean.update(sandbox_environment(self.base_url))
        clean.update(FLIGHTSYNC_STATE_DIR=str(self.state_dir),
                     FLIGHTSYNC_DATABASE_URL=self.database_url,
                     FLIGHTSYNC_CONFIG=str(self.config_path))
        return clean

    def settings(self) -> Settings:
        return load_settings(self.config_path, self.env())

    def stats(self) -> dict[str, dict[str, int]]:
        """The sandbox's request counters (``GET /_sandbox/stats``)."""
        with urllib.request.urlopen(f"{self.base_url}/_sandbox/stats", timeout=10) as reply:
            stats: dict[str, dict[str, int]] = json.loads(reply.read())
        return stats

    def requests(self) -> int:
        """Data and token calls the sandbox has answered so far, every provider together."""
        return sum(s.get("requests", 0) + s.get("token_requests", 0)
                   for s in self.stats().values())

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.terminate()  # SIGTERM: `sandbox serve` stops cleanly
            try:
                self.sandbox.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sandbox.kill()
                self.sandbox.wait()
            self.sandbox = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Bench:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def private_postgres(prefix: str) -> Iterator[str]:
    """A database of its own on the local PostgreSQL (``<prefix>_<random>``), dropped on exit
    (WITH FORCE: a benchmark's killed workers may leave sessions behind); its SQLAlchemy URL."""
    import psycopg  # noqa: PLC0415 - only the PostgreSQL scenarios need the driver

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
