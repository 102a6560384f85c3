"""Retention (README, "Retention"): remove what is past each horizon, in small transactions.

A ``TableHorizon`` names one kind of row and the instant before which it is past retention;
``prune`` works through a list of them a chunk at a time. Each chunk is one transaction that
removes at most ``chunk_rows`` rows and records its progress in ``prune_mark``, so SQLite's
write lock is held only that long, a killed process loses at most one uncommitted chunk, and
the next prune carries on where it stopped. A time budget ends the work between two chunks
(``batch --due`` prunes a slice after its work; ``flightsync prune`` runs unbounded).

How a horizon's rows go is the ``Remover`` registered for its ``kind``: ``DIALECT_REMOVERS``
first (``(dialect, kind)``), then ``REMOVERS``. That is the seam where a backend-specific way
(dropping whole partitions on PostgreSQL) plugs in for a kind without touching the loop, the
marks or the budget.

Horizons whose rows never come back below a passed cutoff (raw answers by the time they were
stored, observations by their flight's day) start from the ``done_through`` of their last
complete pass, so the pass reads only the rows that crossed the horizon since; ``full=True``
(``flightsync prune --full``) reads them all, for rows stored late for an old day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as day_start
from typing import Any, Protocol

from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from flightsync.config import RetentionSettings
from flightsync.store import _partitions
from flightsync.store._db import Database
from flightsync.store.tables import (
    Conflict,
    Flight,
    FlightChange,
    NotificationDelivery,
    PruneMark,
    SourceObservation,
    SyncRun,
    WebhookEvent,
)

_F = Flight.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CHANGE = FlightChange.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]
_RUN = SyncRun.__table__  # type: ignore[attr-defined]
_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERY = NotificationDelivery.__table__  # type: ignore[attr-defined]
_MARK = PruneMark.__table__  # type: ignore[attr-defined]

FLIGHT_CHILDREN_PER_ROW = 25  # a flight chunk takes chunk_rows / this many flights
VACUUM_PAGES = 1024            # pages SQLite gives back per vacuum step (4 MiB at 4 KiB)

# What a chunk calls at its named steps (tests place a SIGKILL there: engine._killpoint).
Hook = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TableHorizon:
    """Rows of one kind past retention: those of ``table`` whose ``column`` is before
    ``cutoff`` (``kind`` says how they go; see ``REMOVERS``)."""

    name: str          # the horizon's name in reports and prune_mark
    kind: str          # a key of REMOVERS
    table: Table
    column: str        # ``departure_date``: the leg's day, in the flight table
    cutoff: datetime   # aware UTC; a day column compares with cutoff's date

    @property
    def by_day(self) -> bool:
        return self.column == "departure_date"


def horizons(retention: RetentionSettings, now: datetime) -> list[TableHorizon]:
    """The horizons of ``retention`` at ``now``, in the order prune works through them."""
    def before(days: float) -> datetime:
        return now - timedelta(days=days)

    def day_of(days: float) -> datetime:
        # Counted from the flight's day: whole days, the cutoff at the start of a UTC day.
        return datetime.combine(before(days).date(), day_start(), UTC)

    out = [
        TableHorizon("raw_answers", "clear_raw", _OBS, "observed_at", before(retention.raw_days)),
        TableHorizon("observations", "delete_by_flight_day", _OBS, "departure_date",
                     day_of(retention.observations_days)),
        TableHorizon("changes", "delete", _CHANGE, "at", before(retention.changes_days)),
        TableHorizon("runs", "delete", _RUN, "started_at", before(retention.runs_days)),
        TableHorizon("deliveries", "delete", _DELIVERY, "created_at",
                     before(retention.deliveries_days)),
        TableHorizon("webhook_events", "delete", _EVENT, "received_at",
                     before(retention.webhook_events_days)),
    ]
    if retention.flights_days is not None:
        out.append(TableHorizon("flights", "delete_flights", _F, "departure_date",
                                day_of(retention.flights_days)))
    return out


class Remover(Protocol):
    """One way of removing a horizon's rows."""

    def count(self, conn: Connection, horizon: TableHorizon, since: datetime | None) -> int:
        """How many rows are past the horizon (``since``: only those from that instant)."""

    def chunk(self, conn: Connection, horizon: TableHorizon, since: datetime | None,
              limit: int) -> tuple[int, bool]:
        """Remove up to ``limit`` rows past the horizon: how many went, and whether none
        are left."""


def _past(horizon: TableHorizon, since: datetime | None) -> list[Any]:
    if horizon.by_day:  # a leg's day: the flight table's (observations go by their leg's)
        column = _F.c[horizon.column]
        wheres = [column < horizon.cutoff.date()]
        if since is not None:
            wheres.append(column >= since.date())
        return wheres
    column = horizon.table.c[horizon.column]
    wheres = [column < horizon.cutoff]
    if since is not None:
        wheres.append(column >= since)
    return wheres


class DeleteRows:
    """Delete the rows whose time column is before the cutoff, oldest first."""

    def _ids(self, horizon: TableHorizon, since: datetime | None) -> Select[Any]:
        table = horizon.table
        return select(table.c.id).where(*_past(horizon, since))

    def count(self, conn: Connection, horizon: TableHorizon, since: datetime | None) -> int:
        ids = self._ids(horizon, since).subquery()
        return int(conn.execute(select(func.count()).select_from(ids)).scalar_one())

    def chunk(self, conn: Connection, horizon: TableHorizon, since: datetime | None,
              limit: int) -> tuple[int, bool]:
        table = horizon.table
        ids = self._ids(horizon, since).order_by(table.c[horizon.column]).limit(limit)
        found = list(conn.execute(ids).scalars())
        if found:
            conn.execute(delete(table).where(table.c.id.in_(found)))
        return len(found), len(found) < limit


class ClearRaw(DeleteRows):
    """Drop the raw answers of observations stored before the cutoff (the rows stay)."""

    def _ids(self, horizon: TableHorizon, since: datetime | None) -> Select[Any]:
        return super()._ids(horizon, since).where(_OBS.c.raw_zlib.isnot(None))

    def chunk(self, conn: Connection, horizon: TableHorizon, since: datetime | None,
              limit: int) -> tuple[int, bool]:
        found = list(conn.execute(self._ids(horizon, since).limit(limit)).scalars())
        if found:
            conn.execute(update(_OBS).where(_OBS.c.id.in_(found)).values(raw_zlib=None))
        return len(found), len(found) < limit


class DeleteByFlightDay(DeleteRows):
    """Delete the observations of the legs whose day is before the cutoff's."""

    def _ids(self, horizon: TableHorizon, since: datetime | None) -> Select[Any]:
        legs = select(_F.c.id).where(*_past(horizon, since))
        return select(_OBS.c.id).where(_OBS.c.flight_id.in_(legs))

    def chunk(self, conn: Connection, horizon: TableHorizon, since: datetime | None,
              limit: int) -> tuple[int, bool]:
        found = list(conn.execute(self._ids(horizon, since).limit(limit)).scalars())
        if found:
            conn.execute(delete(_OBS).where(_OBS.c.id.in_(found)))
        return len(found), len(found) < limit


class DeleteFlights(DeleteRows):
    """Delete whole legs whose day is before the cutoff's, with their audit trail,
    observations and conflicts; webhook events and deliveries keep their rows without the
    link (as ``flights delete`` does)."""

    def chunk(self, conn: Connection, horizon: TableHorizon, since: datetime | None,
              limit: int) -> tuple[int, bool]:
        legs = max(1, limit // FLIGHT_CHILDREN_PER_ROW)
        found = list(conn.execute(self._ids(horizon, since).order_by(_F.c.id)
                                  .limit(legs)).scalars())
        if not found:
            return 0, True
        for table in (_CHANGE, _OBS, _CONFLICT):
            conn.execute(delete(table).where(table.c.flight_id.in_(found)))
        for table in (_EVENT, _DELIVERY):
            conn.execute(update(table).where(table.c.flight_id.in_(found))
                         .values(flight_id=None))
        conn.execute(delete(_F).where(_F.c.id.in_(found)))
        return len(found), len(found) < legs


class DropPartitions(DeleteRows):
    """PostgreSQL: a table range-partitioned by month on the horizon's own column
    (``flight_change.at``, store._partitions) loses each month wholly past the cutoff by
    dropping its partition (rows counted first, for the report); the straddling month and any
    other table go row by row. ``source_observation`` is partitioned by ``observed_at`` but
    kept by its flight's day, so its months are never dropped whole: a tracked flight's early
    observations can be older than the month its day falls in."""

    def chunk(self, conn: Connection, horizon: TableHorizon, since: datetime | None,
              limit: int) -> tuple[int, bool]:
        table = horizon.table.name
        whole = (_partitions.months_before(conn, table, horizon.cutoff)
                 if _partitions.PARTITIONED.get(table) == horizon.column else [])
        if not whole:
            return super().chunk(conn, horizon, since, limit)
        rows = sum(int(conn.execute(select(func.count()).select_from(
            text(f'"{m.name(table)}"'))).scalar_one()) for m in whole)
        _partitions.drop_months(conn, table, whole)
        return rows, False  # the straddling month's rows, if any, in the next chunks


REMOVERS: dict[str, Remover] = {
    "delete": DeleteRows(),
    "clear_raw": ClearRaw(),
    "delete_by_flight_day": DeleteByFlightDay(),
    "delete_flights": DeleteFlights(),
}
# A backend's own way for a kind, ahead of REMOVERS.
DIALECT_REMOVERS: dict[tuple[str, str], Remover] = {("postgresql", "delete"): DropPartitions()}


def remover_for(dialect: str, kind: str) -> Remover:
    """The Remover of ``kind`` on ``dialect`` (``sqlite``, ``postgresql``)."""
    return DIALECT_REMOVERS.get((dialect, kind)) or REMOVERS[kind]


# Kinds whose passed rows never come back: a pass starts from the last complete one's horizon.
_RESUMES_FROM_DONE = frozenset({"clear_raw", "delete_by_flight_day"})


@dataclass(slots=True)
class PruneReport:
    """What one prune did (or, ``dry_run``, would do)."""

    removed: dict[str, int] = field(default_factory=dict)   # rows per horizon name
    complete: bool = True        # every horizon done (False: the budget ran out first)
    chunks: int = 0              # transactions that removed something
    resumed: list[str] = field(default_factory=list)  # horizons a killed pass had begun
    vacuumed_pages: int = 0      # SQLite pages given back to the file system
    cutoffs: dict[str, datetime] = field(default_factory=dict)


def pending(database: Database, found: Sequence[TableHorizon], *,
            full: bool = False) -> PruneReport:
    """``prune`` without removing anything: how many rows each horizon would remove."""
    report = PruneReport()
    with database.session() as session:
        conn = session.connection()
        marks = _marks(conn)
        for horizon in found:
            since = None if full else _since(horizon, marks.get(horizon.name))
            report.removed[horizon.name] = remover_for(conn.dialect.name, horizon.kind).count(
                conn, horizon, since)
            report.cutoffs[horizon.name] = horizon.cutoff
    return report


def prune(database: Database, found: Sequence[TableHorizon], *, now: datetime,
          chunk_rows: int, budget_seconds: float | None = None,
          clock: Callable[[], float] = time.monotonic, hook: Hook | None = None,
          full: bool = False, vacuum: bool = True) -> PruneReport:
    """Remove what is past each horizon, a transaction of at most ``chunk_rows`` rows at a
    time, until done or ``budget_seconds`` (by ``clock``) have passed; SQLite then gives
    freed pages back (``PRAGMA incremental_vacuum``) within what is left of the budget."""
    started = clock()
    report = PruneReport()

    def spent() -> bool:
        return budget_seconds is not None and clock() - started >= budget_seconds

    with database.session() as session:
        marks = _marks(session.connection())
    for horizon in found:
        report.cutoffs[horizon.name] = horizon.cutoff
        report.removed.setdefault(horizon.name, 0)
        mark = marks.get(horizon.name)
        if mark is not None and mark["finished_at"] is None and mark["started_at"] is not None:
            report.resumed.append(horizon.name)
        since = None if full else _since(horizon, mark)
        remover = remover_for(database.dialect, horizon.kind)
        while True:
            if spent():
                report.complete = False
                return report
            with database.session() as session:
                conn = session.connection()
                removed, done = remover.chunk(conn, horizon, since, chunk_rows)
                _note(conn, horizon, removed, done=done, now=now, mark=mark)
                if hook is not None:
                    # Inside the transaction: a kill here rolls the chunk back.
                    hook(f"prune.chunk.{horizon.name}")
            mark = {"finished_at": now if done else None, "started_at": now}
            if removed:
                report.chunks += 1
                report.removed[horizon.name] += removed
            if done:
                break
    if vacuum and database.dialect == "sqlite":
        report.vacuumed_pages = _vacuum(database, spent)
        report.complete = report.complete and not spent()
    return report


def marks(database: Database) -> dict[str, dict[str, Any]]:
    """Every horizon's mark (``horizon``, ``done_through``, ``removed``, ``started_at``,
    ``finished_at``) by name, for ``status``."""
    with database.session() as session:
        return _marks(session.connection())


def _marks(conn: Connection) -> dict[str, dict[str, Any]]:
    return {row.name: dict(row._mapping) for row in conn.execute(select(_MARK))}


def _since(horizon: TableHorizon, mark: Mapping[str, Any] | None) -> datetime | None:
    if horizon.kind not in _RESUMES_FROM_DONE or mark is None:
        return None
    done = mark.get("done_through")
    return done if isinstance(done, datetime) else None


def _note(conn: Connection, horizon: TableHorizon, removed: int, *, done: bool,
          now: datetime, mark: Mapping[str, Any] | None) -> None:
    """Record a chunk's progress in its own transaction: a new pass when the last one had
    finished (or none ran), the same pass carried on otherwise."""
    carrying_on = mark is not None and mark.get("finished_at") is None
    values: dict[str, Any] = {"horizon": horizon.cutoff}
    if carrying_on:
        values["removed"] = _MARK.c.removed + removed
    else:
        values.update(removed=removed, started_at=now, finished_at=None)
    if done:
        values.update(finished_at=now, done_through=horizon.cutoff)
    if mark is None:  # the horizon's first pass: its row (another host's may be first)
        first = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(_MARK)
        conn.execute(first.values(name=horizon.name, removed=0).on_conflict_do_nothing())
    conn.execute(update(_MARK).where(_MARK.c.name == horizon.name).values(**values))


def _vacuum(database: Database, spent: Callable[[], bool]) -> int:
    """Give free pages back to the file system a step at a time, while the budget lasts.

    ``PRAGMA incremental_vacuum(N)`` frees one page per step of the statement, and the
    driver's ``execute`` steps a statement without result columns once: ``executescript``
    (sqlite3_exec) runs it to the end, in a transaction of its own (the driver is in
    autocommit, engine._configure_sqlite), so each step holds the write lock briefly."""
    freed = 0
    raw = database.engine.raw_connection()
    try:
        while not spent():
            cursor = raw.cursor()
            try:
                free = int(cursor.execute("PRAGMA freelist_count").fetchone()[0])
                if free == 0:
                    break
                step = min(free, VACUUM_PAGES)
                cursor.executescript(f"PRAGMA incremental_vacuum({step});")
                freed += step
            finally:
                cursor.close()
    finally:
        raw.close()
    return freed


__all__ = ["DIALECT_REMOVERS", "REMOVERS", "PruneReport", "Remover", "TableHorizon",
           "horizons", "marks", "pending", "prune", "remover_for"]
