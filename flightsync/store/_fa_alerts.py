"""The ``fa_alert`` rows: AeroAPI alerts flightsync registered, and which flights have a live
one (what due selection reads to poll those flights less often).

Like the rest of ``store.repository``, every function takes an open Session and leaves
committing to the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, false, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from flightsync.store._columns import FlightKey
from flightsync.store.tables import Flight, FlightAwareAlert

_A = FlightAwareAlert.__table__  # type: ignore[attr-defined]
_F = Flight.__table__  # type: ignore[attr-defined]
ACTIVE = "active"
_COLUMNS = ("alert_id", "carrier", "flight_number", "suffix", "departure_date", "ident",
            "events", "endpoint", "status", "created_at", "removed_at")


def live_alert_exists() -> ColumnElement[bool]:
    """True for a flight row (leg 0 of ``flight``) that has a live alert: the condition due
    selection and its previews share."""
    return exists().where(
        _A.c.status == ACTIVE, _A.c.carrier == _F.c.carrier,
        _A.c.flight_number == _F.c.flight_number, _A.c.suffix == _F.c.suffix,
        _A.c.departure_date == _F.c.departure_date)


def add_alert(session: Session, key: FlightKey, *, alert_id: int, ident: str,
              events: Sequence[str], endpoint: str, now: datetime) -> None:
    carrier, number, suffix, day = key
    session.execute(_A.insert().values(
        alert_id=alert_id, carrier=carrier, flight_number=number, suffix=suffix,
        departure_date=day, ident=ident, events=list(events), endpoint=endpoint,
        status=ACTIVE, created_at=now))


def alerted_keys(session: Session) -> set[FlightKey]:
    """The flights that have a live alert."""
    rows = session.execute(select(_A.c.carrier, _A.c.flight_number, _A.c.suffix,
                                  _A.c.departure_date).where(_A.c.status == ACTIVE)).all()
    return {(r[0], r[1], r[2], r[3]) for r in rows}


def tracked_without_alert(session: Session, *, since: date) -> list[FlightKey]:
    """Tracked flights dated ``since`` or later that have no live alert, earliest first."""
    rows = session.execute(
        select(_F.c.carrier, _F.c.flight_number, _F.c.suffix, _F.c.departure_date)
        .where(_F.c.leg_index == 0, _F.c.tracked.is_(True), _F.c.departure_date >= since,
               ~live_alert_exists())
        .order_by(_F.c.departure_date, _F.c.scheduled_departure.asc().nulls_last(), _F.c.id)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def list_alerts(session: Session, *, include_removed: bool) -> list[dict[str, Any]]:
    query = select(*(_A.c[name] for name in _COLUMNS)).order_by(
        _A.c.departure_date, _A.c.created_at, _A.c.id)
    if not include_removed:
        query = query.where(_A.c.status == ACTIVE)
    return [dict(zip(_COLUMNS, row, strict=True)) for row in session.execute(query).all()]


def alert_by_id(session: Session, alert_id: int) -> dict[str, Any] | None:
    row = session.execute(select(*(_A.c[name] for name in _COLUMNS))
                          .where(_A.c.alert_id == alert_id)).first()
    return None if row is None else dict(zip(_COLUMNS, row, strict=True))


def finished_alerts(session: Session) -> list[dict[str, Any]]:
    """Live alerts whose flight ``batch --due`` no longer refreshes: untracked (a day after
    its arrival, or by an operator) or no longer stored."""
    tracked = exists().where(
        _F.c.leg_index == 0, _F.c.tracked.is_(True), _F.c.carrier == _A.c.carrier,
        _F.c.flight_number == _A.c.flight_number, _F.c.suffix == _A.c.suffix,
        _F.c.departure_date == _A.c.departure_date)
    rows = session.execute(select(*(_A.c[name] for name in _COLUMNS))
                           .where(_A.c.status == ACTIVE, ~tracked)
                           .order_by(_A.c.departure_date, _A.c.id)).all()
    return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]


def close_alert(session: Session, alert_id: int, *, status: str, now: datetime) -> bool:
    """Mark a live alert ``removed`` or ``finished``; False when it was not live."""
    result = session.execute(update(_A).where(_A.c.alert_id == alert_id, _A.c.status == ACTIVE)
                             .values(status=status, removed_at=now))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def count_live(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(_A)
                               .where(_A.c.status == ACTIVE)).scalar_one())


def polled_recently(now: datetime, every_seconds: float | None) -> ColumnElement[bool]:
    """True for a flight with a live alert whose last attempt is under ``every_seconds`` old:
    due selection leaves it out (README, "FlightAware alerts")."""
    if every_seconds is None:
        return false()
    return and_(live_alert_exists(), _F.c.last_attempt_at.is_not(None),
                _F.c.last_attempt_at > now - timedelta(seconds=every_seconds))


__all__ = ["ACTIVE", "add_alert", "alert_by_id", "alerted_keys", "close_alert", "count_live",
           "finished_alerts", "list_alerts", "live_alert_exists", "polled_recently",
           "tracked_without_alert"]
