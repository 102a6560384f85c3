"""Monthly partitions of source_observation and flight_change on PostgreSQL (migration
0006_pg_partitions, store/_partitions.py): an existing database's rows move into the
partitions on upgrade and back on downgrade, unchanged; the months ahead are created by
migrate and by batch --due; retention drops whole months."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from flightsync.store import migrate
from flightsync.store._partitions import (
    MONTHS_AHEAD,
    Month,
    drop_partitions_before,
    ensure_partitions,
    existing,
)
from flightsync.store._write import compress_raw

BEFORE = "0005_storage_retention"
NOW = datetime.now(UTC)
# Rows in three past months, the current one and (observations) one beyond the months ahead.
PAST = [NOW - timedelta(days=days) for days in (95, 64, 33, 0)]


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    made = create_engine(pg_url)
    yield made
    made.dispose()


def _populate(engine: Engine) -> None:
    """Flights with observations and audit rows across several months, as a database at
    the previous revision holds them."""
    with engine.begin() as conn:
        for n in (1, 2):
            conn.execute(text(
                "INSERT INTO flight (id, carrier, flight_number, suffix, departure_date, "
                "leg_index, origin, status, codeshares, sync_status, tracked, sync_attempts, "
                "consecutive_failures, version, has_open_conflict, created_at, updated_at) "
                "VALUES (:n, 'LH', :n, '', '2026-03-01', 0, 'FRA', 'scheduled', '[]', "
                "'synced', true, 1, 0, 1, false, :now, :now)"), {"n": n, "now": NOW})
        for at in PAST:
            for n in (1, 2):
                conn.execute(text(
                    "INSERT INTO source_observation (flight_id, source, \"values\", "
                    "observed_at, confirmed_at, run_id, raw_zlib) VALUES (:n, 'lufthansa', "
                    "'{\"gate\": \"B\\u00e9\"}', :at, :at, 'r', :raw)"),
                    {"n": n, "at": at, "raw": compress_raw("raw")})
                conn.execute(text(
                    "INSERT INTO flight_change (flight_id, field, old, new, source, rule, "
                    "run_id, version, at) VALUES (:n, 'departure_gate', '\"A\"', '\"B\"', "
                    "'lufthansa', 'priority', 'r', 2, :at)"), {"n": n, "at": at})


def _rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY id'))]


def _kind(engine: Engine, table: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT relkind FROM pg_class WHERE oid = "
                                     "to_regclass(:t)"), {"t": table}).scalar())


def _primary_key(engine: Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(:t) "
            "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"),
            {"t": table}).scalars())


def test_upgrade_moves_rows_into_months_and_downgrade_moves_them_back(
        pg_url: str, engine: Engine) -> None:
    """A populated database at the previous revision: upgrade makes both tables
    partitioned by month with every row unchanged (one partition per month that holds
    rows, the months ahead, a default), the primary key (id, partition key); downgrade
    gives plain tables with the same rows and primary key (id); a second upgrade again."""
    migrate.upgrade(pg_url, BEFORE)
    _populate(engine)
    rows = {t: _rows(engine, t) for t in ("source_observation", "flight_change")}
    migrate.upgrade(pg_url)
    for table, key in (("source_observation", "observed_at"), ("flight_change", "at")):
        assert _kind(engine, table) == "p"
        assert _rows(engine, table) == rows[table]
        assert _primary_key(engine, table) == ["id", key]
        with engine.connect() as conn:
            months = existing(conn, table)
        first, last = Month.of(PAST[0]), Month.of(NOW)
        for _ in range(MONTHS_AHEAD):
            last = last.next()
        assert months[0] == first and months[-1] == last
        with engine.connect() as conn:
            spread = conn.execute(text(
                f"SELECT count(DISTINCT tableoid) FROM {table}")).scalar()
        assert spread == len({Month.of(at) for at in PAST})
    migrate.downgrade(pg_url, BEFORE)
    for table in ("source_observation", "flight_change"):
        assert _kind(engine, table) == "r"
        assert _rows(engine, table) == rows[table]
        assert _primary_key(engine, table) == ["id"]
    migrate.upgrade(pg_url)
    for table in ("source_observation", "flight_change"):
        assert _kind(engine, table) == "p"
        assert _rows(engine, table) == rows[table]


def test_partitioned_tables_keep_keys_sequences_and_cascades(pg_url: str,
                                                            engine: Engine) -> None:
    """After the upgrade a new row takes the next id of the old sequence, a row naming no
    flight is refused (the foreign key moved over), and deleting a flight removes its
    rows in every month (ON DELETE CASCADE)."""
    migrate.upgrade(pg_url, BEFORE)
    _populate(engine)
    top = max(r[0] for r in _rows(engine, "source_observation"))
    migrate.upgrade(pg_url)
    with engine.begin() as conn:
        new_id = conn.execute(text(
            "INSERT INTO source_observation (flight_id, source, \"values\", observed_at, "
            "confirmed_at) VALUES (1, 'x', '{}', now(), now()) RETURNING id")).scalar()
    assert new_id == top + 1
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO flight_change (flight_id, field, version, at) "
                          "VALUES (999, 'x', 1, now())"))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM flight WHERE id = 1"))
        left = conn.execute(text(
            "SELECT count(*) FROM source_observation WHERE flight_id = 1")).scalar()
    assert left == 0


def test_ensure_partitions_adds_months_and_moves_rows_the_default_caught(
        pg_url: str, engine: Engine) -> None:
    """A row beyond the existing months lands in the default partition; once its month is
    ensured, the row sits in that month's partition and the default is empty. Ensuring
    again changes nothing."""
    migrate.upgrade(pg_url)
    later = NOW + timedelta(days=31 * (MONTHS_AHEAD + 2))
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO flight (id, carrier, flight_number, suffix, departure_date, "
            "leg_index, origin, status, codeshares, sync_status, tracked, sync_attempts, "
            "consecutive_failures, version, has_open_conflict, created_at, updated_at) "
            "VALUES (1, 'LH', 1, '', '2026-03-01', 0, 'FRA', 'scheduled', '[]', 'synced', "
            "true, 1, 0, 1, false, now(), now())"))
        conn.execute(text("INSERT INTO flight_change (flight_id, field, version, at) "
                          "VALUES (1, 'x', 1, :at)"), {"at": later})
        assert conn.execute(text("SELECT count(*) FROM flight_change_default")).scalar() == 1
    with engine.begin() as conn:
        made = ensure_partitions(conn, now=later, ahead=0)
    assert made == [Month.of(later).name("source_observation"),
                    Month.of(later).name("flight_change")]
    with engine.begin() as conn:
        assert ensure_partitions(conn, now=later, ahead=0) == []
        assert conn.execute(text("SELECT count(*) FROM flight_change_default")).scalar() == 0
        where = conn.execute(text(
            "SELECT tableoid::regclass::text FROM flight_change")).scalar()
    assert where == Month.of(later).name("flight_change")


def test_drop_partitions_before_drops_whole_months_only(pg_url: str, engine: Engine) -> None:
    """Months that end before the cutoff go with their rows; the month the cutoff falls in
    stays whole, and so do later ones."""
    migrate.upgrade(pg_url, BEFORE)
    _populate(engine)
    migrate.upgrade(pg_url)
    cutoff = PAST[1]  # inside the second oldest month
    with engine.begin() as conn:
        dropped = drop_partitions_before(conn, cutoff)
    assert dropped == [Month.of(PAST[0]).name("source_observation"),
                       Month.of(PAST[0]).name("flight_change")]
    with engine.connect() as conn:
        oldest = conn.execute(text("SELECT min(observed_at) FROM source_observation")).scalar()
        assert existing(conn, "flight_change")[0] == Month.of(PAST[1])
    assert oldest == PAST[1]


def test_migrate_at_head_creates_the_months_ahead(pg_url: str, engine: Engine) -> None:
    """`migrate` on a database already at head creates months ahead that went missing (as
    time passes)."""
    migrate.upgrade(pg_url)
    with engine.begin() as conn:
        last = existing(conn, "source_observation")[-1]
        conn.execute(text(f'DROP TABLE "{last.name("source_observation")}"'))
    migrate.upgrade(pg_url)
    with engine.connect() as conn:
        assert existing(conn, "source_observation")[-1] == last


def test_prune_drops_whole_months_of_changes_and_trims_the_rest(pg_url: str,
                                                                 engine: Engine) -> None:
    """`prune` on PostgreSQL (store/_prune.py's DropPartitions): the audit rows past the
    changes horizon go, the months wholly before it as dropped partitions and the straddling
    month row by row; the report counts every row; newer rows and their months stay."""
    from flightsync.config import RetentionSettings  # noqa: PLC0415
    from flightsync.store import Database  # noqa: PLC0415
    from flightsync.store import _prune as store_prune  # noqa: PLC0415

    migrate.upgrade(pg_url, BEFORE)
    _populate(engine)
    migrate.upgrade(pg_url)
    retention = RetentionSettings(changes_days=50)
    changes = [h for h in store_prune.horizons(retention, NOW) if h.name == "changes"]
    db = Database.open(pg_url)
    try:
        report = store_prune.prune(db, changes, now=NOW, chunk_rows=1)
    finally:
        db.close()
    assert report.removed["changes"] == 4  # two flights, 95 and 64 days ago
    cutoff = NOW - timedelta(days=50)
    with engine.connect() as conn:
        left = sorted(conn.execute(text("SELECT at FROM flight_change")).scalars())
        months = existing(conn, "flight_change")
    assert left == sorted([PAST[2], PAST[3]] * 2)
    assert Month.of(PAST[0]) not in months
    assert all(m.next().start > cutoff for m in months)
