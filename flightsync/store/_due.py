"""Due selection and leases: which tracked flights a ``batch --due`` run takes, and giving
back the leases it could not use.

Like the rest of ``store.repository``, every function takes an open Session and leaves
committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
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
    candidates = (
        select(_F.c.id).where(_F.c.leg_index == 0, _F.c.tracked.is_(True),
                              _F.c.next_sync_due_at <= (due_by or now), free,
                              ~polled_recently(now, alerted_every))
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.id).limit(limit)
    )
    if postgres:
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.execute(candidates).scalars())
    if not ids:
        return []
    session.execute(update(_F).where(_F.c.id.in_(ids)).values(
        lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds)))
    rows = session.execute(
        select(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date)
        .where(_F.c.id.in_(ids))
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.id)
    ).all()
    return [FlightQuery(carrier=r[0], number=r[1], suffix=r[2], departure_date=r[3])
            for r in rows]


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
    for carrier, number, suffix, day in keys:
        session.execute(update(_F).where(
            _F.c.carrier == carrier, _F.c.flight_number == number, _F.c.suffix == suffix,
            _F.c.departure_date == day, _F.c.lease_owner == owner,
        ).values(lease_owner=None, lease_expires_at=None))


def defer_leased(session: Session, keys: Iterable[FlightKey], owner: str, *,
                 until: datetime) -> int:
    """Give back the leases ``owner`` still holds on ``keys`` with their refresh moved to
    ``until``: a claimed flight the run could not write (no provider covers its carrier)
    would otherwise be due again at once and claimed over and over by the same run."""
    deferred = 0
    for carrier, number, suffix, day in keys:
        result = session.execute(update(_F).where(
            _F.c.carrier == carrier, _F.c.flight_number == number, _F.c.suffix == suffix,
            _F.c.departure_date == day, _F.c.lease_owner == owner,
        ).values(lease_owner=None, lease_expires_at=None, next_sync_due_at=until))
        deferred += int(result.rowcount)  # type: ignore[attr-defined]
    return deferred


__all__ = ["claim_due", "defer_leased", "due_flights", "release_leases"]
