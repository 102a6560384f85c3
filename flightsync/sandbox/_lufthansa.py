"""Lufthansa Open API (docs/PROVIDERS.md section 3) with its XML-to-JSON quirks: one flight is an
object rather than a list, numeric-looking values are numbers, local times have no offset,
UTC times end in ``Z`` without seconds, and only one of Estimated/Actual is present."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from flightsync.sandbox._base import (
    Context,
    Endpoint,
    Provider,
    Reply,
    Request,
    Target,
    bearer,
    form,
    retry_after_header,
)
from flightsync.sandbox._truth import FlightTruth, LegTruth

CLIENT_ID = CLIENT_SECRET = "sandbox"  # noqa: S105 - the sandbox's published credentials
_NOT_AUTHORIZED = {"Error": "Not Authorized"}


def _number(text: str) -> int | str:
    """What the XML-to-JSON gateway makes of a value: digits become a JSON number."""
    return int(text) if text.isdigit() and (text == "0" or not text.startswith("0")) else text


def _times(kind: str, scheduled: datetime, estimated: datetime, happened: bool,
           cancelled: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ScheduledTimeLocal": {"DateTime": scheduled.strftime("%Y-%m-%dT%H:%M")},
        "ScheduledTimeUTC": {"DateTime": scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")},
    }
    if not cancelled:
        label = "Actual" if happened else "Estimated"
        out[f"{label}TimeLocal"] = {"DateTime": estimated.strftime("%Y-%m-%dT%H:%M")}
        out[f"{label}TimeUTC"] = {"DateTime": estimated.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")}
    return out


def _time_status(delay: int, cancelled: bool) -> dict[str, str]:
    if cancelled:
        return {"Code": "NO", "Definition": "No status"}
    if delay >= 5:
        return {"Code": "DL", "Definition": "Flight Delayed"}
    if delay < 0:
        return {"Code": "FE", "Definition": "Flight Early"}
    return {"Code": "OT", "Definition": "Flight On Time"}


def _flight_status(leg: LegTruth, now: datetime) -> dict[str, str]:
    if leg.cancelled:
        return {"Code": "CD", "Definition": "Flight Cancelled"}
    if leg.arrived(now):
        return {"Code": "LD", "Definition": "Flight Landed"}
    if leg.departed(now):
        return {"Code": "DP", "Definition": "Flight Departed"}
    return {"Code": "NA", "Definition": "No status"}


def flight_object(truth: FlightTruth, leg: LegTruth, now: datetime) -> dict[str, Any]:
    """One ``Flight`` entry of ``FlightStatusResource.Flights``."""
    carrier = {"AirlineID": truth.carrier, "FlightNumber": truth.number}
    return {
        "Departure": {
            "AirportCode": leg.origin,
            **_times("Departure", leg.scheduled_departure, leg.estimated_departure,
                     leg.departed(now), leg.cancelled),
            "TimeStatus": _time_status(leg.departure_delay_minutes, leg.cancelled),
            "Terminal": {"Name": _number(leg.departure_terminal), "Gate": leg.departure_gate},
        },
        "Arrival": {
            "AirportCode": leg.destination,
            **_times("Arrival", leg.scheduled_arrival, leg.estimated_arrival,
                     leg.arrived(now), leg.cancelled),
            "TimeStatus": _time_status(leg.arrival_delay_minutes, leg.cancelled),
            "Terminal": {"Name": _number(leg.arrival_terminal), "Gate": leg.arrival_gate},
        },
        "MarketingCarrier": dict(carrier),
        "OperatingCarrier": dict(carrier),
        "Equipment": {"AircraftCode": _number(leg.aircraft.iata),
                      "AircraftRegistration": leg.aircraft.registration.replace("-", "")},
        "FlightStatus": _flight_status(leg, now),
    }


def _processing_error(status: int, kind: str, code: int, description: str,
                      retry: bool) -> Reply:
    return Reply.json(status, {"ProcessingErrors": {"ProcessingError": {
        "@RetryIndicator": retry, "Type": kind, "Code": code, "Description": description,
        "InfoURL": "https://developer.lufthansa.com/docs/read/api_basics/Error_Messages"}}})


class Lufthansa(Provider):
    name: ClassVar[str] = "lufthansa"
    carriers: ClassVar[frozenset[str] | None] = frozenset(
        {"LH", "LX", "OS", "SN", "EW", "EN", "4Y"})
    oauth: ClassVar[bool] = True

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (
            Endpoint("POST", re.compile(r"/v1/oauth/token"), "token", self.token),
            Endpoint("GET", re.compile(
                r"/v1/operations/flightstatus/(?P<flight>[A-Za-z0-9]{3,8})/(?P<date>[^/]+)"),
                "data", self.flight_status),
        )

    def token(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        fields = form(request)
        if fields.get("grant_type") != "client_credentials":
            return Reply.json(400, {"error": "unsupported_grant_type"})
        if fields.get("client_id") != CLIENT_ID or fields.get("client_secret") != CLIENT_SECRET:
            return Reply.json(401, {"error": "invalid_client"})
        token, ttl = ctx.issue_token(self.name)
        # The real API answers the type in lower case yet insists on "Bearer" in requests.
        return Reply.json(200, {"access_token": token, "token_type": "bearer",
                                "expires_in": ttl})

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        token = bearer(request, exact_case=True)
        if token is None or ctx.token_state(self.name, token) != "valid":
            return Reply.json(401, _NOT_AUTHORIZED)
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        found = re.fullmatch(r"([A-Z0-9]{2})(\d{1,4})", match["flight"].upper())
        if found is None:
            return None
        try:
            day: date | None = date.fromisoformat(match["date"])
        except ValueError:
            day = None
        return Target(found[1], int(found[2]), day)

    def flight_status(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        target = self.target(request, match)
        if target is None or target.day is None:
            return _processing_error(400, "BadRequest", 1001,
                                     "Invalid flight number or date", retry=False)
        truth = ctx.truth(self.name, target.carrier, target.number, target.day)
        if truth is None:
            return self.not_found()
        now = ctx.now()
        flights = [flight_object(truth, leg, now) for leg in truth.legs]
        href = ("https://api.lufthansa.com/v1/operations/flightstatus/"
                f"{truth.designator}/{truth.day.isoformat()}")
        return Reply.json(200, {"FlightStatusResource": {
            "Flights": {"Flight": flights[0] if len(flights) == 1 else flights},
            "Meta": {"@Version": "1.0.0", "Link": [
                {"@Href": href, "@Rel": "self"},
                {"@Href": "https://api.lufthansa.com/v1/references/airports/{airportCode}",
                 "@Rel": "related"}]},
        }})

    def server_error(self, status: int) -> Reply:
        return _processing_error(status, "ServiceUnavailable", 5000,
                                 "The service is temporarily unavailable", retry=True)

    def rate_limited(self, retry_after: float) -> Reply:
        return Reply.json(429, {"Error": "Developer Over Qps"},
                          headers=retry_after_header(retry_after))

    def not_found(self) -> Reply:
        return _processing_error(404, "ResourceNotFound", 2001,
                                 "No flights found for the given criteria", retry=False)

    def token_expired(self) -> Reply:
        return Reply.json(401, _NOT_AUTHORIZED)
