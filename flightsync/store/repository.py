"""Queries and writes the engine needs, on SQLAlchemy Core for speed.

Every write function takes an open Session and leaves committing to the caller, so that the
engine decides the transaction boundaries (each flight all-or-nothing, flights grouped).
Values are kept as domain values (aware datetimes, tuples) on the way in and out; the audit
trail stores them JSON-encoded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flightsync.errors import ConcurrentUpdateError, InputError, StoreError
from flightsync.models import (
    OBSERVED_FIELDS,
    FlightQuery,
    FlightRecord,
    FlightStatus,
    to_json_value,
)
from flightsync.store._bulk import select_rows
from flightsync.store._engine import describe, display
from flightsync.store._write import (
    GroupWriter,
    LegWrite,
    StoredLeg,
    WriteOutcome,
    _differs,
    _row_values,
    content_hash,
    encode,
    write_flight,
)
from flightsync.store.tables import (
    Conflict,
    Flight,
    FlightChange,
    NotificationDelivery,
    SourceDependence,
    SourceObservation,
    SourceScore,
    SyncRun,
    WebhookEvent,
)

_F = Flight.__table__  # type: ignore[attr-defined]
_CHANGE = FlightChange.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]
_RUN = SyncRun.__table__  # type: ignore[attr-defined]
_FINISH_RUN = update(_RUN).where(_RUN.c.run_id == bindparam("b_run_id"))

FlightKey = tuple[str, int, str, date]  # carrier, number, suffix, departure_date

# The write path lives in store._write (one statement per table for a group of flights);
# its names stay importable from here, where the engine has always found them.
__all__ = ["GroupWriter", "LegWrite", "StoredLeg", "WriteOutcome", "content_hash", "encode",
           "write_flight"]


def key_of(query: FlightQuery) -> FlightKey:
    return (query.carrier, query.number, query.suffix, query.departure_date)


def _record_from_row(row: Any) -> FlightRecord:
    status = row.status
    return FlightRecord(
        carrier=row.carrier, flight_number=row.flight_number, suffix=row.suffix,
        departure_date=row.departure_date, leg_index=row.leg_index, origin=row.origin,
        destination=row.destination,
        status=FlightStatus(status) if status in FlightStatus._value2member_map_ else
        FlightStatus.UNKNOWN,
        scheduled_departure=row.scheduled_departure,
        estimated_departure=row.estimated_departure, actual_departure=row.actual_departure,
        scheduled_arrival=row.scheduled_arrival, estimated_arrival=row.estimated_arrival,
        actual_arrival=row.actual_arrival, departure_terminal=row.departure_terminal,
        departure_gate=row.departure_gate, arrival_terminal=row.arrival_terminal,
        arrival_gate=row.arrival_gate, baggage_belt=row.baggage_belt,
        aircraft_type=row.aircraft_type, aircraft_registration=row.aircraft_registration,
        codeshares=tuple(row.codeshares or ()), operating_carrier=row.operating_carrier,
        operating_flight_number=row.operating_flight_number, diverted_to=row.diverted_to,
        last_synced_at=row.last_synced_at, version=row.version,
    )


def _values_of(record: FlightRecord) -> dict[str, Any]:
    values = {name: getattr(record, name) for name in OBSERVED_FIELDS}
    if values["status"] == FlightStatus.UNKNOWN:
        values["status"] = None
    if not values["codeshares"]:
        values["codeshares"] = None
    return values


# A stored leg's columns in FlightRecord's field order, then its row id and conflict flag.
_LEG_COLUMNS = ("carrier", "flight_number", "suffix", "departure_date", "leg_index", "origin",
                *OBSERVED_FIELDS, "last_synced_at", "version", "id", "has_open_conflict")
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
        rows = [list(row) for row in conn.execute(
            select(*(_F.c[name] for name in _LEG_COLUMNS)).where(
                *(_F.c[name].in_(values) for name, values
                  in zip(_LEG_COLUMNS[:4], wheres, strict=True)),
            ).order_by(_F.c.leg_index))]
    rows = [row for row in rows if (row[0], row[1], row[2], row[3]) in wanted]
    ids = [row[-2] for row in rows if row[-1]]
    open_fields: dict[int, set[str]] = {}
    if ids:
        for fid, fname in session.execute(
            select(_CONFLICT.c.flight_id, _CONFLICT.c.field).where(
                _CONFLICT.c.flight_id.in_(ids), _CONFLICT.c.status == "open")
        ):
            open_fields.setdefault(fid, set()).add(fname)
    no_conflicts: frozenset[str] = frozenset()
    for row in rows:
        row_id = row[-2]
        status = row[_STATUS_AT]
        row[_STATUS_AT] = _STATUSES.get(status, FlightStatus.UNKNOWN)
        row[_CODESHARES_AT] = tuple(row[_CODESHARES_AT] or ())
        record = FlightRecord(*row[:-2])
        values = dict(zip(OBSERVED_FIELDS, row[6:6 + len(OBSERVED_FIELDS)], strict=True))
        # As _values_of renders a record: unknown status and no codeshares read as unset.
        if values["status"] == FlightStatus.UNKNOWN:
            values["status"] = None
        if not values["codeshares"]:
            values["codeshares"] = None
        fields = open_fields.get(row_id)
        out.setdefault((row[0], row[1], row[2], row[3]), []).append(StoredLeg(
            id=row_id, leg_index=row[4], origin=row[5], values=values, version=row[-3],
            open_conflicts=frozenset(fields) if fields else no_conflicts, record=record,
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


def claim_due(session: Session, *, now: datetime, limit: int, owner: str,
              lease_seconds: float, postgres: bool,
              due_by: datetime | None = None) -> list[FlightQuery]:
    """Lease up to ``limit`` flights due by ``due_by`` (default ``now``), earliest departure
    first. A run passes its start as ``due_by``: a flight it has synced is next due after
    that, so a TTL shorter than the run cannot bring it back into the same run.

    On PostgreSQL the candidate rows are locked with SKIP LOCKED so concurrent workers on
    other hosts never claim the same flight; an expired lease (crashed worker) is claimable.
    SQLite serializes writers, so the same UPDATE is safe there without row locks.
    """
    free = or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now)
    candidates = (
        select(_F.c.id).where(_F.c.leg_index == 0, _F.c.tracked.is_(True),
                              _F.c.next_sync_due_at <= (due_by or now), free)
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


def due_flights(session: Session, *, now: datetime, limit: int) -> list[FlightQuery]:
    """The flights ``claim_due`` would take now, earliest departure first, without leasing
    them (for ``batch --due --dry-run``)."""
    free = or_(_F.c.lease_expires_at.is_(None), _F.c.lease_expires_at < now)
    rows = session.execute(
        select(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date)
        .where(_F.c.leg_index == 0, _F.c.tracked.is_(True), _F.c.next_sync_due_at <= now, free)
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


def start_run(session: Session, *, run_id: str, kind: str, host: str, now: datetime,
              requested: int) -> None:
    session.execute(_RUN.insert().values(run_id=run_id, kind=kind, host=host, started_at=now,
                                         requested=requested, outcome="running"))


def finish_run(session: Session, *, run_id: str, now: datetime, counts: Mapping[str, int],
               outcome: str) -> None:
    session.execute(_FINISH_RUN, {"b_run_id": run_id, "finished_at": now, "outcome": outcome,
                                  **counts})


def finish_run_alone(engine: Engine, *, run_id: str, now: datetime,
                     counts: Mapping[str, int], outcome: str) -> None:
    """``finish_run`` in a transaction of its own on a bare connection: the Session around
    this one statement was a third of a cached in-process sync (benchmarks/RESULTS.md)."""
    try:
        with engine.begin() as conn:
            conn.execute(_FINISH_RUN, {"b_run_id": run_id, "finished_at": now,
                                       "outcome": outcome, **counts})
    except OperationalError as exc:  # as Database.session words it
        raise StoreError(f"database {display(engine.url)}: {describe(exc, engine.url)}",
                         url=display(engine.url)) from exc


def last_run(session: Session, kinds: Sequence[str] | None = None) -> dict[str, Any] | None:
    query = select(_RUN).where(_RUN.c.finished_at.is_not(None))
    if kinds:
        query = query.where(_RUN.c.kind.in_(list(kinds)))
    row = session.execute(query.order_by(_RUN.c.started_at.desc()).limit(1)).first()
    if row is None:
        return None
    return {k: to_json_value(v) for k, v in row._mapping.items() if k != "id"}


def runs_since(session: Session, since: datetime, kinds: Sequence[str]) -> list[dict[str, Any]]:
    rows = session.execute(select(_RUN).where(
        _RUN.c.started_at >= since, _RUN.c.kind.in_(list(kinds)),
        _RUN.c.finished_at.is_not(None))).all()
    return [dict(row._mapping) for row in rows]


def counts(session: Session, *, now: datetime) -> dict[str, int]:
    flights = session.execute(select(func.count()).select_from(_F)).scalar_one()
    stale = session.execute(select(func.count()).select_from(_F).where(
        _F.c.tracked.is_(True), _F.c.next_sync_due_at <= now)).scalar_one()
    open_conflicts = session.execute(select(func.count()).select_from(_CONFLICT).where(
        _CONFLICT.c.status == "open")).scalar_one()
    return {"flights": flights, "stale": stale, "open_conflicts": open_conflicts}


def unsynced_departing(session: Session, *, now: datetime, within: timedelta,
                       older_than: timedelta) -> int:
    """Tracked flights departing within ``within`` whose last sync is older than ``older_than``."""
    return int(session.execute(select(func.count()).select_from(_F).where(
        _F.c.tracked.is_(True), _F.c.scheduled_departure >= now,
        _F.c.scheduled_departure <= now + within,
        or_(_F.c.last_synced_at.is_(None), _F.c.last_synced_at < now - older_than),
    )).scalar_one())


def observations_for(session: Session, flight_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The latest observation of each source per leg id: {leg_id: {source: row mapping}}."""
    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(select(_OBS).where(_OBS.c.flight_id.in_(list(flight_ids)))
                           .order_by(_OBS.c.observed_at, _OBS.c.id)).all()
    for row in rows:
        out.setdefault(row.flight_id, {})[row.source] = dict(row._mapping)
    return out


def latest_changes(session: Session, flight_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The most recent audit row per field per leg id: {leg_id: {field: row mapping}}."""
    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(select(_CHANGE).where(_CHANGE.c.flight_id.in_(list(flight_ids)))
                           .order_by(_CHANGE.c.at, _CHANGE.c.id)).all()
    for row in rows:
        out.setdefault(row.flight_id, {})[row.field] = dict(row._mapping)
    return out


def list_conflicts(session: Session, *, include_resolved: bool) -> list[dict[str, Any]]:
    query = select(_CONFLICT, _F.c.carrier, _F.c.flight_number, _F.c.suffix,
                   _F.c.departure_date, _F.c.origin, _F.c.leg_index).join(
        _F, _F.c.id == _CONFLICT.c.flight_id)
    if not include_resolved:
        query = query.where(_CONFLICT.c.status == "open")
    rows = session.execute(query.order_by(_CONFLICT.c.id)).all()
    return [dict(row._mapping) for row in rows]


def get_conflict(session: Session, conflict_id: int) -> dict[str, Any]:
    row = session.execute(
        select(_CONFLICT, _F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date,
               _F.c.version.label("flight_version"))
        .join(_F, _F.c.id == _CONFLICT.c.flight_id).where(_CONFLICT.c.id == conflict_id)
    ).first()
    if row is None:
        raise InputError(f"no conflict with id {conflict_id}", code="unknown_conflict")
    return dict(row._mapping)


def apply_resolution(session: Session, conflict: Mapping[str, Any], *, value: Any,
                     source: str | None, who: str, run_id: str, now: datetime) -> bool:
    """Settle an open conflict: store the value on the flight (audited) and close the row.

    Returns whether the flight's value changed.
    """
    flight_id = conflict["flight_id"]
    column = conflict["field"]
    row = session.execute(select(_F).where(_F.c.id == flight_id)).one()
    old = _values_of(_record_from_row(row)).get(column)
    changed = _differs(old, value)
    stored = _row_values({column: value})[column]
    others_open = session.execute(select(func.count()).select_from(_CONFLICT).where(
        _CONFLICT.c.flight_id == flight_id, _CONFLICT.c.status == "open",
        _CONFLICT.c.id != conflict["id"])).scalar_one()
    version = row.version + (1 if changed else 0)
    result = session.execute(update(_F).where(and_(_F.c.id == flight_id,
                                                   _F.c.version == row.version)).values(
        **({column: stored} if changed else {}), version=version,
        has_open_conflict=bool(others_open), updated_at=now))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdateError("the flight changed while resolving; try again")
    if changed:
        session.execute(_CHANGE.insert().values(
            flight_id=flight_id, field=column, old=encode(old), new=encode(value),
            source=source or "operator", rule="manual", run_id=run_id, version=version,
            at=now))
    session.execute(update(_CONFLICT).where(_CONFLICT.c.id == conflict["id"]).values(
        status="resolved", resolution=encode(value), resolved_source=source,
        resolved_by=who, resolved_at=now))
    return changed


def last_batch_run(session: Session, kinds: Sequence[str]) -> dict[str, Any] | None:
    """The latest finished run of ``kinds`` that attempted at least one flight (an empty
    ``--due`` run says nothing about the success rate)."""
    attempted = _RUN.c.synced + _RUN.c.from_cache + _RUN.c.failed
    row = session.execute(select(_RUN).where(
        _RUN.c.kind.in_(list(kinds)), _RUN.c.finished_at.is_not(None), attempted > 0,
    ).order_by(_RUN.c.started_at.desc(), _RUN.c.id.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


SUCCESS_OUTCOMES = ("ok", "partial")


def run_totals(session: Session) -> dict[str, Any]:
    """Counters summed over every finished run (monotonic across processes and hosts), the
    last successful run's end, and each run kind's latest duration in seconds."""
    finished = _RUN.c.finished_at.is_not(None)
    sums = session.execute(select(
        func.coalesce(func.sum(_RUN.c.synced), 0), func.coalesce(func.sum(_RUN.c.from_cache), 0),
        func.coalesce(func.sum(_RUN.c.failed), 0), func.coalesce(func.sum(_RUN.c.cache_hits), 0),
        func.coalesce(func.sum(_RUN.c.cache_misses), 0),
    ).where(finished)).one()
    last_success = session.execute(select(func.max(_RUN.c.finished_at)).where(
        finished, _RUN.c.outcome.in_(SUCCESS_OUTCOMES))).scalar_one()
    durations: dict[str, float] = {}
    for (kind,) in session.execute(select(_RUN.c.kind).where(finished).distinct()).all():
        started, ended = session.execute(
            select(_RUN.c.started_at, _RUN.c.finished_at).where(finished, _RUN.c.kind == kind)
            .order_by(_RUN.c.started_at.desc(), _RUN.c.id.desc()).limit(1)).one()
        durations[kind] = max((ended - started).total_seconds(), 0.0)
    synced, from_cache, failed, hits, misses = (int(v) for v in sums)
    return {"syncs": synced + from_cache + failed, "failures": failed, "cache_hits": hits,
            "cache_misses": misses, "last_success": last_success, "durations": durations}


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


# -- learned source accuracy (policy rule ``accuracy``) ------------------------------------
_SCORE = SourceScore.__table__  # type: ignore[attr-defined]


def latest_observation_values(session: Session, *, since: datetime | None = None,
                              ) -> list[tuple[int, str, dict[str, Any]]]:
    """(leg id, source, JSON values) of each source's latest observation of each leg, among
    the observations made at or after ``since`` (None: the whole history)."""
    latest = select(func.max(_OBS.c.id)).group_by(_OBS.c.flight_id, _OBS.c.source)
    if since is not None:
        latest = latest.where(_OBS.c.observed_at >= since)
    rows = session.execute(
        select(_OBS.c.flight_id, _OBS.c.source, _OBS.c["values"])
        .where(_OBS.c.id.in_(latest)).order_by(_OBS.c.flight_id, _OBS.c.source)).all()
    return [(row[0], row[1], dict(row[2] or {})) for row in rows]


def source_scores(session: Session) -> list[dict[str, Any]]:
    """Every stored score row (``source``, ``field``, ``accuracy``, ``coverage``,
    ``observations``, ``computed_at``), by source then field."""
    rows = session.execute(select(_SCORE).order_by(_SCORE.c.source, _SCORE.c.field)).all()
    return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]


def replace_source_scores(session: Session, scores: Iterable[Mapping[str, Any]], *,
                          now: datetime) -> int:
    """Replace all stored scores with ``scores`` (keys ``source``, ``field``, ``accuracy``,
    ``coverage``, ``observations``). In one transaction readers see the old set or the new
    one, never a mix. Returns the number of rows stored."""
    rows = [{**dict(score), "computed_at": now} for score in scores]
    session.execute(delete(_SCORE))
    if rows:
        session.execute(_SCORE.insert(), rows)
    return len(rows)


_DEPENDENCE = SourceDependence.__table__  # type: ignore[attr-defined]


def source_dependence(session: Session) -> list[dict[str, Any]]:
    """Every stored dependence row (``source``, ``other``, ``dependence``, ``computed_at``),
    by pair."""
    rows = session.execute(select(_DEPENDENCE).order_by(_DEPENDENCE.c.source,
                                                        _DEPENDENCE.c.other)).all()
    return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]


def replace_source_dependence(session: Session, pairs: Iterable[Mapping[str, Any]], *,
                              now: datetime) -> int:
    """Replace all stored dependence rows with ``pairs`` (keys ``source``, ``other``,
    ``dependence``); call it in the session that replaces the scores, so that readers see
    one estimate. Returns the number of rows stored."""
    rows = [{**dict(pair), "computed_at": now} for pair in pairs]
    session.execute(delete(_DEPENDENCE))
    if rows:
        session.execute(_DEPENDENCE.insert(), rows)
    return len(rows)


# -- webhooks in, change notifications out (issue 5) ----------------------------------------
_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERY = NotificationDelivery.__table__  # type: ignore[attr-defined]


def webhook_event_seen(session: Session, event_id: str) -> bool:
    return session.execute(select(_EVENT.c.id).where(_EVENT.c.event_id == event_id)
                           ).first() is not None


def record_webhook_event(session: Session, *, event_id: str, source: str,
                         received_at: datetime, payload_hash: str, outcome: str) -> int:
    """Insert the idempotency row; a second insert of ``event_id`` raises IntegrityError."""
    inserted = session.execute(_EVENT.insert().values(
        event_id=event_id, source=source, received_at=received_at, payload_hash=payload_hash,
        outcome=outcome))
    return int(inserted.inserted_primary_key[0])  # type: ignore[attr-defined]


def link_webhook_event(session: Session, row_id: int, flight_id: int | None) -> None:
    session.execute(update(_EVENT).where(_EVENT.c.id == row_id).values(flight_id=flight_id))


def leg_id(session: Session, key: FlightKey, origin: str | None = None) -> int | None:
    """The row id of a stored leg: the one from ``origin``, else the first leg."""
    carrier, number, suffix, day = key
    query = select(_F.c.id).where(_F.c.carrier == carrier, _F.c.flight_number == number,
                                  _F.c.suffix == suffix, _F.c.departure_date == day)
    query = query.where(_F.c.origin == origin) if origin else query.order_by(_F.c.leg_index)
    found = session.execute(query.limit(1)).scalar()
    return None if found is None else int(found)


def start_delivery(session: Session, *, message_id: str, url: str, run_id: str | None,
                   flight_id: int | None, payload_hash: str, now: datetime) -> int:
    inserted = session.execute(_DELIVERY.insert().values(
        message_id=message_id, url=url[:500], run_id=run_id, flight_id=flight_id,
        payload_hash=payload_hash, status="pending", attempts=0, created_at=now))
    return int(inserted.inserted_primary_key[0])  # type: ignore[attr-defined]


def note_delivery(session: Session, delivery_id: int, *, attempts: int, status: str,
                  status_code: int | None, error: str | None,
                  delivered_at: datetime | None = None) -> None:
    """Record an attempt (``status`` pending) or the outcome (delivered or failed)."""
    session.execute(update(_DELIVERY).where(_DELIVERY.c.id == delivery_id).values(
        attempts=attempts, status=status, last_status_code=status_code,
        last_error=None if error is None else error[:500], delivered_at=delivered_at))


def last_scores_at(session: Session) -> datetime | None:
    """When the learned source scores were last computed (None: never)."""
    value = session.execute(select(func.max(_SCORE.c.computed_at))).scalar()
    return value if isinstance(value, datetime) else None
