"""Amadeus Self-Service (docs/PROVIDERS.md section 2): OAuth2 token, On-Demand Flight Status v2 and
location by id, with the flat token errors and the ``errors[]`` resource errors."""

from __future__ import annotations

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
    bearer,
    form,
    retry_after_header,
)
from flightsync.sandbox._truth import FlightTruth, LegTruth, airport

CONTENT_TYPE = "application/vnd.amadeus+json"
CLIENT_ID = CLIENT_SECRET = "sandbox"  # noqa: S105 - the sandbox's published credentials


def _errors(status: int, code: int | str, title: str, detail: str | None = None,
            source: dict[str, str] | None = None) -> Reply:
    issue: dict[str, Any] = {"status": status, "code": code, "title": title}
    if detail:
        issue["detail"] = detail
    if source:
        issue["source"] = source
    return Reply.json(status, {"errors": [issue]}, content_type=CONTENT_TYPE)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign, minutes = ("-", -minutes) if minutes < 0 else ("", minutes)
    hours, rest = divmod(minutes, 60)
    text = (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")
    return f"PT{sign}{text}"


def _time(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def _timing(qualifier: str, moment: datetime, delay: int) -> dict[str, Any]:
    timing: dict[str, Any] = {"qualifier": qualifier, "value": _time(moment)}
    if delay:
        timing["delays"] = [{"duration": _duration(timedelta(minutes=delay))}]
    return timing


def _departure(leg: LegTruth) -> dict[str, Any]:
    return {"terminal": {"code": leg.departure_terminal},
            "gate": {"mainGate": leg.departure_gate},
            "timings": [_timing("STD", leg.scheduled_departure, leg.departure_delay_minutes)]}


def _arrival(leg: LegTruth) -> dict[str, Any]:
    return {"terminal": {"code": leg.arrival_terminal},
            "gate": {"mainGate": leg.arrival_gate},
            "timings": [_timing("STA", leg.scheduled_arrival, leg.arrival_delay_minutes)]}


def dated_flight(truth: FlightTruth) -> dict[str, Any]:
    """One ``DatedFlight``: a point per airport, a segment and a leg per hop."""
    points: list[dict[str, Any]] = [{"iataCode": truth.legs[0].origin,
                                     "departure": _departure(truth.legs[0])}]
    for index, leg in enumerate(truth.legs):
        point: dict[str, Any] = {"iataCode": leg.destination, "arrival": _arrival(leg)}
        if index + 1 < len(truth.legs):
            point["departure"] = _departure(truth.legs[index + 1])
        points.append(point)
    hops = [{"boardPointIataCode": leg.origin, "offPointIataCode": leg.destination,
             "duration": _duration(leg.scheduled_arrival - leg.scheduled_departure),
             "aircraft": leg.aircraft.iata} for leg in truth.legs]
    return {
        "type": "DatedFlight",
        "scheduledDepartureDate": truth.day.isoformat(),
        "flightDesignator": {"carrierCode": truth.carrier, "flightNumber": truth.number},
        "flightPoints": points,
        "segments": [{"boardPointIataCode": h["boardPointIataCode"],
                      "offPointIataCode": h["offPointIataCode"],
                      "scheduledSegmentDuration": h["duration"]} for h in hops],
        "legs": [{"boardPointIataCode": h["boardPointIataCode"],
                  "offPointIataCode": h["offPointIataCode"],
                  "aircraftEquipment": {"aircraftType": h["aircraft"]},
                  "scheduledLegDuration": h["duration"]} for h in hops],
    }


class Amadeus(Provider):
    name: ClassVar[str] = "amadeus"
    oauth: ClassVar[bool] = True

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (
            Endpoint("POST", re.compile(r"/v1/security/oauth2/token"), "token", self.token),
            Endpoint("GET", re.compile(r"/v2/schedule/flights"), "data", self.flights),
            Endpoint("GET", re.compile(r"/v1/reference-data/locations/(?P<id>[^/]+)"), "data",
                     self.location),
        )

    def token(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        fields = form(request)
        if fields.get("grant_type") != "client_credentials":
            return Reply.json(400, {
                "error": "unsupported_grant_type",
                "error_description": "Only client_credentials value is allowed for the body "
                                     "parameter grant_type",
                "code": 38187, "title": "Invalid parameters"}, content_type=CONTENT_TYPE)
        if fields.get("client_id") != CLIENT_ID or fields.get("client_secret") != CLIENT_SECRET:
            return Reply.json(401, {
                "error": "invalid_client", "error_description": "Client credentials are invalid",
                "code": 38187, "title": "Invalid parameters"}, content_type=CONTENT_TYPE)
        token, ttl = ctx.issue_token(self.name)
        return Reply.json(200, {
            "type": "amadeusOAuth2Token", "username": "sandbox@flightsync.invalid",
            "application_name": "flightsync sandbox", "client_id": CLIENT_ID,
            "token_type": "Bearer", "access_token": token, "expires_in": ttl,
            "state": "approved", "scope": ""}, content_type=CONTENT_TYPE)

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        token = bearer(request, exact_case=False)
        if token is None:
            # The documented example carries code and status as strings.
            return Reply.json(401, {"errors": [{
                "code": "38191", "title": "Invalid HTTP header",
                "detail": "Missing or invalid format for mandatory Authorization header",
                "status": "401"}]}, content_type=CONTENT_TYPE)
        state = ctx.token_state(self.name, token)
        if state == "expired":
            return self.token_expired()
        if state != "valid":
            return _errors(401, 38190, "Invalid access token",
                           "The access token provided in the Authorization header is invalid")
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        carrier = request.query.get("carrierCode", "").upper()
        number = request.query.get("flightNumber", "")
        if not carrier or not number.isdigit():
            return None
        try:
            day = date.fromisoformat(request.query.get("scheduledDepartureDate", ""))
        except ValueError:
            day = None
        return Target(carrier, int(number), day)

    def flights(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        for name in ("carrierCode", "flightNumber", "scheduledDepartureDate"):
            if not request.query.get(name):
                return _errors(400, 32171, "MANDATORY DATA MISSING",
                               "Missing mandatory query parameter", {"parameter": name})
        target = self.target(request, match)
        number = request.query["flightNumber"]
        if target is None or target.day is None or len(number) > 4 or not (
                2 <= len(target.carrier) <= 3):
            return _errors(400, 477, "INVALID FORMAT", "invalid query parameter format",
                           {"parameter": "flightNumber" if target is None else
                            "scheduledDepartureDate"})
        truth = ctx.truth(self.name, target.carrier, target.number, target.day)
        self_link = f"https://test.api.amadeus.com/v2/schedule/flights?carrierCode=" \
                    f"{target.carrier}&flightNumber={target.number}" \
                    f"&scheduledDepartureDate={target.day.isoformat()}"
        data = [] if truth is None else [dated_flight(truth)]
        return Reply.json(200, {"meta": {"count": len(data), "links": {"self": self_link}},
                                "data": data}, content_type=CONTENT_TYPE)

    def location(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        location_id = match["id"].upper()
        row = airport(location_id[1:]) if location_id[:1] in ("A", "C") else None
        if row is None:
            return self.not_found()
        offset = ctx.now().astimezone(ZoneInfo(row["tz"])).isoformat()[-6:]
        sub_type = "AIRPORT" if location_id[0] == "A" else "CITY"
        href = f"https://test.api.amadeus.com/v1/reference-data/locations/{location_id}"
        return Reply.json(200, {"meta": {"links": {"self": href}}, "data": {
            "type": "location", "subType": sub_type, "name": str(row["name"]).upper(),
            "detailedName": f"{str(row['city']).upper()}/{row['country']}:"
                            f"{str(row['name']).upper()}",
            "id": location_id, "self": {"href": href, "methods": ["GET"]},
            "timeZoneOffset": offset, "iataCode": location_id[1:],
            "geoCode": {"latitude": row["lat"], "longitude": row["lon"]},
            "address": {"cityName": str(row["city"]).upper(), "countryCode": row["country"]},
        }}, content_type=CONTENT_TYPE)

    def server_error(self, status: int) -> Reply:
        return _errors(status, 141, "SYSTEM ERROR HAS OCCURRED")

    def rate_limited(self, retry_after: float) -> Reply:
        return Reply.json(429, {"errors": [{
            "code": "38194", "title": "Too many requests",
            "detail": "The network rate limit is exceeded, please try again later",
            "status": "429"}]}, content_type=CONTENT_TYPE, headers=retry_after_header(retry_after))

    def not_found(self) -> Reply:
        return _errors(404, 1797, "NOT FOUND", "no record found for this request")

    def token_expired(self) -> Reply:
        return _errors(401, 38192, "Access token expired",
                       "The access token provided in the Authorization header is expired")

