"""The sandbox kept apart from real use, and the cache keyed to what it was filled for (README,
"Commands"; issue 20 item 2, issue 19 item 7).

`--sandbox` runs get their own state directory and database under `<state dir>/sandbox/`;
every cache key carries a namespace of the database and the providers' base URLs, so no entry
made for one configuration answers another. The real CLI runs in process; a "real"
configuration is the environment pointing every provider at a running sandbox server whose
answers are marked (gate Z99), so the two are told apart by what they return.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flightsync.resilience import cache_namespace
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from tests._sandbox_cli import SandboxCli, sandbox_cli

DAY = "2026-02-25"
MARK = "Z99"  # the gate every provider of the "real" server reports


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir) as running:
        running.scenario(overrides=[{"provider": "*", "flight": "LH400",
                                     "fields": {"departure_gate": MARK}}])
        yield running


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_sandbox_and_real_configuration_share_no_cache_entry_and_no_row(
        cli: SandboxCli, state_dir: Path) -> None:
    """Side by side on one state directory: the `--sandbox` sync writes only the sandbox's
    database, the real sync after it asks the real providers (no sandbox answer from the
    cache) and writes only the real database, the sandbox's next sync never gets the real
    answer, and the real one's next sync is answered from its own cache."""
    real_db = state_dir / "flightsync.db"
    sandbox_db = state_dir / "sandbox" / "flightsync.db"

    fake = cli.run("--sandbox", "sync", "LH400", "--date", DAY)
    assert fake.exit_code == 0, fake.stderr
    assert fake.data["flight"]["departure_gate"] != MARK
    assert _rows(sandbox_db, "SELECT count(*) FROM flight") == [(1,)]
    assert _rows(real_db, "SELECT count(*) FROM flight") in ([], [(0,)])

    real = cli.sync("LH400", DAY)
    assert real.exit_code == 0, real.stderr
    assert real.data["from_cache"] is False
    assert real.data["flight"]["departure_gate"] == MARK
    assert cli.requests() > 0
    assert _rows(real_db, "SELECT departure_gate FROM flight") == [(MARK,)]

    again = cli.run("--sandbox", "sync", "LH400", "--date", DAY)
    assert again.exit_code == 0, again.stderr
    assert again.data["flight"]["departure_gate"] != MARK
    cached = cli.sync("LH400", DAY)
    assert cached.data["from_cache"] is True
    assert cached.data["flight"]["departure_gate"] == MARK
    assert MARK not in {row[0] for row in _rows(sandbox_db, "SELECT departure_gate FROM flight")}

    real_runs = {r[0] for r in _rows(real_db, "SELECT run_id FROM sync_run")}
    sandbox_runs = {r[0] for r in _rows(sandbox_db, "SELECT run_id FROM sync_run")}
    assert real_runs and sandbox_runs and not real_runs & sandbox_runs
    # Each keeps its own state: the sandbox's cache is in its own folder.
    assert (state_dir / "sandbox" / "cache").is_dir()
    assert (state_dir / "cache").is_dir()


def test_a_cache_filled_for_one_database_does_not_answer_for_another(
        cli: SandboxCli, tmp_path: Path) -> None:
    """Same state directory, FLIGHTSYNC_DATABASE_URL switched to a new database: the sync
    asks the providers and writes the new database, instead of answering from the entries
    made for the old one; switching back is answered from the old database's entries."""
    first = f"sqlite:///{tmp_path / 'first.db'}"
    second = f"sqlite:///{tmp_path / 'second.db'}"
    for url in (first, second):
        assert cli.run("migrate", env={"FLIGHTSYNC_DATABASE_URL": url}).exit_code == 0

    filled = cli.run("sync", "LH400", "--date", DAY, env={"FLIGHTSYNC_DATABASE_URL": first})
    assert filled.exit_code == 0 and filled.data["from_cache"] is False
    calls = cli.requests()

    switched = cli.run("sync", "LH400", "--date", DAY, env={"FLIGHTSYNC_DATABASE_URL": second})
    assert switched.exit_code == 0, switched.stderr
    assert switched.data["from_cache"] is False
    assert cli.requests() > calls
    assert _rows(tmp_path / "second.db", "SELECT count(*) FROM flight") == [(1,)]

    back = cli.run("sync", "LH400", "--date", DAY, env={"FLIGHTSYNC_DATABASE_URL": first})
    assert back.exit_code == 0 and back.data["from_cache"] is True


def test_an_answer_cached_for_one_base_url_is_not_served_for_another(cli: SandboxCli) -> None:
    """Pointing the providers at another server with the same state directory and database
    asks that server: nothing cached from the first one is served."""
    first = cli.sync("LH400", DAY)
    assert first.exit_code == 0 and first.data["from_cache"] is False
    with Sandbox(SandboxConfig()) as other:
        moved = cli.run("sync", "LH400", "--date", DAY,
                        env=sandbox_environment(other.base_url))
        assert moved.exit_code == 0, moved.stderr
        assert moved.data["from_cache"] is False
        assert sum(s["requests"] for s in other.stats().values()) > 0
        assert moved.data["flight"]["departure_gate"] != MARK


def test_the_namespace_ignores_the_password_and_nothing_else() -> None:
    """A changed database password keeps the namespace (same database); another database,
    host or base URL changes it."""
    urls = {"lufthansa": "https://api.lufthansa.com"}
    base = cache_namespace("postgresql+psycopg://fs:one@db/flights", urls)
    assert cache_namespace("postgresql+psycopg://fs:two@db/flights", urls) == base
    assert cache_namespace("postgresql+psycopg://fs:one@db/other", urls) != base
    assert cache_namespace("postgresql+psycopg://fs:one@db2/flights", urls) != base
    assert cache_namespace("postgresql+psycopg://fs:one@db/flights",
                           {"lufthansa": "http://127.0.0.1:8080"}) != base


def test_a_sandbox_run_writes_no_metrics_and_notifies_nobody(
        cli: SandboxCli, state_dir: Path, tmp_path: Path) -> None:
    """With a config that names a metrics file and a subscriber, a `--sandbox` sync writes
    neither the file nor a delivery (fake flights reach no real monitoring or subscriber),
    while a real sync with the same config writes both."""
    metrics = tmp_path / "metrics" / "flightsync.prom"
    metrics.parent.mkdir()
    config = cli.write_config("observed", {
        "metrics": {"textfile": str(metrics)},
        "notify": [{"url": f"{cli.sandbox.base_url}/subscriber"}]})
    fake = cli.run("--sandbox", "sync", "LH400", "--date", DAY, config=config)
    assert fake.exit_code == 0, fake.stderr
    assert not metrics.exists()
    sandbox_db = state_dir / "sandbox" / "flightsync.db"
    assert _rows(sandbox_db, "SELECT count(*) FROM notification_delivery") == [(0,)]

    real = cli.run("sync", "LH400", "--date", DAY, config=config)
    assert real.exit_code == 0, real.stderr
    assert metrics.exists()
    assert _rows(state_dir / "flightsync.db",
                 "SELECT count(*) FROM notification_delivery")[0][0] >= 1
