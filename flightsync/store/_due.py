"""Due selection and leases: which tracked flights a ``batch --due`` run takes, and giving
back the leases it could not use.

Like the rest of ``store.repository``, every function takes an open Session and leaves
committing to the caller.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    Update,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from flightsync.models import FlightQuery
from flightsync.store._columns import FlightKey
from flightsync.store._fa_alerts import live_alert_exists, polled_recently
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

    On PostgreSQL the claim's transaction commits without waiting for the WAL flush (see
    ``_claim_statement``): give it a session of its own, with no durable write in it.
    """
    expires = now + timedelta(seconds=lease_seconds)
    if postgres:
        params = {"now": now, "due_by": due_by or now, "owner": owner, "expires": expires,
                  "polled_since": now - timedelta(seconds=alerted_every or 0),
                  "limit": limit, "window": limit * CLAIM_WINDOW}
        conn = session.connection()
        alerts = alerted_every is not None
        leased = list(conn.execute(_claim_statement(windowed=True, alerts=alerts), params))
        if len(leased) < limit:  # the window crowded with leased flights: all the due ones
            leased += conn.execute(_claim_statement(windowed=False, alerts=alerts),
                                   {**params, "limit": limit - len(leased)})
        leased.sort(key=lambda r: (r[4] is None, r[4] or now, r[5]))
        return [FlightQuery(carrier=r[0], number=r[1], suffix=r[2], departure_date=r[3])
                for r in leased]
    free = or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now)
    due = (_F.c.leg_index == 0, _F.c.tracked.is_(True), _F.c.next_sync_due_at <= (due_by or now),
           free, ~polled_recently(now, alerted_every))
    ids = list(session.execute(
        select(_F.c.id).where(*due)
        .order_by(_F.c.scheduled_departure.asc().nulls_last(), _F.c.id).limit(limit)).scalars())
    if not ids:
        return []
    session.execute(update(_F).where(_F.c.id.in_(ids))
                    .values(lease_owner=owner, lease_expires_at=expires))
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


@functools.cache
def _claim_statement(*, windowed: bool, alerts: bool) -> Update:
    """The PostgreSQL claim as one statement (lock, lease and read back in one round trip),
    built once per process: building and keying the expression took ~1.5 ms of a claim's
    ~6 (benchmarks/_claim.py). Parameters: now, due_by, owner, expires, polled_since (alerted
    flights polled after it are left out, when ``alerts``), limit and window.

    ``windowed``: lease up to ``limit`` of the ``window`` earliest-departing due flights,
    read from ix_flight_claim alone (migration 0008: due time, departure and id, tracked
    first legs only: no table read); the leases, locks and alert checks then run on that
    window only. Otherwise: of all the due flights (the window crowded with leased ones).
    The ``leg_index`` and ``tracked`` tests are literals, not parameters: the partial index's
    predicate must be provable from them in every plan, a prepared statement's generic one
    included.

    The commit is asynchronous (``synchronous_commit`` off for this transaction only, set by
    the statement itself rather than by one more round trip): a lease is soft state that
    expires, and a PostgreSQL crash losing a just-committed one can only make its flights
    claimable again, by another worker, while the first still syncs them: one flight synced
    twice, both writes kept by the version check (the later one redone on the fresher row).
    WAL is flushed in order, so any later synchronous commit (the run's own write) makes the
    lease durable too. The flush was a claim's commit (benchmarks/_claim.py, load ~2 on the
    shared 2-core machine: commit p50 2.2 / p99 26 ms with it, 0.3 / 1.2 without). It also
    means: a claim's session must not carry durable writes of its own.
    """
    first = func.coalesce(_F.c.scheduled_departure, literal_column("'infinity'::timestamptz"))
    free = or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < bindparam("now"))
    left = [free]
    if alerts:
        left.append(~and_(live_alert_exists(), _F.c.last_attempt_at.is_not(None),
                          _F.c.last_attempt_at > bindparam("polled_since")))
    tracked_first_legs = (_F.c.leg_index == literal_column("0"),
                          _F.c.tracked == literal_column("true"),
                          _F.c.next_sync_due_at <= bindparam("due_by"))
    if windowed:
        earliest = (select(_F.c.id, first.label("first")).where(*tracked_first_legs)
                    .order_by(first, _F.c.id).limit(bindparam("window", type_=Integer))
                    .cte("earliest"))
        # The due test again, on the row itself: a row another worker leased and synced
        # meanwhile is locked at its newest version and only the row's own tests are
        # re-checked on it (READ COMMITTED), not the window's, read before.
        chosen = (select(_F.c.id).join(earliest, earliest.c.id == _F.c.id)
                  .where(_F.c.tracked == literal_column("true"),
                         _F.c.next_sync_due_at <= bindparam("due_by"), *left)
                  .order_by(earliest.c.first, _F.c.id))
    else:
        chosen = select(_F.c.id).where(*tracked_first_legs, *left).order_by(first, _F.c.id)
    picked = (chosen.limit(bindparam("limit", type_=Integer))
              .with_for_update(of=_F, skip_locked=True).scalar_subquery())
    return (update(_F)
            .where(_F.c.id.in_(picked))
            .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("expires"))
            # SET LOCAL from inside the statement, for each row it leases (in the RETURNING
            # list, not the WHERE: a volatile test there changes the plan, subquery and all).
            .returning(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date,
                       _F.c.scheduled_departure, _F.c.id,
                       func.set_config("synchronous_commit", "off", true())))


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
