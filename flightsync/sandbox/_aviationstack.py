"""Aviationstack (docs/PROVIDERS.md section 6.3): ``GET /aviationstack/v1/flights`` (the path of
apilayer's newer host) with ``access_key``, ``flight_iata``, ``flight_date``, ``limit`` and
``offset`` in the query.

The quirks of the real API are reproduced on purpose:

* every time is the airport's local wall clock labelled ``+00:00``;
* each leg comes as its operating record plus one marketing copy per codeshare (the copies
  first, ``flight.codeshared`` naming the operating flight);
* ``flight_date`` on a free plan (scenario ``plans: {aviationstack: free}``) is refused with
  403 ``function_access_restricted``; without ``flight_date`` the answer holds the flights
  of yesterday, today and tomorrow (the real free plan shows recent flights only);
* the quota (fault ``quota``) is 429 ``usage_limit_reached``, a rate limit 429
  ``rate_limit_reached``; errors are ``{"error": {"code", "message", "context"}}``;
* an unknown flight is 200 with an empty ``data`` array, not a 404.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from flightsync.sandbox._base import (
    Context,
    Endpoint,
    Provider,
    Reply,
    Request,
    Target,
    retry_after_header,
)
from flightsync.sandbox._truth import FlightTruth, LegTruth, airline, airport

API_KEY = "sandbox"
TAXI_MINUTES = 10
FREE = "free"
MAX_LIMIT = 100
_DESIGNATOR = re.compile(r"([A-Z0-9]{2})(\d{1,4})")


def _error(status: int, code: str, message: str,
           context: dict[str, Any] | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message}
    if context is not None:
        error["context"] = context
    return Reply.json(status, {"error": error})


def _local(moment: datetime | None, code: str) -> str | None:
    """``moment`` as the airport's wall clock, mislabelled ``+00:00`` as the real API does."""
    if moment is None:
        return None
    zone = ZoneInfo((airport(code) or {})["tz"])
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _late(minutes: int, live: bool) -> int | None:
    return minutes if live and minutes > 0 else None


def _status(leg: LegTruth, now: datetime, taxi: timedelta) -> str:
    if leg.cancelled:
        return "cancelled"
    if now >= leg.estimated_arrival - taxi:
        return "landed"
    return "active" if leg.departed(now) else "scheduled"


def _sides(leg: LegTruth, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    taxi = timedelta(minutes=TAXI_MINUTES)
    live = not leg.cancelled
    out_, in_ = leg.estimated_departure, leg.estimated_arrival
    origin, destination = airport(leg.origin) or {}, airport(leg.destination) or {}
    departure = {
        "airport": origin.get("name"), "timezone": origin.get("tz"), "iata": leg.origin,
        "icao": origin.get("icao") or None, "terminal": leg.departure_terminal,
        "gate": leg.departure_gate, "delay": _late(leg.departure_delay_minutes, live),
        "scheduled": _local(leg.scheduled_departure, leg.origin),
        "estimated": _local(out_, leg.origin) if live else None,
        "actual": _local(out_, leg.origin) if leg.departed(now) else None,
        "estimated_runway": _local(out_ + taxi, leg.origin) if live else None,
        "actual_runway": _local(out_ + taxi, leg.origin)
        if live and now >= out_ + taxi else None,
    }
    arrival = {
        "airport": destination.get("name"), "timezone": destination.get("tz"),
        "iata": leg.destination, "icao": destination.get("icao") or None,
        "terminal": leg.arrival_terminal, "gate": leg.arrival_gate,
        "baggage": leg.baggage_belt, "delay": _late(leg.arrival_delay_minutes, live),
        "scheduled": _local(leg.scheduled_arrival, leg.destination),
        "estimated": _local(in_, leg.destination) if live else None,
        "actual": _local(in_, leg.destination) if leg.arrived(now) else None,
        "estimated_runway": _local(in_ - taxi, leg.destination) if live else None,
        "actual_runway": _local(in_ - taxi, leg.destination)
        if live and now >= in_ - taxi else None,
    }
    return departure, arrival


def _flight(carrier: str, number: str) -> dict[str, Any]:
    icao, name = airline(carrier)
    return {"name": name, "iata": carrier, "icao": icao,
            "number": number, "flight_iata": f"{carrier}{number}",
            "flight_icao": f"{icao}{number}" if icao else None}


def _records(truth: FlightTruth, leg: LegTruth, now: datetime) -> list[dict[str, Any]]:
    """The leg's marketing copies, then its operating record."""
    departure, arrival = _sides(leg, now)
    craft = leg.aircraft
    common = {
        "flight_date": truth.day.isoformat(),
        "flight_status": _status(leg, now, timedelta(minutes=TAXI_MINUTES)),
        "departure": departure, "arrival": arrival,
        "aircraft": {"registration": craft.registration, "iata": craft.iata, "icao": craft.icao,
                     "icao24": hashlib.sha256(craft.registration.encode()).hexdigest()[:6]
                     .upper()},
        "live": None,
    }
    operator = _flight(truth.carrier, str(truth.number))
    records = []
    for designator in truth.codeshares:
        seller = _flight(designator[:2], designator[2:])
        records.append({
            **common,
            "airline": {"name": seller["name"], "iata": seller["iata"], "icao": seller["icao"]},
            "flight": {"number": seller["number"], "iata": seller["flight_iata"],
                       "icao": seller["flight_icao"],
                       "codeshared": {
                           "airline_name": operator["name"].lower(),
                           "airline_iata": operator["iata"].lower(),
                           "airline_icao": (operator["icao"] or "").lower() or None,
                           "flight_number": operator["number"],
                           "flight_iata": operator["flight_iata"].lower(),
                           "flight_icao": (operator["flight_icao"] or "").lower() or None}},
        })
    records.append({
        **common,
        "airline": {"name": operator["name"], "iata": operator["iata"],
                    "icao": operator["icao"]},
        "flight": {"number": operator["number"], "iata": operator["flight_iata"],
                   "icao": operator["flight_icao"], "codeshared": None},
    })
    return records


def _page(request: Request) -> tuple[int, int] | Reply:
    """(limit, offset) from the query, or the validation error the API answers."""
    values = {}
    for key, default, high in (("limit", MAX_LIMIT, MAX_LIMIT), ("offset", 0, None)):
        raw = request.query.get(key)
        if raw is None:
            values[key] = default
            continue
        if not raw.isdigit() or (high is not None and not 1 <= int(raw) <= high):
            return _error(422, "validation_error", "Request failed with validation error",
                          {key: [{"key": f"invalid_{key}",
                                  "message": f"The {key} must be a whole number"
                                  + (f" from 1 to {high}." if high else ".")}]})
        values[key] = int(raw)
    return values["limit"], values["offset"]


class Aviationstack(Provider):
    name: ClassVar[str] = "aviationstack"

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint("GET", re.compile(r"/aviationstack/v1/flights"), "data",
                         self.flights),)

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        key = request.query.get("access_key")
        if not key:
            return _error(401, "missing_access_key",
                          "You have not supplied an API Access Key. [Required format: "
                          "access_key=YOUR_ACCESS_KEY]")
        if key != API_KEY:
            return _error(401, "invalid_access_key",
                          "You have not supplied a valid API Access Key.")
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        found = _DESIGNATOR.fullmatch((request.query.get("flight_iata") or "").upper())
        if found is None:
            return None
        return Target(found[1], int(found[2]), _day(request.query.get("flight_date")))

    def flights(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        if "flight_date" in request.query and ctx.plan(self.name) == FREE:
            return _error(403, "function_access_restricted",
                          "Your current subscription plan does not support this API "
                          "function.")
        page = _page(request)
        if isinstance(page, Reply):
            return page
        limit, offset = page
        raw_date = request.query.get("flight_date")
        if raw_date is not None and _day(raw_date) is None:
            return _error(422, "validation_error", "Request failed with validation error",
                          {"flight_date": [{"key": "invalid_flight_date",
                                            "message": "The flight date must be YYYY-MM-DD."}]})
        target = self.target(request, match)
        records = self._flights_of(target, ctx) if target is not None else []
        shown = records[offset:offset + limit]
        return Reply.json(200, {
            "pagination": {"limit": limit, "offset": offset, "count": len(shown),
                           "total": len(records)},
            "data": shown})

    def _flights_of(self, target: Target, ctx: Context) -> list[dict[str, Any]]:
        now = ctx.now()
        days = [target.day] if target.day is not None else [
            now.date() + timedelta(days=shift) for shift in (-1, 0, 1)]
        records: list[dict[str, Any]] = []
        for day in days:
            truth = ctx.truth(self.name, target.carrier, target.number, day)
            if truth is not None:
                for leg in truth.legs:
                    records.extend(_records(truth, leg, now))
        return records

    def server_error(self, status: int) -> Reply:
        return _error(status, "internal_error", "An internal error occurred.")

    def rate_limited(self, retry_after: float) -> Reply:
        reply = _error(429, "rate_limit_reached",
                       "The given user account has reached the rate limit.")
        return Reply(reply.status, reply.body, reply.content_type,
                     retry_after_header(retry_after))

    def quota_exhausted(self, request: Request) -> Reply:
        return _error(429, "usage_limit_reached",
                      "Your monthly usage limit has been reached. Please upgrade your "
                      "Subscription Plan.")

    def not_found(self) -> Reply:
        # Aviationstack has no 404 for a flight: an unknown one is an empty page.
        return Reply.json(200, {"pagination": {"limit": MAX_LIMIT, "offset": 0, "count": 0,
                                               "total": 0}, "data": []})

    def token_expired(self) -> Reply:
        return _error(401, "invalid_access_key", "You have not supplied a valid API Access Key.")


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
