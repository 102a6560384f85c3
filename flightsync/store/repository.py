"""Queries and writes the engine needs, on SQLAlchemy Core for speed.

Every write function takes an open Session and leaves committing to the caller, so that the
engine decides the transaction boundaries (each flight all-or-nothing, flights grouped).
Values are kept as domain values (aware datetimes, tuples) on the way in and out; the audit
trail stores them JSON-encoded.

This module holds the flight rows (keys, stored legs, failed attempts) and is the one name
callers import: the other jobs live in their own modules and are re-exported here, so
``repository.<name>`` finds all of them. ``_write`` writes resolved flights, ``_due`` selects
and leases due flights, ``_runs`` keeps ``sync_run`` rows and run reporting, ``_operator``
conflicts and explain reads, ``_trust`` learned source scores, ``_hooks`` webhook events and
notification deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flightsync.models import OBSERVED_FIELDS, FlightQuery, FlightRecord, FlightStatus
from flightsync.store import _partitions
from flightsync.store._bulk import select_rows
from flightsync.store._bulk_pg import any_of
from flightsync.store._bulk_pg import select_rows as select_rows_pg
from flightsync.store._changes import changes_after, last_cursor
from flightsync.store._columns import FlightKey
from flightsync.store._due import claim_due, defer_leased, due_flights, release_leases
from flightsync.store._fa_alerts import (
    add_alert,
    alert_by_id,
    alerted_keys,
    close_alert,
    finished_alerts,
    list_alerts,
    tracked_without_alert,
)
from flightsync.store._flights import (
    delete_flight,
    last_origin,
    list_flights,
    set_tracked,
    tracking_of,
)
from flightsync.store._hooks import (
    link_webhook_event,
    note_delivery,
    record_webhook_event,
    start_delivery,
    webhook_event_hash,
    webhook_event_seen,
)
from flightsync.store._operator import (
    apply_resolution,
    get_conflict,
    latest_changes,
    latest_resolved_candidates,
    list_conflicts,
    observations_for,
)
from flightsync.store._runs import (
    SUCCESS_OUTCOMES,
    abandoned_runs,
    counts,
    finish_run,
    finish_run_alone,
    last_batch_run,
    last_run,
    run_totals,
    runs_since,
    start_run,
    unsynced_departing,
)
from flightsync.store._size import storage_figures
from flightsync.store._trust import (
    last_scores_at,
    latest_observation_values,
    replace_source_dependence,
    replace_source_scores,
    source_dependence,
    source_scores,
)
from flightsync.store._write import (
    GroupWriter,
    LegWrite,
    StoredLeg,
    WriteOutcome,
    content_hash,
    encode,
    match_stored_legs,
    write_flight,
)
from flightsync.store.tables import REJECTED_KEY, Conflict, Flight

_F = Flight.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]

# The job modules' names stay importable from here, where the engine has always found
# them; listing them in __all__ marks them as re-exports.
__all__ = [
    "REJECTED_KEY",
    "SUCCESS_OUTCOMES",
    "FlightKey",
    "GroupWriter",
    "LegWrite",
    "StoredLeg",
    "WriteOutcome",
    "abandoned_runs",
    "apply_resolution",
    "claim_due",
    "content_hash",
    "counts",
    "defer_leased",
    "due_flights",
    "encode",
    "finish_run",
    "finish_run_alone",
    "get_conflict",
    "key_of",
    "last_batch_run",
    "last_run",
    "last_scores_at",
    "latest_changes",
    "latest_observation_values",
    "latest_resolved_candidates",
    "leg_id",
    "link_webhook_event",
    "list_conflicts",
    "load_legs",
    "match_stored_legs",
    "note_delivery",
    "observations_for",
    "record_failure",
    "record_webhook_event",
    "release_leases",
    "replace_source_dependence",
    "replace_source_scores",
    "run_totals",
    "runs_since",
    "source_dependence",
    "source_scores",
    "start_delivery",
    "start_run",
    "unsynced_departing",
    "webhook_event_hash",
    "webhook_event_seen",
    "write_flight",
]
# _flights: the flights an operator lists, tracks, untracks and deletes (issue 20)
__all__ += ["changes_after", "last_cursor"]  # _changes: the change feed (issue 15)
__all__ += ["delete_flight", "last_origin", "list_flights", "set_tracked", "tracking_of"]
# _size: the database's size and rows per table, for status (issue 16)
__all__ += ["storage_figures"]
# _partitions: monthly partitions of the audit tables on PostgreSQL (issue 17)
__all__ += ["ensure_partitions"]
# _fa_alerts: FlightAware alerts registered for tracked flights (issue 15)
__all__ += ["add_alert", "alert_by_id", "alerted_keys", "close_alert", "finished_alerts",
            "list_alerts", "tracked_without_alert"]


def ensure_partitions(session: Session, *, now: datetime) -> list[str]:
    """Create the coming months of the partitioned audit tables (PostgreSQL; nothing on
    SQLite or an unpartitioned database); a lock not granted within seconds is left to a
    later run. The partitions made."""
    return _partitions.try_ensure_partitions(session.connection(), now=now)


def key_of(query: FlightQuery) -> FlightKey:
    return (query.carrier, query.number, query.suffix, query.departure_date)


# A stored leg's columns in FlightRecord's field order, then its row id, conflict flag and
# the hashes of its providers' latest observations.
_LEG_COLUMNS = ("carrier", "flight_number", "suffix", "departure_date", "leg_index", "origin",
                *OBSERVED_FIELDS, "last_synced_at", "version", "id", "has_open_conflict",
                "observation_hashes")
_STATUS_AT = _LEG_COLUMNS.index("status")
_CODESHARES_AT = _LEG_COLUMNS.index("codeshares")
_STATUSES = FlightStatus._value2member_map_


def load_legs(session: Session, keys: Sequence[FlightKey]) -> dict[FlightKey, list[StoredLeg]]:
    """Stored legs for each flight key, in leg order; keys without rows are absent."""
    out: dict[FlightKey, list[StoredLeg]] = {}
    if not keys:
        return out
    # One IN per identity column, exact keys filtered here: SQLite answers a row-value IN
    # with a scan of the whole table, these with lookups in the identity index.
    wanted = set(keys)
    wheres = [sorted({k[i] for k in wanted}) for i in range(4)]
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        # The driver's rows converted by the store's own rules: SQLAlchemy's per-value
        # result processing was most of this function's time (benchmarks/RESULTS.md).
        where = " AND ".join(f"{name} IN ({', '.join('?' * len(values))})" for name, values
                             in zip(_LEG_COLUMNS[:4], wheres, strict=True))
        rows = select_rows(conn, _F, _LEG_COLUMNS, where + " ORDER BY leg_index",
                           [v for values in wheres for v in values])
    else:
        # The same on PostgreSQL through psycopg: one ANY(array) per identity column.
        where = " AND ".join(any_of(_F, name) for name in _LEG_COLUMNS[:4])
        rows = select_rows_pg(conn, _F, _LEG_COLUMNS, where + " ORDER BY leg_index", wheres)
    rows = [row for row in rows if (row[0], row[1], row[2], row[3]) in wanted]
    ids = [row[-3] for row in rows if row[-2]]
    open_fields: dict[int, set[str]] = {}
    if ids:
        for fid, fname in session.execute(
            select(_CONFLICT.c.flight_id, _CONFLICT.c.field).where(
                _CONFLICT.c.flight_id.in_(ids), _CONFLICT.c.status == "open")
        ):
            open_fields.setdefault(fid, set()).add(fname)
    no_conflicts: frozenset[str] = frozenset()
    for row in rows:
        row_id = row[-3]
        status = row[_STATUS_AT]
        row[_STATUS_AT] = _STATUSES.get(status, FlightStatus.UNKNOWN)
        row[_CODESHARES_AT] = tuple(row[_CODESHARES_AT] or ())
        record = FlightRecord(*row[:-3])
        values = dict(zip(OBSERVED_FIELDS, row[6:6 + len(OBSERVED_FIELDS)], strict=True))
        # As _operator._values_of renders a record: unknown status and no codeshares read as
        # unset.
        if values["status"] == FlightStatus.UNKNOWN:
            values["status"] = None
        if not values["codeshares"]:
            values["codeshares"] = None
        fields = open_fields.get(row_id)
        out.setdefault((row[0], row[1], row[2], row[3]), []).append(StoredLeg(
            id=row_id, leg_index=row[4], origin=row[5], values=values, version=row[-4],
            open_conflicts=frozenset(fields) if fields else no_conflicts, record=record,
            observation_hashes=row[-1] or {},
        ))
    return out


def record_failure(session: Session, key: FlightKey, *, error: str, now: datetime,
                   next_due: datetime) -> None:
    """Note a failed attempt on a stored flight (no values change, no version bump)."""
    carrier, number, suffix, day = key
    session.execute(update(_F).where(
        _F.c.carrier == carrier, _F.c.flight_number == number, _F.c.suffix == suffix,
        _F.c.departure_date == day,
    ).values(last_attempt_at=now, next_sync_due_at=next_due, last_error=error[:500],
             sync_attempts=_F.c.sync_attempts + 1,
             consecutive_failures=_F.c.consecutive_failures + 1,
             lease_owner=None, lease_expires_at=None))


def leg_id(session: Session, key: FlightKey, origin: str | None = None) -> int | None:
    """The row id of a stored leg: the one from ``origin``, else the first leg."""
    carrier, number, suffix, day = key
    query = select(_F.c.id).where(_F.c.carrier == carrier, _F.c.flight_number == number,
                                  _F.c.suffix == suffix, _F.c.departure_date == day)
    query = query.where(_F.c.origin == origin) if origin else query.order_by(_F.c.leg_index)
    found = session.execute(query.limit(1)).scalar()
    return None if found is None else int(found)
