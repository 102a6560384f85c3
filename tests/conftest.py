"""Hermetic tests by construction (docs/ARCHITECTURE.md): every test gets its own state
directory and SQLite database under tmp_path, no FLIGHTSYNC_* or provider variables leak in,
and retries do not sleep."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
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
