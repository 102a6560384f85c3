"""Due selection and leases: which tracked flights a ``batch --due`` run takes, and giving
back the leases it could not use.

Like the rest of ``store.repository``, every function takes an open Session and leaves
committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from flightsync.models import FlightQuery
from flightsync.store._columns import FlightKey
from flightsync.store._fa_alerts import polled_recently
from flightsync.store.tables import Flight

_F = Flight.__table__  # type: ignore[attr-defined]


def claim_due(session: Session, *, now: datetime, limit: int, owner: str,
              lease_seconds: float, postgres: bool,
              due_by: datetime | None = None,
              alerted_every: float | None = None) -> list[FlightQuery]:
    """Lease up to ``limit`` flights due by ``due_by`` (default ``now``), earliest departure
    first. A run passes its start as ``due_by``: a flight it has synced is next due after
    that, so a TTL shorter than the run cannot bring it back into the same run.

    A flight with a live FlightAware alert is due only once its last attempt is at least
    ``alerted_every`` seconds old (None: alerts change nothing): its changes are pushed.

    On PostgreSQL the candidate rows are locked with SKIP LOCKED so concurrent workers on
    other hosts never claim the same flight; an expired lease (crashed worker) is claimable.
    SQLite serializes writers, so the same UPDATE is safe there without row locks.
    """
    free = or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now)
    due = (_F.c.leg_index == 0, _F.c.tracked.is_(True), _F.c.next_sync_due_at <= (due_by or now),
           free, ~polled_recently(now, alerted_every))
    lease = {"lease_owner": owner, "lease_expires_at": now + timedelta(seconds=lease_seconds)}
    if postgres:
        # The same order as on SQLite, in a form the departure index cannot give: otherwise
        # the planner walks that index from the earliest departure, past every flight a run
        # has already synced (no longer due), and a claim late in a run reads most of the
        # table. First a window of the earliest due flights, from ix_flight_claim alone
        # (migration 0008: due time, departure and id, tracked first legs only: no table
        # read); then the leases, locks and alert checks on that window only. One
        # statement: lock, lease and read back in one round trip.
        left = (free, ~polled_recently(now, alerted_every))  # checked on the window's rows
        leased = _claim_window(session, due=due, left=left, due_by=due_by or now, lease=lease,
                               limit=limit, window=limit * CLAIM_WINDOW)
        if len(leased) < limit:  # the window crowded with leased flights: all the due ones
            leased += _claim_window(session, due=due, left=left, due_by=due_by or now,
                                    lease=lease, limit=limit - len(leased), window=None)
        leased.sort(key=lambda r: (r[4] is None, r[4] or now, r[5]))
        return [FlightQuery(carrier=r[0], number=r[1], suffix=r[2], departure_date=r[3])
                for r in leased]
    ids = list(session.execute(
        select(_F.c.id).where(*due)
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.id).limit(limit)).scalars())
    if not ids:
        return []
    session.execute(update(_F).where(_F.c.id.in_(ids)).values(**lease))
    rows = session.execute(
        select(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date)
        .where(_F.c.id.in_(ids))
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.id)
    ).all()
    return [FlightQuery(carrier=r[0], number=r[1], suffix=r[2], departure_date=r[3])
            for r in rows]


CLAIM_WINDOW = 20
"""A PostgreSQL claim of N first looks at the N x CLAIM_WINDOW earliest-departing due flights:
room for every other worker's leased ones (each holds one claim, batch.size, at a time)."""


def _claim_window(session: Session, *, due: tuple[Any, ...], left: tuple[Any, ...],
                  due_by: datetime, lease: dict[str, Any], limit: int,
                  window: int | None) -> list[Any]:
    """Lease up to ``limit`` of the ``window`` earliest-departing due flights (None: of all
    the due ones) that pass ``left``; their identity, departure and id."""
    first = func.coalesce(_F.c.scheduled_departure, literal_column("'infinity'::timestamptz"))
    if window is None:
        chosen = select(_F.c.id).where(*due).order_by(first, _F.c.id)
    else:
        # Literals, not parameters: the partial index's predicate must be provable from
        # them in every plan, a prepared statement's generic one included.
        earliest = (select(_F.c.id, first.label("first"))
                    .where(_F.c.leg_index == literal_column("0"),
                           _F.c.tracked == literal_column("true"),
                           _F.c.next_sync_due_at <= due_by)
                    .order_by(first, _F.c.id).limit(window).cte("earliest"))
        chosen = (select(_F.c.id).join(earliest, earliest.c.id == _F.c.id)
                  .where(*left).order_by(earliest.c.first, _F.c.id))
    picked = chosen.limit(limit).with_for_update(of=_F, skip_locked=True).scalar_subquery()
    return list(session.execute(
        update(_F).where(_F.c.id.in_(picked)).values(**lease)
        .returning(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date,
                   _F.c.scheduled_departure, _F.c.id)).all())


def due_flights(session: Session, *, now: datetime, limit: int,
                alerted_every: float | None = None) -> list[FlightQuery]:
    """The flights ``claim_due`` would take now, earliest departure first, without leasing
    them (for ``batch --due --dry-run``)."""
    free = or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now)
    rows = session.execute(
        select(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date)
        .where(_F.c.leg_index == 0, _F.c.tracked.is_(True), _F.c.next_sync_due_at <= now, free,
               ~polled_recently(now, alerted_every))
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.id).limit(limit)
    ).all()
    return [FlightQuery(carrier=r[0], number=r[1], suffix=r[2], departure_date=r[3])
            for r in rows]


def release_leases(session: Session, keys: Iterable[FlightKey], owner: str) -> None:
    """Give back leases this worker still holds (flights it did not get to)."""
    ids = _held(session, keys, owner)
    if ids:
        session.execute(update(_F).where(_F.c.id.in_(ids), _F.c.lease_owner == owner)
                        .values(lease_owner=None, lease_expires_at=None))


def defer_leased(session: Session, keys: Iterable[FlightKey], owner: str, *,
                 until: datetime) -> int:
    """Give back the leases ``owner`` still holds on ``keys`` with their refresh moved to
    ``until``: a claimed flight the run could not write (no provider covers its carrier)
    would otherwise be due again at once and claimed over and over by the same run."""
    ids = _held(session, keys, owner)
    if not ids:
        return 0
    result = session.execute(update(_F).where(_F.c.id.in_(ids), _F.c.lease_owner == owner)
                             .values(lease_owner=None, lease_expires_at=None,
                                     next_sync_due_at=until))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _held(session: Session, keys: Iterable[FlightKey], owner: str) -> list[int]:
    """The row ids of the legs of ``keys`` that ``owner`` leases: one lookup in the identity
    index (one IN per column, exact keys kept here) instead of a statement per flight."""
    wanted = set(keys)
    if not wanted:
        return []
    columns = (_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date)
    rows = session.execute(
        select(_F.c.id, *columns).where(
            _F.c.lease_owner == owner,
            *(column.in_(sorted({key[i] for key in wanted}))
              for i, column in enumerate(columns)))).all()
    return [row[0] for row in rows if (row[1], row[2], row[3], row[4]) in wanted]


__all__ = ["claim_due", "defer_leased", "due_flights", "release_leases"]
