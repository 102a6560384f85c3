"""Retention (issue 16): prune removes exactly what is past each horizon and nothing else, at
the exact boundary; works in chunks within a time budget and carries on in the next prune; a
SIGKILL inside a chunk leaves the database consistent and the next prune resumes; the CLI's
`prune --dry-run` removes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flightsync.config import RetentionSettings
from flightsync.store import Database, migrate
from flightsync.store import _prune as store_prune
from flightsync.store._write import compress_raw
from flightsync.store.tables import (
    Flight,
    FlightChange,
    NotificationDelivery,
    PruneMark,
    SourceObservation,
    SyncRun,
    WebhookEvent,
)
from tests._e2e import invoke, write_config

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
TICK = timedelta(microseconds=1)
RETENTION = RetentionSettings(flights_days=60)
_F = Flight.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CHANGE = FlightChange.__table__  # type: ignore[attr-defined]
_RUN = SyncRun.__table__  # type: ignore[attr-defined]
_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERY = NotificationDelivery.__table__  # type: ignore[attr-defined]
_MARK = PruneMark.__table__  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flightsync.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    migrate.upgrade(url)
    db = Database.open(url)
    yield db
    db.close()


def add_flight(db: Database, number: int, day: date) -> int:
    with db.session() as session:
        return int(session.execute(_F.insert().values(
            carrier="LH", flight_number=number, suffix="", departure_date=day, leg_index=0,
            origin="FRA", status="scheduled", codeshares=[], sync_status="synced",
            tracked=False, version=1, has_open_conflict=False, created_at=NOW,
            updated_at=NOW).returning(_F.c.id)).scalar_one())


def add_rows(db: Database, table: Any, rows: list[dict[str, Any]]) -> None:
    with db.session() as session:
        session.execute(table.insert(), rows)


def add_observation(db: Database, flight_id: int, observed_at: datetime,
                    raw: str | None = "{}") -> None:
    add_rows(db, _OBS, [{"flight_id": flight_id, "source": "amadeus", "values": {},
                         "observed_at": observed_at, "confirmed_at": observed_at,
                         "raw_zlib": compress_raw(raw) if raw else None}])


def ids(db: Database, table: Any, column: str) -> list[Any]:
    with db.session() as session:
        return list(session.execute(select(table.c[column]).order_by(table.c.id)).scalars())


def run_prune(db: Database, retention: RetentionSettings = RETENTION, **options: Any,
              ) -> store_prune.PruneReport:
    return store_prune.prune(db, store_prune.horizons(retention, NOW), now=NOW,
                             chunk_rows=options.pop("chunk_rows", retention.chunk_rows),
                             **options)


def test_each_horizon_removes_exactly_what_is_past_it(database: Database) -> None:
    """Rows exactly at each horizon stay, rows a microsecond (or, counted in flight days, a
    day) older go: raw answers after 7 days (the observation stays), observations 30 days
    after their flight's day, audit rows after 400 days, runs after 90, deliveries and
    webhook events after 30; flights_days 60 removes whole legs, keeping the events that
    named them (unlinked)."""
    day_30, day_60 = (NOW - timedelta(days=30)).date(), (NOW - timedelta(days=60)).date()
    kept = add_flight(database, 1, day_30)                        # its observations stay
    old = add_flight(database, 2, day_30 - timedelta(days=1))     # its observations go
    at_flight_limit = add_flight(database, 3, day_60)             # stays
    gone = add_flight(database, 4, day_60 - timedelta(days=1))    # goes, with its rows
    raw_edge = NOW - timedelta(days=7)
    add_observation(database, kept, raw_edge)            # raw kept
    add_observation(database, kept, raw_edge - TICK)     # raw dropped, row kept
    add_observation(database, old, NOW - timedelta(days=1))
    # Older than 30 days too: its observations go, the leg (60 days) stays.
    add_observation(database, at_flight_limit, NOW - timedelta(days=1), raw=None)
    change_edge = NOW - timedelta(days=400)
    add_rows(database, _CHANGE, [
        {"flight_id": kept, "field": "departure_gate", "version": 1, "at": at}
        for at in (change_edge, change_edge - TICK)])
    add_rows(database, _CHANGE, [{"flight_id": gone, "field": "status", "version": 1,
                                  "at": NOW}])
    run_edge = NOW - timedelta(days=90)
    add_rows(database, _RUN, [{"run_id": f"run-{i}", "kind": "batch", "started_at": at}
                              for i, at in enumerate((run_edge, run_edge - TICK))])
    edge_30 = NOW - timedelta(days=30)
    add_rows(database, _DELIVERY, [
        {"message_id": f"m{i}", "url": "https://example.com/hook", "payload_hash": "h",
         "status": "delivered", "created_at": at, "flight_id": gone}
        for i, at in enumerate((edge_30, edge_30 - TICK))])
    add_rows(database, _EVENT, [
        {"event_id": f"e{i}", "source": "lufthansa", "received_at": at, "payload_hash": "h",
         "outcome": "applied", "flight_id": gone if i == 0 else None}
        for i, at in enumerate((edge_30, edge_30 - TICK))])

    report = run_prune(database)

    assert report.complete
    assert report.removed == {"raw_answers": 1, "observations": 2, "changes": 1, "runs": 1,
                              "deliveries": 1, "webhook_events": 1, "flights": 1}
    assert ids(database, _F, "flight_number") == [1, 2, 3]
    assert ids(database, _OBS, "observed_at") == [raw_edge, raw_edge - TICK]
    assert [raw is not None for raw in ids(database, _OBS, "raw_zlib")] == [True, False]
    assert ids(database, _CHANGE, "at") == [change_edge]
    assert ids(database, _RUN, "started_at") == [run_edge]
    assert ids(database, _DELIVERY, "created_at") == [edge_30]
    assert ids(database, _EVENT, "received_at") == [edge_30]
    # The kept event and delivery named the removed flight: their rows stay, unlinked.
    assert ids(database, _EVENT, "flight_id") == [None]
    assert ids(database, _DELIVERY, "flight_id") == [None]
    # A second prune finds nothing more.
    assert sum(run_prune(database).removed.values()) == 0


def test_finished_flights_are_kept_by_default(database: Database) -> None:
    """Without retention.flights_days no flight row is removed, however old."""
    add_flight(database, 1, date(2020, 1, 1))
    report = run_prune(database, RetentionSettings())
    assert "flights" not in report.removed
    assert ids(database, _F, "flight_number") == [1]


def test_the_budget_ends_the_work_between_chunks_and_the_next_prune_carries_on(
        database: Database) -> None:
    """With chunks of 2 rows and a clock that moves 1 s per reading (one at the start, one
    before each chunk), a 4 s budget allows three chunks (six of ten old runs) and records
    the pass as in progress; the next prune resumes it and finishes."""
    old = NOW - timedelta(days=100)
    add_rows(database, _RUN, [{"run_id": f"r{i}", "kind": "batch", "started_at": old}
                              for i in range(10)])
    ticks = iter(range(1000))
    runs = [h for h in store_prune.horizons(RetentionSettings(), NOW) if h.name == "runs"]

    report = store_prune.prune(database, runs, now=NOW, chunk_rows=2, budget_seconds=4,
                               clock=lambda: float(next(ticks)), vacuum=False)

    assert not report.complete
    assert report.removed["runs"] == 6 and report.chunks == 3
    assert len(ids(database, _RUN, "id")) == 4
    with database.session() as session:
        mark = session.execute(select(_MARK).where(_MARK.c.name == "runs")).one()
    assert (mark.removed, mark.finished_at) == (6, None)

    again = run_prune(database, RetentionSettings(), chunk_rows=2)
    assert again.complete and "runs" in again.resumed
    assert again.removed["runs"] == 4
    assert ids(database, _RUN, "id") == []
    with database.session() as session:
        mark = session.execute(select(_MARK).where(_MARK.c.name == "runs")).one()
    assert (mark.removed, mark.finished_at) == (10, NOW)


def test_a_dry_run_counts_and_removes_nothing(database: Database) -> None:
    """pending() counts each horizon's rows and leaves them."""
    add_rows(database, _RUN, [{"run_id": f"r{i}", "kind": "batch",
                               "started_at": NOW - timedelta(days=91)} for i in range(3)])
    report = store_prune.pending(database, store_prune.horizons(RETENTION, NOW))
    assert report.removed["runs"] == 3
    assert len(ids(database, _RUN, "id")) == 3


def _sqlite_env(tmp_path: Path, **retention: Any) -> dict[str, str]:
    config = write_config(tmp_path / "flightsync.yaml", retention=retention)
    return {"FLIGHTSYNC_CONFIG": str(config), "FLIGHTSYNC_STATE_DIR": str(tmp_path / "state")}


def _seed_old_runs(tmp_path: Path, count: int) -> Database:
    url = f"sqlite:///{tmp_path / 'state' / 'flightsync.db'}"
    migrate.upgrade(url)
    db = Database.open(url)
    old = datetime.now(UTC) - timedelta(days=100)
    add_rows(db, _RUN, [{"run_id": f"r{i}", "kind": "batch", "started_at": old,
                         "outcome": "ok"} for i in range(count)])
    return db


def test_sigkill_inside_a_chunk_then_the_next_prune_resumes(tmp_path: Path) -> None:
    """`flightsync prune` killed (SIGKILL) inside its third chunk's transaction: the two
    committed chunks are gone, the third is rolled back whole, SQLite's integrity check
    passes and the mark says a pass is in progress; the next prune resumes and finishes."""
    db = _seed_old_runs(tmp_path, 25)
    env = {**os.environ, **_sqlite_env(tmp_path, chunk_rows=5),
           "FLIGHTSYNC_TEST_KILL_AT": "prune.chunk.runs:3"}
    killed = subprocess.run([sys.executable, "-m", "flightsync", "prune"], env=env,
                            capture_output=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    try:
        with db.session() as session:
            left = session.execute(select(func.count()).select_from(_RUN)).scalar_one()
            mark = session.execute(select(_MARK).where(_MARK.c.name == "runs")).one()
            check = session.connection().exec_driver_sql("PRAGMA integrity_check").scalar()
        assert (left, mark.removed, mark.finished_at) == (15, 10, None)
        assert check == "ok"

        resumed = invoke(["--json", "prune"], _sqlite_env(tmp_path, chunk_rows=5))
        assert resumed.exit_code == 0, resumed.stderr
        data = json.loads(resumed.stdout)
        assert data["resumed"] == ["runs"] and data["complete"] is True
        assert next(t for t in data["tables"] if t["name"] == "runs")["removed"] == 15
        with db.session() as session:
            assert session.execute(select(func.count()).select_from(_RUN)).scalar_one() == 0
    finally:
        db.close()


def test_the_cli_dry_run_reports_and_keeps(tmp_path: Path) -> None:
    """`prune --dry-run --json` lists every horizon with its cutoff and count; nothing goes."""
    db = _seed_old_runs(tmp_path, 3)
    try:
        outcome = invoke(["--json", "prune", "--dry-run"], _sqlite_env(tmp_path))
        assert outcome.exit_code == 0, outcome.stderr
        data = json.loads(outcome.stdout)
        assert data["dry_run"] is True
        assert [t["name"] for t in data["tables"]] == [
            "raw_answers", "observations", "changes", "runs", "deliveries", "webhook_events"]
        assert next(t for t in data["tables"] if t["name"] == "runs")["removed"] == 3
        with db.session() as session:
            assert session.execute(select(func.count()).select_from(_RUN)).scalar_one() == 3
    finally:
        db.close()


def test_sqlite_gives_freed_pages_back(tmp_path: Path) -> None:
    """After removing many rows the file shrinks: incremental auto-vacuum hands the free
    pages back within the prune."""
    url = f"sqlite:///{tmp_path / 'v.db'}"
    migrate.upgrade(url)
    db = Database.open(url)
    try:
        flight = add_flight(db, 1, date(2020, 1, 1))
        for i in range(40):
            add_rows(db, _OBS, [{"flight_id": flight, "source": f"s{i}-{j}", "values": {},
                                 "observed_at": NOW, "confirmed_at": NOW,
                                 "raw_zlib": os.urandom(2000)} for j in range(20)])
        before = (tmp_path / "v.db").stat().st_size
        report = run_prune(db, RetentionSettings())
        assert report.removed["observations"] == 800
        assert report.vacuumed_pages > 0
        with db.session() as session:
            conn = session.connection()
            assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
        db.close()
        assert (tmp_path / "v.db").stat().st_size < before / 4
    finally:
        db.close()
