"""British Airways legacy Flight Information v1 (docs/PROVIDERS.md section 5): matrix parameters on
the path, ``client-key`` header, ``FlightsResponse.Flight.Sector`` with collapsed one-element
arrays and numeric-looking values as numbers.

The zone of the ``*DateTime`` values is undocumented; the sandbox writes wall-clock time at
the sector's airport without an offset, the way airline timetables are published.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, ClassVar
from urllib.parse import unquote

from flightsync.sandbox._base import (
    Context,
    Endpoint,
    Provider,
    Reply,
    Request,
    Target,
    retry_after_header,
)
from flightsync.sandbox._truth import FlightTruth, LegTruth

API_KEY = "sandbox"
_NOT_AUTHORIZED = {"Error": "Not Authorized"}


def _number(text: str) -> int | str:
    return int(text) if text.isdigit() and not text.startswith("0") else text


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _departure_status(leg: LegTruth, now: datetime) -> str:
    if leg.cancelled:
        return "Cancelled"
    if leg.departed(now):
        return "Departed"
    return "Delayed" if leg.departure_delay_minutes >= 5 else "On time"


def _arrival_status(leg: LegTruth, now: datetime) -> str:
    if leg.cancelled:
        return "Cancelled"
    if leg.arrived(now):
        return "Landed"
    return "Delayed" if leg.arrival_delay_minutes >= 5 else "On time"


def _sector(truth: FlightTruth, leg: LegTruth, now: datetime) -> dict[str, Any]:
    sector: dict[str, Any] = {
        "DepartureStatus": _departure_status(leg, now),
        "ArrivalStatus": _arrival_status(leg, now),
        "DepartureAirport": leg.origin,
        "ArrivalAirport": leg.destination,
        "DepartureTerminal": _number(leg.departure_terminal),
        "ArrivalTerminal": _number(leg.arrival_terminal),
        "ScheduledDepartureDateTime": _local(leg.scheduled_departure),
        "ScheduledArrivalDateTime": _local(leg.scheduled_arrival),
        "OperatingCarrierCode": truth.carrier,
        "AircraftTypeCode": _number(leg.aircraft.iata),
        "MatchesRequest": "true",
        "DepartureGateInformation": {"GateNumber": leg.departure_gate,
                                     "GateStatus": "Closed" if leg.departed(now) else "Open"},
    }
    if not leg.cancelled:
        sector["ReportedDepartureDateTime"] = _local(leg.estimated_departure)
        sector["ReportedArrivalDateTime"] = _local(leg.estimated_arrival)
    return sector


def flights_response(truth: FlightTruth, now: datetime) -> dict[str, Any]:
    """The ``FlightsResponse`` document for one flight."""
    sectors = [_sector(truth, leg, now) for leg in truth.legs]
    return {"FlightsResponse": {
        "Flight": {"MarketingCarrierCode": truth.carrier, "FlightNumber": truth.number,
                   "Sector": sectors[0] if len(sectors) == 1 else sectors},
        "DataLastUpdated": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }}


def _matrix(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in text.split(";"):
        name, _, value = part.partition("=")
        if name:
            params[unquote(name)] = unquote(value)
    return params


class BritishAirways(Provider):
    name: ClassVar[str] = "british_airways"
    carriers: ClassVar[frozenset[str] | None] = frozenset({"BA"})

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint("GET", re.compile(r"/rest-v1/v1/flights(?P<matrix>;[^/]*?)(?:\.json)?"),
                         "data", self.flights),)

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        if request.header("client-key") != API_KEY:
            return Reply.json(401, _NOT_AUTHORIZED)
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        params = _matrix(match["matrix"])
        found = re.fullmatch(r"([A-Z0-9]{2})?(\d{1,4})",
                             params.get("flightNumber", "").replace(" ", "").upper())
        if found is None:
            return None
        try:
            day: date | None = date.fromisoformat(params.get("scheduledDepartureDate", ""))
        except ValueError:
            day = None
        return Target(found[1] or "BA", int(found[2]), day)

    def flights(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        target = self.target(request, match)
        if target is None or target.day is None:
            return Reply.json(400, {"Error": "Bad Request: flightNumber and "
                                             "scheduledDepartureDate are required"})
        truth = ctx.truth(self.name, target.carrier, target.number, target.day)
        if truth is None:
            return self.not_found()
        return Reply.json(200, flights_response(truth, ctx.now()))

    def server_error(self, status: int) -> Reply:
        return Reply.json(status, {"Error": "Service Unavailable"})

    def rate_limited(self, retry_after: float) -> Reply:
        return Reply.json(429, {"Error": "Developer Over Qps"},
                          headers=retry_after_header(retry_after))

    def not_found(self) -> Reply:
        return Reply.json(404, {"Error": "No matching flights"})

    def token_expired(self) -> Reply:
        return Reply.json(401, _NOT_AUTHORIZED)
