"""The flights an operator manages: list them (bounded, ordered), read one's tracking state,
track or untrack one, delete one with everything that hangs off it.

Like the rest of ``store.repository``, every function takes an open Session and leaves
committing to the caller: ``delete_flight`` is one transaction when the caller's session is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from flightsync.store._columns import FlightKey
from flightsync.store._fa_alerts import polled_recently
from flightsync.store.tables import (
    Conflict,
    Flight,
    FlightChange,
    NotificationDelivery,
    SourceObservation,
    WebhookEvent,
)

_F = Flight.__table__  # type: ignore[attr-defined]
_CHANGE = FlightChange.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]
_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERY = NotificationDelivery.__table__  # type: ignore[attr-defined]

# What a listed flight shows: its first leg's identity, route start and tracking state.
_LISTED = ("carrier", "flight_number", "suffix", "departure_date", "origin", "destination",
           "status", "scheduled_departure", "sync_status", "tracked", "last_synced_at",
           "next_sync_due_at", "has_open_conflict")


def _identity(key: FlightKey) -> list[Any]:
    carrier, number, suffix, day = key
    return [_F.c.carrier == carrier, _F.c.flight_number == number, _F.c.suffix == suffix,
            _F.c.departure_date == day]


COUNT_CAP = 10_000
"""``list_flights`` counts the matching flights up to this many: past it, the total is
given as a lower bound (counting a million rows to print "50 of N" is not worth a scan)."""


def list_flights(session: Session, *, now: datetime, tracked_only: bool, due_only: bool,
                 limit: int, alerted_every: float | None = None,
                 ) -> tuple[list[dict[str, Any]], int, bool]:
    """Up to ``limit`` stored flights (one row each, from its first leg) with their leg count,
    earliest departure first (undated last), how many flights matched (counted up to
    ``COUNT_CAP``) and whether that count stopped at the cap (more matched).

    ``due_only`` keeps what ``batch --due`` would take now (tracked, due, not leased);
    ``tracked_only`` the tracked ones.
    """
    where = [_F.c.leg_index == 0]
    if tracked_only or due_only:
        where.append(_F.c.tracked.is_(True))
    if due_only:
        where += [_F.c.next_sync_due_at <= now,
                  or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now),
                  ~polled_recently(now, alerted_every)]
    matched = select(_F.c.id).where(*where).limit(COUNT_CAP + 1).subquery()
    total = int(session.execute(select(func.count()).select_from(matched)).scalar() or 0)
    rows = [dict(row) for row in session.execute(
        select(*(_F.c[name] for name in _LISTED))
        .where(*where)
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.departure_date, _F.c.id)
        .limit(limit)
    ).mappings()]
    # Legs of the listed flights only: one lookup in the identity index per column.
    keys = {(r["carrier"], r["flight_number"], r["suffix"], r["departure_date"]) for r in rows}
    legs: dict[tuple[Any, ...], int] = {}
    if keys:
        identity = ("carrier", "flight_number", "suffix", "departure_date")
        for *key, count in session.execute(
                select(*(_F.c[n] for n in identity), func.count())
                .where(*(_F.c[n].in_(sorted({k[i] for k in keys}))
                         for i, n in enumerate(identity)))
                .group_by(*(_F.c[n] for n in identity))):
            legs[tuple(key)] = count
    for row in rows:
        row["legs"] = legs.get((row["carrier"], row["flight_number"], row["suffix"],
                                row["departure_date"]), 1)
    return rows, min(total, COUNT_CAP), total > COUNT_CAP


def tracking_of(session: Session, key: FlightKey) -> dict[str, Any] | None:
    """The sync bookkeeping of a stored flight (its first leg's row), None when not stored."""
    row = session.execute(
        select(_F.c.tracked, _F.c.sync_status, _F.c.last_synced_at, _F.c.last_attempt_at,
               _F.c.next_sync_due_at, _F.c.sync_attempts, _F.c.consecutive_failures,
               _F.c.last_error, _F.c.source_of_truth, _F.c.lease_owner, _F.c.lease_expires_at)
        .where(*_identity(key)).order_by(_F.c.leg_index).limit(1)
    ).mappings().first()
    return None if row is None else dict(row)


def set_tracked(session: Session, key: FlightKey, *, tracked: bool, now: datetime) -> int:
    """Track or untrack every leg of a stored flight; the number of legs changed (0: not
    stored). Tracking makes it due now, so the next ``batch --due`` refreshes it; untracking
    gives back a lease, so no run holds it."""
    values: dict[str, Any] = {"tracked": tracked, "lease_owner": None,
                              "lease_expires_at": None}
    if tracked:
        values["next_sync_due_at"] = now
    result = session.execute(update(_F).where(*_identity(key)).values(**values))
    return int(result.rowcount)  # type: ignore[attr-defined]


def last_origin(session: Session, carrier: str, number: int, suffix: str) -> str | None:
    """Where this designator's latest stored flight departs from (its first leg's origin)."""
    found = session.execute(
        select(_F.c.origin).where(_F.c.carrier == carrier, _F.c.flight_number == number,
                                  _F.c.suffix == suffix, _F.c.leg_index == 0)
        .order_by(_F.c.departure_date.desc()).limit(1)
    ).scalar()
    return None if found is None else str(found)


def delete_flight(session: Session, key: FlightKey) -> dict[str, int]:
    """Delete a stored flight's legs with their audit trail, observations and conflicts; a
    webhook event or notification that named it keeps its row without the link (its
    idempotency record must outlive the flight). Counts per table; all zero when not stored.

    Done by hand rather than through the foreign keys' ON DELETE: SQLite enforces those only
    with ``PRAGMA foreign_keys``, which a database opened elsewhere may not set.
    """
    ids = list(session.execute(select(_F.c.id).where(*_identity(key))).scalars())
    if not ids:
        return {"legs": 0, "changes": 0, "observations": 0, "conflicts": 0}
    counts = {}
    for name, table in (("changes", _CHANGE), ("observations", _OBS),
                        ("conflicts", _CONFLICT)):
        result = session.execute(delete(table).where(table.c.flight_id.in_(ids)))
        counts[name] = int(result.rowcount)  # type: ignore[attr-defined]
    for table in (_EVENT, _DELIVERY):
        session.execute(update(table).where(table.c.flight_id.in_(ids)).values(flight_id=None))
    result = session.execute(delete(_F).where(_F.c.id.in_(ids)))
    return {"legs": int(result.rowcount), **counts}  # type: ignore[attr-defined]


__all__ = ["delete_flight", "last_origin", "list_flights", "set_tracked", "tracking_of"]
