"""Air France-KLM Open Data flight status (docs/PROVIDERS.md section 4): a search by departure time
range, carrier and number, ``API-Key`` header, times with milliseconds and an offset,
``flightScheduleDate`` as the UTC date, legs in ``flightLegs``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
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
from flightsync.sandbox._truth import FlightTruth, LegTruth, airline, airport

CONTENT_TYPE = "application/hal+json"
API_KEY = "sandbox"
_MAX_RANGE_DAYS = 7
TAKE_OFF_MINUTES = 10   # taxi time from off-block to take-off, and from touch-down to in-block


def _errors(status: int, name: str, description: str) -> Reply:
    return Reply.json(status, {"errors": [{"code": str(status), "name": name,
                                           "description": description, "severity": "ERROR"}]},
                      content_type=CONTENT_TYPE)


def _t(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _airport(code: str) -> dict[str, Any]:
    row = airport(code) or {}
    return {"code": code, "name": str(row.get("name", code)).upper(),
            "city": {"code": code, "name": str(row.get("city", "")).upper(),
                     "country": {"code": row.get("country", "")}},
            "location": {"latitude": row.get("lat"), "longitude": row.get("lon")}}


def _leg_status(leg: LegTruth, now: datetime) -> str:  # noqa: PLR0911 - one per status
    if leg.cancelled:
        return "CANCELLED"
    if leg.arrived(now):
        return "ARRIVED"
    if now >= leg.estimated_arrival - timedelta(minutes=TAKE_OFF_MINUTES):
        return "LANDED"
    if now >= leg.estimated_departure + timedelta(minutes=TAKE_OFF_MINUTES):
        return "IN_FLIGHT"
    if leg.departed(now):
        return "DEPARTED"
    if leg.departure_delay_minutes > 10:
        return "DELAYED_DEPARTURE"
    if leg.departure_delay_minutes < -10:
        return "EARLY_DEPARTURE"
    return "ONTIME"


def _departure_times(leg: LegTruth, now: datetime) -> dict[str, Any]:
    times: dict[str, Any] = {"scheduled": _t(leg.scheduled_departure)}
    if leg.cancelled:
        return times
    estimated = _t(leg.estimated_departure)
    times.update(latestPublished=estimated, estimatedPublic=estimated,
                 estimated={"value": estimated})
    if leg.departed(now):
        times["actual"] = estimated
    take_off = leg.estimated_departure + timedelta(minutes=TAKE_OFF_MINUTES)
    if now >= take_off:
        times["actualTakeOffTime"] = _t(take_off)
    return times


def _arrival_times(leg: LegTruth, now: datetime) -> dict[str, Any]:
    times: dict[str, Any] = {"scheduled": _t(leg.scheduled_arrival)}
    if leg.cancelled:
        return times
    estimated = _t(leg.estimated_arrival)
    times.update(latestPublished=estimated, estimatedPublic=estimated,
                 estimated={"value": estimated})
    touch_down = leg.estimated_arrival - timedelta(minutes=TAKE_OFF_MINUTES)
    if now >= touch_down:
        times["actualTouchDownTime"] = _t(touch_down)
    if leg.arrived(now):
        times["actual"] = estimated
    return times


def _leg(truth: FlightTruth, leg: LegTruth, now: datetime) -> dict[str, Any]:
    status = _leg_status(leg, now)
    duration = int((leg.scheduled_arrival - leg.scheduled_departure).total_seconds() // 60)
    return {
        "status": "C" if leg.cancelled else "S",
        "statusName": "Cancelled" if leg.cancelled else "Scheduled",
        "publishedStatus": status,
        "departureInformation": {
            "airport": {**_airport(leg.origin), "places": {
                "terminalCode": leg.departure_terminal, "gateNumber": [leg.departure_gate]}},
            "times": _departure_times(leg, now)},
        "arrivalInformation": {
            "airport": {**_airport(leg.destination), "places": {
                "arrivalPositionTerminal": leg.arrival_terminal,
                "gateNumber": [leg.arrival_gate]}},
            "times": _arrival_times(leg, now)},
        "legStatusPublic": status,
        "legStatusPublicLangTransl": status.replace("_", " ").capitalize(),
        "serviceType": "J", "serviceTypeName": "Normal Service",
        "scheduledFlightDuration": f"PT{duration // 60}H{duration % 60}M",
        "completionPercentage": "100" if leg.arrived(now) else "0",
        "aircraft": {"typeCode": leg.aircraft.iata, "typeName": leg.aircraft.name,
                     "registration": leg.aircraft.registration.replace("-", ""),
                     "ownerAirlineCode": truth.carrier,
                     "ownerAirlineName": airline(truth.carrier)[1]},
        "irregularity": {"cancelled": "Y" if leg.cancelled else "N"},
    }


def _flight_status(statuses: list[str]) -> str:
    cancelled = statuses.count("CANCELLED")
    if cancelled:
        return "CANCELLED" if cancelled == len(statuses) else "PARTIALLY_CANCELLED"
    if statuses[-1] == "ARRIVED":
        return "ARRIVED"
    moving = [s for s in statuses if s not in ("ARRIVED", "ONTIME")]
    return moving[0] if moving else "ONTIME"


def operational_flight(truth: FlightTruth, now: datetime) -> dict[str, Any]:
    """One entry of ``operationalFlights``."""
    schedule_date = truth.legs[0].scheduled_departure.astimezone(UTC).date()
    legs = [_leg(truth, leg, now) for leg in truth.legs]
    status = _flight_status([leg["legStatusPublic"] for leg in legs])
    return {
        "flightNumber": truth.number,
        "flightScheduleDate": schedule_date.isoformat(),
        "id": f"{schedule_date:%Y%m%d}+{truth.carrier}+{truth.number:04d}",
        "haul": "LONG" if any(leg.aircraft.iata in ("359", "77W", "744", "789")
                              for leg in truth.legs) else "MEDIUM",
        "route": [truth.legs[0].origin, *(leg.destination for leg in truth.legs)],
        "airline": {"code": truth.carrier, "name": airline(truth.carrier)[1]},
        "codeShareRelations": [
            {"marketingFlightNumber": int(code[2:]), "code": "F", "type": "PASSENGER",
             "airline": {"code": code[:2], "name": airline(code[:2])[1]}}
            for code in truth.codeshares],
        "flightStatusPublic": status,
        "flightStatusPublicLangTransl": status.replace("_", " ").capitalize(),
        "flightLegs": legs,
    }


def _range_value(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class AirFranceKlm(Provider):
    name: ClassVar[str] = "airfrance_klm"
    carriers: ClassVar[frozenset[str] | None] = frozenset({"AF", "KL"})

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (
            Endpoint("GET", re.compile(r"/opendata/flightstatus"), "data", self.search),
            Endpoint("GET", re.compile(r"/opendata/flightstatus/(?P<id>[^/]+)"), "data",
                     self.by_id),
        )

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        if request.header("api-key") != API_KEY:
            return _errors(401, "UNAUTHORIZED", "Missing or invalid API-Key header")
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        if "id" in match.groupdict():
            found = re.fullmatch(r"(\d{8})\+([A-Z0-9]{2})\+(\d{1,4})[A-Z]?",
                                 unquote(match["id"]).upper())
            if found is None:
                return None
            return Target(found[2], int(found[3]), datetime.strptime(found[1], "%Y%m%d").date())
        carrier = request.query.get("carrierCode", "").upper()
        number = request.query.get("flightNumber", "")
        if not carrier or not number.isdigit():
            return None
        start = _range_value(request.query.get("startRange", ""))
        return Target(carrier, int(number), None if start is None else start.date())

    def search(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        start = _range_value(request.query.get("startRange", ""))
        end = _range_value(request.query.get("endRange", ""))
        if start is None or end is None:
            return _errors(400, "INVALID_PARAMETER",
                           "startRange and endRange must be ISO 8601 date-times")
        local = request.query.get("timeType", "U").upper() == "L"
        if local:  # wall-clock ranges: compare without zones
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        else:
            start, end = (m.replace(tzinfo=UTC) if m.tzinfo is None else m for m in (start, end))
        if end < start:
            return _errors(400, "INVALID_PARAMETER", "endRange is before startRange")
        if (end - start).days > _MAX_RANGE_DAYS:
            return _errors(400, "INVALID_PARAMETER", "the range may span at most 7 days")
        target = self.target(request, match)
        found: list[dict[str, Any]] = []
        if target is not None:
            arrival = request.query.get("movementType", "D").upper() == "A"
            day = start.date() - timedelta(days=1)
            while day <= end.date() + timedelta(days=1):
                truth = ctx.truth(self.name, target.carrier, target.number, day)
                if truth is not None and _in_range(truth, start, end, arrival=arrival,
                                                   local=local):
                    found.append(operational_flight(truth, ctx.now()))
                day += timedelta(days=1)
        return Reply.json(200, {"operationalFlights": found, "page": {
            "pageSize": 100, "pageNumber": 0, "fullCount": len(found),
            "pageCount": len(found), "totalPages": 1}}, content_type=CONTENT_TYPE)

    def by_id(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        target = self.target(request, match)
        if target is not None and target.day is not None:
            # The id carries the UTC date of the first departure; the local date may differ.
            for offset in (0, -1, 1):
                day = target.day + timedelta(days=offset)
                truth = ctx.truth(self.name, target.carrier, target.number, day)
                if truth is not None and truth.legs[0].scheduled_departure.astimezone(
                        UTC).date() == target.day:
                    return Reply.json(200, operational_flight(truth, ctx.now()),
                                      content_type=CONTENT_TYPE)
        return self.not_found()

    def server_error(self, status: int) -> Reply:
        return _errors(status, "INTERNAL_SERVER_ERROR", "The service is temporarily unavailable")

    def rate_limited(self, retry_after: float) -> Reply:
        reply = _errors(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
        return Reply(reply.status, reply.body, reply.content_type,
                     retry_after_header(retry_after))

    def not_found(self) -> Reply:
        return _errors(404, "NOT_FOUND", "No flights found for the given criteria")

    def token_expired(self) -> Reply:
        return _errors(401, "UNAUTHORIZED", "Missing or invalid API-Key header")


def _in_range(truth: FlightTruth, start: datetime, end: datetime, *, arrival: bool,
              local: bool) -> bool:
    moment = truth.legs[-1].scheduled_arrival if arrival else truth.legs[0].scheduled_departure
    return start <= (moment.replace(tzinfo=None) if local else moment) <= end

