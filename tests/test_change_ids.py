"""The change feed's cursor never passes a change on SQLite (migration
0007_change_ids_never_reused): once the newest changes are deleted, the next change still
takes a higher id than any handed out before, on a new database and on one upgraded with
its rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

from flightsync.store import Database, migrate, repository

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _flight(conn: Connection, number: int) -> None:
    conn.execute(text(
        "INSERT INTO flight (id, carrier, flight_number, suffix, departure_date, leg_index, "
        "origin, status, codeshares, sync_status, tracked, sync_attempts, "
        "consecutive_failures, version, has_open_conflict, created_at, updated_at) VALUES "
        "(:n, 'LH', :n, '', '2026-06-02', 0, 'FRA', 'scheduled', '[]', 'synced', 1, 1, 0, 1, "
        "0, :now, :now)"), {"n": number, "now": NOW})


def _change(conn: Connection, flight: int) -> int:
    return int(conn.execute(text(
        "INSERT INTO flight_change (flight_id, field, old, new, version, at) VALUES "
        "(:f, 'departure_gate', '\"A\"', '\"B\"', 2, :now) RETURNING id"),
        {"f": flight, "now": NOW}).scalar_one())


def _two_flights_three_changes(conn: Connection) -> None:
    """Flights 1 and 2; changes 1 (flight 1), 2 and 3 (flight 2, the newest)."""
    _flight(conn, 1)
    _flight(conn, 2)
    for flight in (1, 2, 2):
        _change(conn, flight)


def _delete_newest_flight_then_change_again(url: str) -> tuple[int, int, list[int]]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            newest = max(conn.execute(text("SELECT id FROM flight_change")).scalars())
            conn.execute(text("DELETE FROM flight_change WHERE flight_id = 2"))
            conn.execute(text("DELETE FROM flight WHERE id = 2"))
            _flight(conn, 3)
            again = _change(conn, 3)
    finally:
        engine.dispose()
    db = Database.open(url)
    try:
        with db.session() as session:
            seen = [c["cursor"] for c in repository.changes_after(session, newest, limit=10)]
    finally:
        db.close()
    return newest, again, seen


def test_a_deleted_newest_change_id_is_never_handed_out_again(tmp_path: Path) -> None:
    """A consumer whose cursor reached the newest change sees the change made after that
    change was deleted (a plain INTEGER PRIMARY KEY would give the new row the same id)."""
    url = f"sqlite:///{tmp_path / 'f.db'}"
    migrate.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        _two_flights_three_changes(conn)
    engine.dispose()

    newest, again, seen = _delete_newest_flight_then_change_again(url)

    assert again > newest
    assert seen == [again]


def test_the_upgrade_keeps_the_rows_and_starts_after_the_highest_id(tmp_path: Path) -> None:
    """A database with changes at the previous revision: the rebuild keeps every row and id,
    and the next id after deleting the newest is still above it; the downgrade keeps the
    rows too."""
    url = f"sqlite:///{tmp_path / 'f.db'}"
    migrate.upgrade(url, "0006_pg_partitions")
    engine = create_engine(url)
    with engine.begin() as conn:
        _two_flights_three_changes(conn)
        before = conn.execute(text("SELECT * FROM flight_change ORDER BY id")).all()
    migrate.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT * FROM flight_change ORDER BY id")).all() == before
        assert "AUTOINCREMENT" in conn.execute(text(
            "SELECT sql FROM sqlite_master WHERE name = 'flight_change'")).scalar_one()
    engine.dispose()

    newest, again, seen = _delete_newest_flight_then_change_again(url)

    assert (newest, again, seen) == (3, 4, [4])
    migrate.downgrade(url, "0006_pg_partitions")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert len(conn.execute(text("SELECT id FROM flight_change")).all()) == 2
    engine.dispose()
