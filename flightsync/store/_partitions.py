"""Monthly partitions of the audit tables on PostgreSQL (migration 0006_pg_partitions).

``source_observation`` (by ``observed_at``) and ``flight_change`` (by ``at``) are range-
partitioned by calendar month in UTC: ``<table>_pYYYYMM`` holds one month, ``<table>_default``
catches anything outside the months that exist (normally empty). Retention then drops whole
months (``drop_partitions_before``) instead of deleting rows one by one.

``ensure_partitions`` creates the months from the current one to ``MONTHS_AHEAD`` ahead; it is
called by ``flightsync migrate`` and at the start of ``batch --due``, looks before it locks
(a month that exists costs one catalogue read) and gives up quietly on a lock it cannot get
within ``LOCK_TIMEOUT`` (another host's next run creates it: the default partition keeps the
rows meanwhile). On SQLite, and on a PostgreSQL database not partitioned, both do nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

log = structlog.get_logger(__name__)

PARTITIONED = {"source_observation": "observed_at", "flight_change": "at"}
"""Each partitioned table and its partition key."""
PG_ONLY_INDEXES = frozenset({"ix_flight_claim"})
"""Indexes made on PostgreSQL only (partial, INCLUDE; migration 0008): not in the models."""
MONTHS_AHEAD = 3
LOCK_TIMEOUT = "5s"
_MONTH = re.compile(r"^(?P<table>[a-z_]+)_p(?P<year>\d{4})(?P<month>\d{2})$")


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    def name(self, table: str) -> str:
        return f"{table}_p{self.year:04d}{self.month:02d}"


def is_partition(name: str) -> bool:
    """Whether ``name`` is one of the partitions (not a table of the models): Alembic's
    comparison leaves them out."""
    found = _MONTH.match(name)
    if found is not None and found["table"] in PARTITIONED:
        return True
    return any(name == f"{table}_default" for table in PARTITIONED)


def include_object(obj: Any, name: str | None, kind: str, reflected: bool,
                   compare_to: Any) -> bool:
    """Alembic's ``include_object``: the partitions (and their indexes) are left out of the
    comparison of the models with the database."""
    if kind == "table":
        return not (reflected and name is not None and is_partition(name))
    if kind == "index" and reflected and name in PG_ONLY_INDEXES:
        return False
    table = getattr(obj, "table", None)
    return table is None or not is_partition(str(table.name))


def partitioned(conn: Connection, table: str) -> bool:
    """Whether ``table`` is a partitioned table on this (PostgreSQL) database."""
    if conn.dialect.name != "postgresql":
        return False
    found = conn.execute(text(
        "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(:name)"),
        {"name": table}).scalar()
    return found == "p"


def months(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last``, both included."""
    out, month = [], first
    while (month.year, month.month) <= (last.year, last.month):
        out.append(month)
        month = month.next()
    return out


def existing(conn: Connection, table: str) -> list[Month]:
    """The monthly partitions ``table`` has, oldest first."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:name)"), {"name": table}).scalars()
    found = []
    for name in names:
        match = _MONTH.match(name)
        if match is not None and match["table"] == table:
            found.append(Month(int(match["year"]), int(match["month"])))
    return sorted(found, key=lambda m: (m.year, m.month))


def create_month(conn: Connection, table: str, month: Month) -> None:
    """Add ``month`` to ``table``; rows of that month already in the default partition move
    into it (so that a late month never fails for rows the default caught)."""
    key = PARTITIONED[table]
    name, default = month.name(table), f"{table}_default"
    bounds = {"start": month.start, "end": month.next().start}
    held = conn.execute(text(
        f'SELECT 1 FROM "{default}" WHERE "{key}" >= :start AND "{key}" < :end LIMIT 1'),  # noqa: S608
        bounds).first() if _exists(conn, default) else None
    start, end = (f"'{bounds['start'].isoformat()}'", f"'{bounds['end'].isoformat()}'")
    if held is None:
        conn.execute(text(f'CREATE TABLE "{name}" PARTITION OF "{table}" '
                          f"FOR VALUES FROM ({start}) TO ({end})"))
        return
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS '
                      "INCLUDING CONSTRAINTS)"))
    conn.execute(text(
        f'WITH moved AS (DELETE FROM "{default}" WHERE "{key}" >= :start AND "{key}" < :end '  # noqa: S608
        f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'), bounds)
    conn.execute(text(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" '
                      f"FOR VALUES FROM ({start}) TO ({end})"))


def ensure_partitions(conn: Connection, *, now: datetime,
                      ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the months of every partitioned table from ``now``'s to ``ahead`` months on
    that are missing; the partitions made. Runs in the caller's transaction (commit it)."""
    made: list[str] = []
    current = Month.of(now)
    last = current
    for _ in range(ahead):
        last = last.next()
    for table in PARTITIONED:
        if not partitioned(conn, table):
            continue
        have = set(existing(conn, table))
        missing = [m for m in months(current, last) if m not in have]
        if not missing:
            continue
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        for month in missing:
            create_month(conn, table, month)
            made.append(month.name(table))
    if made:
        log.info("store.partitions.created", partitions=made)
    return made


def try_ensure_partitions(conn: Connection, *, now: datetime) -> list[str]:
    """``ensure_partitions`` in a savepoint, a lock it could not get within LOCK_TIMEOUT
    logged and left to a later run instead of failing the caller."""
    if conn.dialect.name != "postgresql":
        return []
    try:
        with conn.begin_nested():
            return ensure_partitions(conn, now=now)
    except OperationalError as exc:
        log.warning("store.partitions.skipped", error=str(exc.orig).splitlines()[0])
        return []


def months_before(conn: Connection, table: str, cutoff: datetime) -> list[Month]:
    """The monthly partitions of ``table`` whose whole month lies before ``cutoff`` (none when
    ``table`` is not partitioned)."""
    if not partitioned(conn, table):
        return []
    return [month for month in existing(conn, table) if month.next().start <= cutoff]


def drop_months(conn: Connection, table: str, found: Iterable[Month]) -> list[str]:
    """Drop these monthly partitions of ``table`` (their rows go with them, at the cost of a
    catalogue change instead of a DELETE per row); the partitions dropped."""
    dropped: list[str] = []
    for month in found:
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        conn.execute(text(f'DROP TABLE "{month.name(table)}"'))
        dropped.append(month.name(table))
    if dropped:
        log.info("store.partitions.dropped", partitions=dropped)
    return dropped


def drop_partitions_before(conn: Connection, cutoff: datetime) -> list[str]:
    """Drop every monthly partition whose whole month lies before ``cutoff``; the partitions
    dropped. A month that straddles the cutoff stays: row retention trims it."""
    return [name for table in PARTITIONED
            for name in drop_months(conn, table, months_before(conn, table, cutoff))]


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT to_regclass(:name) IS NOT NULL"),
                        {"name": name}).scalar() is True


__all__ = [
    "MONTHS_AHEAD",
    "PARTITIONED",
    "Month",
    "create_month",
    "drop_months",
    "drop_partitions_before",
    "ensure_partitions",
    "existing",
    "include_object",
    "is_partition",
    "months",
    "months_before",
    "partitioned",
    "try_ensure_partitions",
]
