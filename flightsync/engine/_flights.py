"""The tracked flights an operator manages (``flightsync flights``), and what "today" means for
a flight (its departure airport's date, when a stored flight names the airport).

Functions take the collaborators they need (the database, the cache), not the whole engine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flightsync import config
from flightsync.errors import FlightsyncError, InputError
from flightsync.models import FlightQuery, to_json_value
from flightsync.providers import airport_tz
from flightsync.store import Database
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.config import Settings
    from flightsync.resilience import ObservationCache

def list_flights(database: Database, *, tracked: bool, due: bool, limit: int,
                 now: datetime | None = None,
                 alerted_every: float | None = None) -> dict[str, Any]:
    """``flights list``: up to ``limit`` flights, earliest departure first, and the total."""
    with database.session() as session:
        rows, total, more = repo.list_flights(session, now=now or datetime.now(UTC),
                                        tracked_only=tracked, due_only=due, limit=limit,
                                        alerted_every=alerted_every)
    flights = [{
        "flight": f"{row['carrier']}{row['flight_number']}{row['suffix']}",
        "date": row["departure_date"].isoformat(), "origin": row["origin"],
        "destination": row["destination"], "legs": row["legs"], "status": row["status"],
        "scheduled_departure": to_json_value(row["scheduled_departure"]),
        "sync_status": row["sync_status"], "tracked": bool(row["tracked"]),
        "last_synced_at": to_json_value(row["last_synced_at"]),
        "next_sync_due_at": to_json_value(row["next_sync_due_at"]) if row["tracked"] else None,
        "open_conflicts": bool(row["has_open_conflict"]),
    } for row in rows]
    # ``total`` stops counting at COUNT_CAP: past it, ``total_capped`` says more matched.
    return {"flights": flights, "total": total, "total_capped": more, "limit": limit}


def show(database: Database, query: FlightQuery) -> dict[str, Any]:
    """``flights show``: every stored leg and the flight's sync bookkeeping."""
    key = repo.key_of(query)
    with database.session() as session:
        legs = repo.load_legs(session, [key]).get(key)
        tracking = repo.tracking_of(session, key)
    if not legs or tracking is None:
        raise _not_stored(query)
    return {"flight": query.designator, "date": query.departure_date.isoformat(),
            **{name: to_json_value(value) for name, value in tracking.items()
               if name not in ("lease_owner", "lease_expires_at")},
            "leased_by": tracking["lease_owner"],
            "legs": [leg.record.to_json() for leg in legs]}


def set_tracked(database: Database, query: FlightQuery, *, tracked: bool) -> dict[str, Any]:
    """``flights track|untrack``; InputError (exit 2) when the flight is not stored."""
    now = datetime.now(UTC)
    with database.session() as session:
        changed = repo.set_tracked(session, repo.key_of(query), tracked=tracked, now=now)
    if not changed:
        raise _not_stored(query)
    return {"flight": query.designator, "date": query.departure_date.isoformat(),
            "tracked": tracked, "next_sync_due_at": to_json_value(now) if tracked else None}


def delete(database: Database, cache: ObservationCache, query: FlightQuery) -> dict[str, Any]:
    """``flights delete``: the flight and what hangs off it, in one transaction; its cached
    answers too, so a later sync asks the providers instead of re-creating it from the cache."""
    with database.session() as session:
        deleted = repo.delete_flight(session, repo.key_of(query))
    if not deleted["legs"]:
        raise _not_stored(query)
    cache.drop(query)
    return {"flight": query.designator, "date": query.departure_date.isoformat(),
            "deleted": deleted}


def local_today(database: Database | None, carrier: str, number: int, suffix: str, *,
                now: datetime | None = None) -> tuple[date, str | None]:
    """Today's date at the flight's departure airport, when a stored flight of this
    designator names it (flight dates are local at the first origin), else in UTC; and the
    airport used (None: UTC)."""
    moment = now or datetime.now(UTC)
    origin = None
    if database is not None:
        with database.session() as session:
            origin = repo.last_origin(session, carrier, number, suffix)
    zone = airport_tz(origin) if origin else None
    if zone is None:
        return moment.astimezone(UTC).date(), None
    return moment.astimezone(zone).date(), origin


def day_for(settings: Settings, carrier: str, number: int, suffix: str, days: int, *,
            prefer_stored: bool = False) -> date:
    """The date ``days`` after today for this flight (``local_today``), for a command that
    has no engine open (``sync`` answers from the cache without one): the database is opened
    only for this lookup, and one that does not exist yet, or is not migrated, means UTC.

    Near midnight the airport's date and UTC's differ. With ``prefer_stored`` (commands on a
    stored flight) the UTC one is taken when only it is stored: a flight first synced as
    "tomorrow" before its airport was known is still found as "tomorrow" afterwards.
    """
    utc_day = datetime.now(UTC).date() + timedelta(days=days)
    try:
        database = Database.open(config.database_url(settings))
    except FlightsyncError:
        return utc_day
    try:
        database.check_schema()
        today, origin = local_today(database, carrier, number, suffix)
        day = today + timedelta(days=days)
        if prefer_stored and origin is not None and day != utc_day:
            with database.session() as session:
                def stored(when: date) -> bool:
                    key = (carrier, number, suffix, when)
                    return repo.tracking_of(session, key) is not None

                if not stored(day) and stored(utc_day):
                    return utc_day
        return day
    except FlightsyncError:
        return utc_day
    finally:
        database.close()


def _not_stored(query: FlightQuery) -> InputError:
    return InputError(f"{query.designator} on {query.departure_date.isoformat()} is not "
                      "stored (see `flightsync flights list`)", code="unknown_flight")
