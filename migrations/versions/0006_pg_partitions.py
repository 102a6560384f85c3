"""Monthly partitions of source_observation and flight_change on PostgreSQL

Revision ID: 0006_pg_partitions
Revises: 0005_storage_retention
Create Date: 2026-12-06

On PostgreSQL, ``source_observation`` (by ``observed_at``) and ``flight_change`` (by ``at``)
become range-partitioned by calendar month (UTC), so that retention drops whole months
(flightsync/store/_partitions.py). SQLite is unchanged: this revision does nothing there.

The conversion is column-agnostic: the partitioned table is made LIKE the plain one (columns,
defaults, NOT NULL and CHECK constraints), its indexes and foreign keys are re-created from
the catalogue's own definitions, the rows are copied, the id sequence moves over, and the
names are swapped. The primary key becomes (id, partition key), as PostgreSQL requires of a
partitioned table; a foreign key pointing at one of these tables could not survive that, so
the upgrade refuses when one exists. The downgrade is the same in reverse, to plain tables.

``flight`` gets fillfactor 85: a claim's lease update then stays on its page (HOT, no index
entry written) where the page has room.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import Connection, text

from flightsync.store._partitions import (
    MONTHS_AHEAD,
    PARTITIONED,
    Month,
    create_month,
    months,
)

revision: str = "0006_pg_partitions"
down_revision: str | Sequence[str] | None = "0005_storage_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, key in PARTITIONED.items():
        _to_partitioned(conn, table, key)
    # Room on each page of flight for the claim's lease update to stay on its page (a HOT
    # update: no index touched); pages written from now on keep it.
    conn.execute(text("ALTER TABLE flight SET (fillfactor = 85)"))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in PARTITIONED:
        _to_plain(conn, table)
    conn.execute(text("ALTER TABLE flight RESET (fillfactor)"))


def _to_partitioned(conn: Connection, table: str, key: str) -> None:
    referencing = conn.execute(text(
        "SELECT conname, conrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = to_regclass(:t)"), {"t": table}).all()
    if referencing:
        raise RuntimeError(
            f"cannot partition {table}: foreign keys point at it "
            f"({', '.join(f'{name} on {owner}' for name, owner in referencing)}), and its "
            f"primary key must become (id, {key})")
    old = f"{table}_unpartitioned"
    indexes, foreign = _definitions(conn, table)
    _set_aside(conn, table, old)
    conn.execute(text(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
        f'INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ("{key}")'))
    conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" '
                      f'PRIMARY KEY (id, "{key}")'))
    conn.execute(text(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT'))
    lowest, highest = conn.execute(text(
        f'SELECT min("{key}"), max("{key}") FROM "{old}"')).one()  # noqa: S608
    now = datetime.now(UTC)
    first = Month.of(min(lowest, now) if lowest is not None else now)
    last = Month.of(max(highest, now) if highest is not None else now)
    for _ in range(MONTHS_AHEAD):
        last = last.next()
    for month in months(first, last):
        create_month(conn, table, month)
    _rebuild(conn, table, old, indexes, foreign)


def _to_plain(conn: Connection, table: str) -> None:
    old = f"{table}_partitioned"
    indexes, foreign = _definitions(conn, table)
    _set_aside(conn, table, old)
    conn.execute(text(
        f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
        "INCLUDING STORAGE INCLUDING COMMENTS)"))
    conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "pk_{table}" PRIMARY KEY (id)'))
    _rebuild(conn, table, old, indexes, foreign)


def _definitions(conn: Connection, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's secondary indexes (CREATE INDEX statements, partitioned ones without
    their ONLY) and its foreign keys (name, definition), from the catalogue."""
    indexes = [row[0].replace(" ON ONLY ", " ON ") for row in conn.execute(text(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid = to_regclass(:t) AND NOT i.indisprimary ORDER BY i.indexrelid"),
        {"t": table})]
    foreign = [(row[0], row[1]) for row in conn.execute(text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = to_regclass(:t) ORDER BY conname"), {"t": table})]
    return indexes, foreign


def _set_aside(conn: Connection, table: str, old: str) -> None:
    """Rename ``table`` to ``old`` with its indexes and the constraints an index backs (their
    names are the schema's; a foreign key's name is the table's own and may repeat)."""
    conn.execute(text(f'ALTER TABLE "{table}" RENAME TO "{old}"'))
    for (name,) in conn.execute(text(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t) "
            "AND contype IN ('p', 'u')"), {"t": old}).all():
        conn.execute(text(f'ALTER TABLE "{old}" RENAME CONSTRAINT "{name}" TO "{name}_old"'))
    for (name,) in conn.execute(text(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = to_regclass(:t) AND NOT i.indisprimary"), {"t": old}).all():
        conn.execute(text(f'ALTER INDEX "{name}" RENAME TO "{name}_old"'))


def _rebuild(conn: Connection, table: str, old: str, indexes: list[str],
             foreign: list[tuple[str, str]]) -> None:
    """Copy the rows of ``old`` into ``table``, re-create its indexes and foreign keys, move
    the id sequence over and drop ``old``."""
    conn.execute(text(f'INSERT INTO "{table}" SELECT * FROM "{old}"'))  # noqa: S608
    for statement in indexes:
        conn.execute(text(statement))
    for name, definition in foreign:
        conn.execute(text(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}'))
    sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                            {"t": old}).scalar()
    if sequence is not None:
        conn.execute(text(f'ALTER SEQUENCE {sequence} OWNED BY "{table}".id'))
    conn.execute(text(f'DROP TABLE "{old}"'))
    conn.execute(text(f'ANALYZE "{table}"'))
