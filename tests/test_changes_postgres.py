"""The change feed on PostgreSQL: a change whose id is lower than one already committed, but
whose transaction commits later, is not skipped; the reader waits for it (bounded), and a
hole that a rollback leaves does not stop the feed."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flightsync.config import load_settings
from flightsync.engine import open_engine
from flightsync.store import Database, migrate
from flightsync.store import repository as repo

pytestmark = pytest.mark.postgres


def _seed(pg_url: str, state_dir: Path) -> int:
    """One stored flight (through an event); returns its row id."""
    migrate.upgrade(pg_url)
    settings = load_settings(None, {"FLIGHTSYNC_DATABASE_URL": pg_url,
                                    "FLIGHTSYNC_STATE_DIR": str(state_dir)})
    body = json.dumps({
        "type": "flight.updated", "provider": "flightaware", "flight": "UA900",
        "date": "2026-03-02", "occurred_at": datetime.now(UTC).isoformat(), "origin": "JFK",
        "id": "evt_seed", "changes": {"destination": "ORD", "departure_gate": "B20"}}).encode()
    with open_engine(settings, run_kind="webhook") as engine:
        engine.ingest_webhook(body, {}, insecure=True, notify=False)
    engine_ = sa.create_engine(pg_url)
    try:
        with engine_.connect() as conn:
            return int(conn.execute(sa.text("SELECT id FROM flight")).scalar_one())
    finally:
        engine_.dispose()


def _writer(conn: sa.Connection, flight_id: int, value: str, *, touch: bool) -> int:
    """A writer as the engine writes: the flight row first (``touch``), then its change row."""
    if touch:
        conn.execute(sa.text("UPDATE flight SET version = version + 1 WHERE id = :f"),
                     {"f": flight_id})
    return int(conn.execute(sa.text(
        "INSERT INTO flight_change (flight_id, field, old, new, source, version, at) "
        "VALUES (:f, 'departure_gate', NULL, :v, 'test', 2, now()) RETURNING id"),
        {"f": flight_id, "v": json.dumps(value)}).scalar_one())


@pytest.mark.parametrize("late_outcome", ["commit", "rollback"])
def test_a_lower_id_committed_later_is_not_skipped(pg_url: str, state_dir: Path,
                                                   late_outcome: str) -> None:
    """A takes id n and stays open; B takes n+1 and commits. A reader after the seed's
    changes waits until A ends, then returns n (if A committed) and n+1, in order."""
    flight_id = _seed(pg_url, state_dir)
    raw = sa.create_engine(pg_url)
    database = Database.open(pg_url)
    try:
        with database.session() as session:
            cursor = repo.last_cursor(session)
        late, early = raw.connect(), raw.connect()
        late_tx = late.begin()
        late_id = _writer(late, flight_id, "LATE", touch=True)
        with early.begin():
            early_id = _writer(early, flight_id, "EARLY", touch=False)  # row locked by A
        assert early_id > late_id
        got: dict[str, Any] = {}

        def read() -> None:
            with database.session() as session:
                got["rows"] = repo.changes_after(session, cursor, limit=100)

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.5)
        assert reader.is_alive(), "the reader must wait for the transaction in progress"
        late_tx.commit() if late_outcome == "commit" else late_tx.rollback()
        reader.join(10)
        assert not reader.is_alive()
        late.close()
        early.close()
        expected = [late_id, early_id] if late_outcome == "commit" else [early_id]
        assert [r["cursor"] for r in got["rows"]] == expected
    finally:
        database.close()
        raw.dispose()
