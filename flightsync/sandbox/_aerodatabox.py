"""AeroDataBox (docs/PROVIDERS.md section 6.2) as sold through API.market and RapidAPI:
``GET /api/v1/aedbx/aerodatabox/flights/number/{designator}/{local date}``, answered with a
JSON array of ``FlightContract`` (one item per leg leaving on the date at its origin, and a
copy per codeshare number) or 204 with no content.

Either marketplace's key header is taken: ``x-magicapi-key`` (API.market) or
``X-RapidAPI-Key`` with ``X-RapidAPI-Host``. Errors are ``{"message": ...}``; a spent quota
and a rate limit are both 429, told apart by the message, as the marketplaces do.

Times are ``2026-02-25 08:10Z`` / ``2026-02-25 09:10+01:00`` (space, minutes). Flights dated
before 2023-03-01 come in the older flat schema (``scheduledTimeUtc``, ``actualTimeUtc``,
``runwayTimeUtc``), later ones in the newer ``{utc, local}`` schema.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from flightsync.models import FlightStatus
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
RAPIDAPI_HOST = "aerodatabox.p.rapidapi.com"
PREFIX = "/api/v1/aedbx/aerodatabox"
FLAT_SCHEMA_BEFORE = date(2023, 3, 1)
TAXI_MINUTES = 10
_STATUS = {
    FlightStatus.SCHEDULED: "Expected", FlightStatus.DELAYED: "Delayed",
    FlightStatus.BOARDING: "Boarding", FlightStatus.AIRBORNE: "EnRoute",
    FlightStatus.ARRIVED: "Arrived", FlightStatus.CANCELLED: "Canceled",
}
# RapidAPI's wording; API.market's is not published, so the sandbox says "quota" in its own.
_RAPIDAPI_QUOTA = ("You have exceeded the MONTHLY quota for Requests on your current plan, "
                   "BASIC. Upgrade your plan at https://rapidapi.com/aedbx-aedbx/api/aerodatabox")
_API_MARKET_QUOTA = "Monthly quota exceeded for your plan. Upgrade your plan at https://api.market"


def _message(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply.json(status, {"message": message}, headers=headers)


def _pair(moment: datetime) -> dict[str, str]:
    """A DateTimeContract: UTC with ``Z`` and the airport's local time with its offset."""
    local = moment.strftime("%Y-%m-%d %H:%M%z")
    return {"utc": moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
            "local": f"{local[:-2]}:{local[-2:]}"}


def _airport(code: str) -> dict[str, Any]:
    row = airport(code) or {}
    return {"icao": row.get("icao") or None, "iata": code, "name": row.get("name") or code,
            "shortName": row.get("name"), "municipalityName": row.get("city"),
            "location": {"lat": row.get("lat"), "lon": row.get("lon")},
            "countryCode": row.get("country"), "timeZone": row.get("tz")}


def _movement(code: str, times: dict[str, datetime | None], flat: bool,
              extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"airport": _airport(code)}
    for kind, moment in times.items():
        if moment is None:
            continue
        if flat:
            # The older schema has no predicted time and calls the revised time "actual".
            name = {"revised": "actual"}.get(kind, kind)
            if kind != "predicted":
                pair = _pair(moment)
                out[f"{name}TimeLocal"], out[f"{name}TimeUtc"] = pair["local"], pair["utc"]
        else:
            out[f"{kind}Time"] = _pair(moment)
    live = any(k != "scheduled" and v is not None for k, v in times.items())
    return {**out, **{k: v for k, v in extra.items() if v is not None},
            "quality": ["Basic", "Live"] if live else ["Basic"]}


def _model(name: str) -> str:
    """The truth's ``AIRBUS A320NEO`` as AeroDataBox writes models (``Airbus A320neo``)."""
    return name.title().replace("Neo", "neo").replace("Er", "ER")


def _item(truth: FlightTruth, leg: LegTruth, now: datetime, number: str,
          codeshare_status: str) -> dict[str, Any]:
    flat = truth.day < FLAT_SCHEMA_BEFORE
    live = not leg.cancelled
    departed, arrived = leg.departed(now), leg.arrived(now)
    taxi = timedelta(minutes=TAXI_MINUTES)
    out_, in_ = leg.estimated_departure, leg.estimated_arrival
    departure = _movement(leg.origin, {
        "scheduled": leg.scheduled_departure,
        "revised": out_ if live else None,
        "runway": out_ + taxi if departed and now >= out_ + taxi else None,
    }, flat, {"terminal": leg.departure_terminal, "gate": leg.departure_gate})
    arrival = _movement(leg.destination, {
        "scheduled": leg.scheduled_arrival,
        "revised": in_ if arrived else None,
        "predicted": in_ if live and not arrived else None,
        "runway": in_ - taxi if arrived else None,
    }, flat, {"terminal": leg.arrival_terminal, "gate": leg.arrival_gate,
              "baggageBelt": leg.baggage_belt})
    icao, name = airline(number[:2])
    status = leg.status(now)
    return {
        "greatCircleDistance": None, "departure": departure, "arrival": arrival,
        "lastUpdatedUtc": min(now, in_).astimezone(UTC).strftime("%Y-%m-%d %H:%MZ"),
        "number": f"{number[:2]} {number[2:]}",
        "callSign": f"{icao}{truth.number}" if icao and codeshare_status == "IsOperator"
        else None,
        "status": _STATUS.get(status, "Unknown"),
        "codeshareStatus": codeshare_status, "isCargo": False,
        "aircraft": {"reg": leg.aircraft.registration, "modeS": None,
                     "model": _model(leg.aircraft.name)},
        "airline": {"name": name.title(), "iata": number[:2], "icao": icao},
    }


class AeroDataBox(Provider):
    name: ClassVar[str] = "aerodatabox"

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint("GET", re.compile(
            PREFIX + r"/flights/(?P<by>[^/]+)/(?P<param>[^/]+)/(?P<day>[^/]+)"), "data",
            self.flights),)

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        if request.header("x-magicapi-key") == API_KEY:
            return None
        if (request.header("x-rapidapi-key") == API_KEY
                and request.header("x-rapidapi-host") == RAPIDAPI_HOST):
            return None
        return _message(401, "Invalid API key. Go to https://api.market to get a key.")

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        found = re.fullmatch(r"([A-Z0-9]{2})\s*(\d{1,4})", match["param"].upper())
        try:
            day = date.fromisoformat(match["day"])
        except ValueError:
            day = None
        return None if found is None else Target(found[1], int(found[2]), day)

    def flights(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        if match["by"].lower() != "number":
            return _message(400, f"Search by {match['by'][:20]} is not emulated")
        target = self.target(request, match)
        if target is None or target.day is None:
            return _message(400, "Flight number or date is invalid")
        truth = ctx.truth(self.name, target.carrier, target.number, target.day)
        if truth is None:
            return Reply(204, b"")
        now = ctx.now()
        items: list[dict[str, Any]] = []
        for leg in truth.legs:
            # Departure role: only the legs that leave on the date at their origin.
            if leg.scheduled_departure.date() != target.day:
                continue
            items.append(_item(truth, leg, now, truth.designator, "IsOperator"))
            items.extend(_item(truth, leg, now, code, "IsCodeshared")
                         for code in truth.codeshares)
        return Reply.json(200, items) if items else Reply(204, b"")

    def server_error(self, status: int) -> Reply:
        return _message(status, "Service is temporarily unavailable")

    def rate_limited(self, retry_after: float) -> Reply:
        return _message(429, "Too many requests", retry_after_header(retry_after))

    def not_found(self) -> Reply:
        return Reply(204, b"")

    def token_expired(self) -> Reply:
        return _message(401, "Invalid API key. Go to https://api.market to get a key.")

    def quota_exhausted(self, request: Request) -> Reply:
        rapid = request.header("x-rapidapi-key") is not None
        return _message(429, _RAPIDAPI_QUOTA if rapid else _API_MARKET_QUOTA)
