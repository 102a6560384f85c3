"""Operator reads and writes on conflicts and the explain view: open and resolved conflicts,
settling one by hand (audited), what an operator saw when settling, and each leg's latest
observations and audit rows.

Every function takes an open Session and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from flightsync.errors import ConcurrentUpdateError, InputError
from flightsync.models import OBSERVED_FIELDS, FlightRecord, FlightStatus
from flightsync.store._write import _differs, _row_values, encode
from flightsync.store.tables import Conflict, Flight, FlightChange, SourceObservation

_F = Flight.__table__  # type: ignore[attr-defined]
_CHANGE = FlightChange.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]
_OBS_READ = [c for c in _OBS.c if c.name != "raw_zlib"]  # the raw answers stay on disk


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


def observations_for(session: Session, flight_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The latest observation of each source per leg id: {leg_id: {source: row mapping}}."""
    out: dict[int, dict[str, Any]] = {}
    rows = session.execute(select(*_OBS_READ).where(_OBS.c.flight_id.in_(list(flight_ids)))
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


def list_conflicts(session: Session, *, include_resolved: bool,
                   limit: int | None = None) -> list[dict[str, Any]]:
    """Conflicts in id order (open ones only unless ``include_resolved``), at most ``limit``
    (None: all): the caller asks for one more than it shows to tell whether there are more."""
    query = select(_CONFLICT, _F.c.carrier, _F.c.flight_number, _F.c.suffix,
                   _F.c.departure_date, _F.c.origin, _F.c.leg_index).join(
        _F, _F.c.id == _CONFLICT.c.flight_id)
    if not include_resolved:
        query = query.where(_CONFLICT.c.status == "open")
    query = query.order_by(_CONFLICT.c.id)
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
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


def latest_resolved_candidates(session: Session, pairs: Collection[tuple[int, str]],
                               ) -> dict[tuple[int, str], dict[str, Any]]:
    """The candidates (values by source, as the row keeps them) of the latest resolved
    conflict of each (leg id, field) in ``pairs`` that has one, in one query."""
    if not pairs:
        return {}
    wanted = set(pairs)
    rows = session.execute(
        select(_CONFLICT.c.flight_id, _CONFLICT.c.field, _CONFLICT.c.candidates).where(
            _CONFLICT.c.status == "resolved",
            _CONFLICT.c.flight_id.in_(sorted({leg for leg, _ in wanted})),
            _CONFLICT.c.field.in_(sorted({name for _, name in wanted})),
        ).order_by(_CONFLICT.c.resolved_at, _CONFLICT.c.id)).all()
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for row in rows:  # later rows overwrite earlier ones: the last resolved wins
        key = (row.flight_id, row.field)
        if key in wanted:
            latest[key] = row.candidates
    return latest


__all__ = ["apply_resolution", "get_conflict", "latest_changes", "latest_resolved_candidates",
           "list_conflicts", "observations_for"]
