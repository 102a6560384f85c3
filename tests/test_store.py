"""Database: opening, SQLite settings, schema check, sessions, UTC timestamps, errors."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import col, select

from flightsync.errors import ConfigError, SchemaBehindError, StoreError
from flightsync.store import Database, Flight, FlightChange, migrate
from flightsync.store import repository as repo

BERLIN_WINTER = timezone(timedelta(hours=1))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each backend, migrated to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flightsync.db'}"
    else:
        # A session time zone other than UTC: the values must still come back in UTC.
        url = str(request.getfixturevalue("pg_url")) + "?options=-c%20timezone%3DAsia/Kolkata"
    migrate.upgrade(url)
    return url


def _flight(**values: Any) -> Flight:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {"carrier": "LH", "flight_number": 400,
                                 "departure_date": date(2026, 2, 25), "origin": "FRA",
                                 "created_at": now, "updated_at": now}
    fields.update(values)
    return Flight(**fields)


def test_new_default_sqlite_database_is_created_and_migrated(tmp_path: Path) -> None:
    """open(create_default=True) on an absent file creates its private folder and the file,
    migrates it to head, and the schema check then passes."""
    path = tmp_path / "state" / "deep" / "flightsync.db"
    with Database.open(f"sqlite:///{path}", create_default=True) as db:
        db.check_schema()
        assert db.revision() == migrate.heads()[0]
    assert path.is_file()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_existing_database_is_not_migrated_behind_the_operators_back(tmp_path: Path) -> None:
    """Only a brand-new default file is migrated on open. A named database that does not
    exist is exit 4 (`flightsync migrate` creates it) and nothing is created, not even its
    folder; an existing empty one is not migrated either."""
    absent = tmp_path / "typo" / "absent.db"
    with pytest.raises(SchemaBehindError) as caught:
        Database.open(f"sqlite:///{absent}")
    assert caught.value.exit_code == 4
    assert "does not exist" in caught.value.message
    assert "flightsync migrate" in caught.value.message
    assert not absent.parent.exists()

    empty = tmp_path / "empty.db"
    empty.touch()
    for create_default in (False, True):
        with (Database.open(f"sqlite:///{empty}", create_default=create_default) as db,
              pytest.raises(SchemaBehindError) as behind):
            db.check_schema()
        assert "flightsync migrate" in behind.value.message


def test_database_behind_head_is_refused(db_url: str) -> None:
    """A database migrated down below head fails check_schema with SchemaBehindError
    naming `flightsync migrate`; upgrading makes the check pass."""
    migrate.downgrade(db_url, "base")
    with Database.open(db_url) as db:
        with pytest.raises(SchemaBehindError) as caught:
            db.check_schema()
        assert "flightsync migrate" in caught.value.message
        assert "\n" not in caught.value.message
        migrate.upgrade(db_url)
        db.check_schema()


def test_unknown_revision_in_database_is_refused(tmp_path: Path) -> None:
    """A database stamped with a revision this code does not know (a newer flightsync) is not
    at head either: SchemaBehindError, saying the revision is unknown."""
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    migrate.upgrade(url)
    with Database.open(url) as db:
        with db.session() as session:
            session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(SchemaBehindError) as caught:
            db.check_schema()
    assert "9999_future" in caught.value.message
    assert "unknown" in caught.value.message


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    """Every SQLite connection runs in WAL mode with a 30 s busy timeout, synchronous=NORMAL
    and enforced foreign keys."""
    with Database.open(f"sqlite:///{tmp_path / 'w.db'}", create_default=True) as db:
        assert db.dialect == "sqlite"
        with db.engine.connect() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")}
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30_000, "synchronous": 1,
                      "foreign_keys": 1}


def test_foreign_keys_are_enforced(db_url: str) -> None:
    """An audit row pointing at no flight is rejected on both backends."""
    with Database.open(db_url) as db, pytest.raises(IntegrityError), db.session() as session:
        session.add(FlightChange(flight_id=12345, field="status", at=datetime.now(UTC)))


def test_aware_datetimes_round_trip_as_utc(db_url: str) -> None:
    """A timestamp written with any offset is read back as the same instant, timezone-aware
    in UTC, and compares as an instant in queries."""
    departure = datetime(2026, 2, 25, 9, 30, tzinfo=BERLIN_WINTER)
    with Database.open(db_url) as db:
        with db.session() as session:
            session.add(_flight(scheduled_departure=departure))
        with db.session() as session:
            row = session.exec(select(Flight)).one()
            just_before = departure.astimezone(UTC) - timedelta(minutes=1)
            later = session.exec(select(Flight).where(
                col(Flight.scheduled_departure) > just_before)).all()
    assert row.scheduled_departure == departure
    assert row.scheduled_departure is not None
    assert row.scheduled_departure.tzinfo is UTC
    assert row.created_at is not None and row.created_at.tzinfo is UTC
    assert [f.id for f in later] == [row.id]


def test_naive_datetime_is_refused(tmp_path: Path) -> None:
    """A naive timestamp is not silently taken for UTC: writing one fails."""
    with Database.open(f"sqlite:///{tmp_path / 'n.db'}", create_default=True) as db:
        with pytest.raises(StatementError, match="aware"), db.session() as session:
            session.add(_flight(scheduled_departure=datetime(2026, 2, 25, 9, 30)))
            session.flush()
        with db.session() as session:
            assert session.exec(select(Flight)).all() == []


def test_session_commits_on_success_and_rolls_back_on_error(db_url: str) -> None:
    """Rows written in a session block are kept when it ends normally and discarded when it
    raises; the error propagates unchanged."""
    with Database.open(db_url) as db:
        with db.session() as session:
            session.add(_flight(flight_number=1))
        with pytest.raises(RuntimeError, match="boom"), db.session() as session:
            session.add(_flight(flight_number=2))
            session.flush()
            raise RuntimeError("boom")
        with db.session() as session:
            numbers = [f.flight_number for f in session.exec(select(Flight)).all()]
    assert numbers == [1]


def test_released_savepoint_is_part_of_the_outer_transaction(db_url: str) -> None:
    """A savepoint opened first thing in a session belongs to the session's transaction: when
    the session rolls back, the work released from the savepoint is undone too (sqlite3's own
    transaction handling would have committed it)."""
    with Database.open(db_url) as db:
        with pytest.raises(RuntimeError), db.session() as session:
            with session.begin_nested():
                session.add(_flight(flight_number=7))
            raise RuntimeError("abandon the flight")
        with db.session() as session:
            assert session.exec(select(Flight)).all() == []


def test_unreachable_postgresql_is_a_store_error_without_password() -> None:
    """A PostgreSQL server that cannot be reached gives StoreError (exit 5) with a one-line
    message that shows the URL with its password hidden."""
    with pytest.raises(StoreError) as caught:
        Database.open("postgresql+psycopg://fs:s3cret-pw@127.0.0.1:1/flightsync")
    error = caught.value
    assert error.exit_code == 5
    assert "s3cret-pw" not in error.message
    assert "***" in error.message
    assert "\n" not in error.message


def test_sqlite_folder_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    """A database path whose folder cannot be made (a file is in the way) gives StoreError
    (exit 5) naming the folder."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(StoreError) as caught:
        Database.open(f"sqlite:///{blocker / 'flightsync.db'}", create_default=True)
    assert caught.value.exit_code == 5
    assert str(blocker) in caught.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_sqlite_folder_is_a_store_error(tmp_path: Path) -> None:
    """A database in a folder the user may not write gives StoreError, not a traceback."""
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(StoreError):
            Database.open(f"sqlite:///{folder / 'flightsync.db'}", create_default=True)
    finally:
        folder.chmod(0o700)


def test_url_display_hides_the_password_and_names_the_dialect(pg_url: str) -> None:
    """url_display never carries the password; a bare postgresql:// URL uses psycopg 3."""
    with_password = pg_url.replace("postgres@", "postgres:hunter2@").replace(
        "postgresql+psycopg://", "postgresql://")
    with Database.open(with_password) as db:
        assert db.dialect == "postgresql"
        assert "hunter2" not in db.url_display
        assert db.url_display.startswith("postgresql+psycopg://postgres:***@")


def test_unsupported_database_url_is_a_config_error() -> None:
    """Only SQLite and PostgreSQL are supported; anything else is a configuration error."""
    with pytest.raises(ConfigError):
        Database.open("mysql://user:pw@localhost/flightsync")
    with pytest.raises(ConfigError) as caught:
        Database.open("not a url at all: secret")
    assert "secret" not in caught.value.message


def test_a_run_never_claims_again_a_flight_it_synced_with_a_short_ttl(db_url: str) -> None:
    """`batch --due` claims flights due by the run's start: a flight synced in the run is
    next due after that, even when its TTL is shorter than the run, so the run's later claims
    leave it alone (the next run takes it). Without ``due_by`` it comes back."""
    started = datetime.now(UTC)
    database = Database.open(db_url)
    try:
        with database.session() as session:
            for number in (1, 2):
                session.add(_flight(flight_number=number, tracked=True,
                                    next_sync_due_at=started - timedelta(minutes=1)))
        with database.session() as session:
            first = repo.claim_due(session, now=started, due_by=started, limit=1,
                                   owner="run", lease_seconds=600,
                                   postgres=database.dialect == "postgresql")
        assert [q.number for q in first] == [1]
        # Synced: due again 30 s later; the run goes on for another minute.
        later = started + timedelta(seconds=90)
        with database.session() as session:
            repo.release_leases(session, [repo.key_of(first[0])], "run")
            session.execute(update(Flight).where(col(Flight.flight_number) == 1)
                            .values(next_sync_due_at=started + timedelta(seconds=30)))
        with database.session() as session:
            again = repo.claim_due(session, now=later, due_by=started, limit=5, owner="run",
                                   lease_seconds=600, postgres=database.dialect == "postgresql")
        assert [q.number for q in again] == [2]
        with database.session() as session:
            repo.release_leases(session, [repo.key_of(q) for q in again], "run")
            unbounded = repo.claim_due(session, now=later, limit=5, owner="next",
                                       lease_seconds=600,
                                       postgres=database.dialect == "postgresql")
        assert sorted(q.number for q in unbounded) == [1, 2]
    finally:
        database.close()
