"""Hermetic tests by construction (docs/ARCHITECTURE.md): every test gets its own state
directory and SQLite database under tmp_path, no FLIGHTSYNC_* or provider variables leak in,
and retries do not sleep."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import stamina
import structlog

from flightsync import logs

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_PROVIDER_PREFIXES = ("FLIGHTSYNC_", "FLIGHT_SYNC_", "AMADEUS_", "LUFTHANSA_", "AFKLM_", "BA_",
                      "FLIGHTAWARE_", "CIRIUM_", "AVIATIONSTACK_", "AERODATABOX_", "NOTIFY_")


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith(_PROVIDER_PREFIXES):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("FLIGHTSYNC_STATE_DIR", str(state))
    monkeypatch.setenv("FLIGHTSYNC_RAISE_ERRORS", "0")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    # No sleeping, but the configured number of attempts, so retries really happen in tests.
    stamina.set_testing(True, attempts=100, cap=True)
    try:
        yield state
    finally:
        stamina.set_testing(False)
        # The CLI configures structlog process-wide; no test may inherit another's set-up.
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        # Nor another's registered secrets: a word one test used as a secret (say "secret")
        # would be masked in the next test's messages on the same worker.
        logs._secrets.clear()
        logs._secrets_pattern = None


@pytest.fixture
def state_dir(_hermetic: Path) -> Path:
    """This test's private state directory (FLIGHTSYNC_STATE_DIR)."""
    return _hermetic


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped afterwards), created on the
    server of PG_URL; skips when unreachable, except under CI=true where it fails."""
    if not _postgres_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required under CI=true")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    import psycopg  # noqa: PLC0415 - only the PostgreSQL tests need the driver

    name = f"fs_test_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--heavy", action="store_true", default=False,
                     help="also run the heavier stress variants (marker `slow`): more kill "
                     "trials, longer fuzzing")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--heavy"):
        return
    skip = pytest.mark.skip(reason="heavier variant: run with --heavy")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def heavy(request: pytest.FixtureRequest) -> bool:
    """True under --heavy: tests scale their trials and examples up."""
    return bool(request.config.getoption("--heavy"))


# --- Redis (README, "Shared state") --------------------------------------------------------

REDIS_HOST, REDIS_PORT, REDIS_TEST_DB = "127.0.0.1", 6379, 7


def _redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1):
            return True
    except OSError:
        return False


def _require(what: str, present: bool) -> None:
    if not present:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is required under CI=true")
        pytest.skip(f"{what} is not available")


@pytest.fixture
def redis_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """(state_url, state_prefix) on the shared server's test database (7) under a prefix of
    this test's own, set in the environment; only that prefix's keys are deleted afterwards
    (never FLUSHDB: the server is shared). Skips when unreachable, fails under CI=true."""
    _require(f"Redis at {REDIS_HOST}:{REDIS_PORT}", _redis_reachable())
    import redis  # noqa: PLC0415 - only the Redis tests need the client

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"
    prefix = f"fs-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("FLIGHTSYNC_STATE_URL", url)
    monkeypatch.setenv("FLIGHTSYNC_STATE_PREFIX", prefix)
    try:
        yield url, prefix
    finally:
        client = redis.Redis.from_url(url, socket_timeout=5)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@dataclass
class PrivateRedis:
    """A redis-server of this test's own on a free loopback port (nothing persisted)."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextmanager
def start_private_redis(folder: Path, *args: str) -> Iterator[PrivateRedis]:
    """A redis-server of its own on a free loopback port (extra server ``args``, e.g.
    ``--requirepass``), killed when the block ends."""
    binary = shutil.which("redis-server")
    _require("redis-server", binary is not None)
    assert binary is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = PrivateRedis(process, port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("the private redis-server did not start") from None
                time.sleep(0.02)
        yield server
    finally:
        server.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server that a test may kill (Redis lost mid-run)."""
    with start_private_redis(tmp_path) as server:
        yield server
