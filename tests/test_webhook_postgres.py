"""Idempotency under a race on PostgreSQL: the same event delivered twice at once is applied
exactly once, because its webhook_event row is written in the same transaction as the change
and the second insert of the id waits for the first and then fails its unique check."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from flightsync.config import load_settings
from flightsync.engine import WebhookOutcome, open_engine
from flightsync.store import migrate

pytestmark = pytest.mark.postgres


def test_concurrent_replays_apply_once(pg_url: str, state_dir: Path) -> None:
    """Four threads ingest the same event id at the same moment: one applies it, the others
    report a duplicate, and the store holds one event row and one flight."""
    migrate.upgrade(pg_url)
    settings = load_settings(None, {"FLIGHTSYNC_DATABASE_URL": pg_url,
                                    "FLIGHTSYNC_STATE_DIR": str(state_dir)})
    body = json.dumps({
        "type": "flight.updated", "provider": "flightaware", "flight": "UA900",
        "date": "2026-03-02", "occurred_at": datetime.now(UTC).isoformat(), "origin": "JFK",
        "id": "evt_race", "changes": {"destination": "ORD", "departure_gate": "B20"},
    }).encode()
    start = threading.Barrier(4)
    outcomes: list[WebhookOutcome] = []

    def deliver() -> None:
        with open_engine(settings, run_kind="webhook") as engine:
            start.wait()
            outcomes.append(engine.ingest_webhook(body, {}, insecure=True, notify=False))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.status for o in outcomes) == ["applied", "duplicate", "duplicate",
                                                  "duplicate"]
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM webhook_event")).scalar() == 1
            assert conn.execute(sa.text(
                "SELECT count(*) FROM flight WHERE carrier = 'UA'")).scalar() == 1
    finally:
        engine.dispose()
