"""Cirium FlightStats Flex, Flight Status API v2 (docs/PROVIDERS.md section 6.4):
``GET /flex/flightstatus/rest/v2/json/flight/status/{carrier}/{number}/dep/{y}/{m}/{d}`` with
``appId``/``appKey`` as headers or query parameters.

Its quirks: every time twice (``dateLocal`` without an offset, ``dateUtc``); one- or
two-letter statuses; FlightStats ``fs`` carrier codes that are not always IATA (TUI Airways
``TOM`` is ``BY``, Lauda ``LDM`` is ``OE``), mapped in ``appendix.airlines``; a marketing
number answered by its operating flight (Ryanair numbers here are flown by Lauda, as FR111
was by LDM111), with the asked one among ``codeshares``; one ``flightStatuses`` entry per
leg; errors as ``{"error": {...}}``, sent with HTTP 200 unless the call asked for
``extendedOptions=useHttpErrors``.
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime, timedelta
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
from flightsync.sandbox._truth import (
    FlightTruth,
    LegTruth,
    airline,
    airport,
    carrier_from_icao,
)

APP_ID = APP_KEY = "sandbox"
TAXI_MINUTES = 10
_PATH = re.compile(r"/flex/flightstatus/rest/v2/json/flight/status/(?P<carrier>[A-Za-z0-9*]+)/"
                   r"(?P<number>\d{1,5})/dep/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})")
# IATA -> FlightStats fs code where they differ.
FS_CODES: dict[str, str] = {"BY": "TOM", "OE": "LDM"}
_ICAO: dict[str, str] = {"BY": "TOM", "OE": "LDM"}
_NAMES: dict[str, str] = {"BY": "TUI Airways", "OE": "Lauda"}
# Marketing carrier -> the carrier whose flight of the same number answers for it.
OPERATED_BY: dict[str, str] = {"FR": "OE"}


def fs_code(carrier: str) -> str:
    return FS_CODES.get(carrier, carrier)


def _iata_of(code: str, code_type: str) -> str | None:
    """The IATA carrier of ``code`` read as ``code_type`` (IATA, ICAO or FS, the default)."""
    code = code.upper()
    if code_type == "IATA":
        return code if len(code) == 2 else None
    if code_type == "ICAO":
        found = next((iata for iata, icao in _ICAO.items() if icao == code), None)
        return found or carrier_from_icao(code)
    found = next((iata for iata, fs in FS_CODES.items() if fs == code), None)
    return found or (code if len(code) == 2 else None)


def _error(status: int, code: str, message: str, request: Request | None) -> Reply:
    body = {"error": {"httpStatusCode": status, "errorId": f"{zlib.crc32(message.encode()):08x}"
                      "-0000-4000-8000-000000000000", "errorMessage": message,
                      "errorCode": code}}
    http = status if request is None or _http_errors(request) else 200
    return Reply.json(http, body)


def _http_errors(request: Request) -> bool:
    options = request.query.get("extendedOptions", "")
    return "useHttpErrors" in options.split(",")


def _pair(moment: datetime) -> dict[str, str]:
    """``{dateLocal, dateUtc}``: the local wall clock without an offset, and UTC with Z."""
    return {"dateLocal": moment.strftime("%Y-%m-%dT%H:%M:%S.000"),
            "dateUtc": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}


def _status(leg: LegTruth, now: datetime) -> str:
    if leg.cancelled:
        return "C"
    if leg.arrived(now) or now >= leg.estimated_arrival - timedelta(minutes=TAXI_MINUTES):
        return "L"
    return "A" if leg.departed(now) else "S"


def _times(leg: LegTruth, now: datetime) -> dict[str, Any]:
    taxi = timedelta(minutes=TAXI_MINUTES)
    out_, in_ = leg.estimated_departure, leg.estimated_arrival
    times: dict[str, Any] = {
        "publishedDeparture": _pair(leg.scheduled_departure),
        "scheduledGateDeparture": _pair(leg.scheduled_departure),
        "scheduledRunwayDeparture": _pair(leg.scheduled_departure + taxi),
        "publishedArrival": _pair(leg.scheduled_arrival),
        "scheduledGateArrival": _pair(leg.scheduled_arrival),
        "scheduledRunwayArrival": _pair(leg.scheduled_arrival - taxi),
    }
    if leg.cancelled:
        return times
    times.update({"estimatedGateDeparture": _pair(out_),
                  "estimatedRunwayDeparture": _pair(out_ + taxi),
                  "estimatedGateArrival": _pair(in_),
                  "estimatedRunwayArrival": _pair(in_ - taxi)})
    for key, moment in (("actualGateDeparture", out_), ("actualRunwayDeparture", out_ + taxi),
                        ("actualRunwayArrival", in_ - taxi), ("actualGateArrival", in_)):
        if now >= moment:
            times[key] = _pair(moment)
    return times


def _leg(truth: FlightTruth, index: int, leg: LegTruth, now: datetime,
         asked: tuple[str, int] | None) -> dict[str, Any]:
    shares = [(c[:2], c[2:]) for c in truth.codeshares]
    if asked is not None:
        shares.insert(0, (asked[0], str(asked[1])))
    delays = {} if leg.cancelled else {
        key: minutes for key, minutes in (
            ("departureGateDelayMinutes", leg.departure_delay_minutes),
            ("arrivalGateDelayMinutes", leg.arrival_delay_minutes)) if minutes > 0}
    resources = {"departureTerminal": leg.departure_terminal,
                 "departureGate": leg.departure_gate,
                 "arrivalTerminal": leg.arrival_terminal, "arrivalGate": leg.arrival_gate,
                 "baggage": leg.baggage_belt}
    equipment = {"scheduledEquipmentIataCode": leg.aircraft.iata,
                 "actualEquipmentIataCode": leg.aircraft.iata,
                 "tailNumber": leg.aircraft.registration}
    return {
        "flightId": zlib.crc32(f"{truth.designator}/{truth.day}/{index}".encode()),
        "carrierFsCode": fs_code(truth.carrier),
        "flightNumber": str(truth.number),     # a string, leading zeros dropped
        "departureAirportFsCode": leg.origin, "arrivalAirportFsCode": leg.destination,
        "departureDate": _pair(leg.scheduled_departure),
        "arrivalDate": _pair(leg.scheduled_arrival),
        "status": _status(leg, now),
        "schedule": {"flightType": "J", "serviceClasses": "RFJY", "restrictions": ""},
        "operationalTimes": _times(leg, now),
        "codeshares": [{"fsCode": fs_code(carrier), "flightNumber": number,
                        "relationship": "S" if asked and carrier == asked[0] else "L"}
                       for carrier, number in shares],
        "delays": delays,
        "flightDurations": {"scheduledBlockMinutes": int(
            (leg.scheduled_arrival - leg.scheduled_departure).total_seconds() // 60)},
        "airportResources": resources,
        "flightEquipment": equipment,
    }


def _appendix(truth: FlightTruth, asked: tuple[str, int] | None, now: datetime,
              ) -> dict[str, Any]:
    carriers = [truth.carrier, *(c[:2] for c in truth.codeshares),
                *([asked[0]] if asked else [])]
    airlines = []
    for carrier in dict.fromkeys(carriers):
        icao, name = airline(carrier)
        airlines.append({"fs": fs_code(carrier), "iata": carrier,
                         "icao": _ICAO.get(carrier, icao), "name": _NAMES.get(carrier, name),
                         "active": True})
    airports = []
    for code in dict.fromkeys(c for leg in truth.legs for c in (leg.origin, leg.destination)):
        row = airport(code) or {}
        zone = row.get("tz")
        offset = None
        if zone:
            delta = now.astimezone(ZoneInfo(zone)).utcoffset()
            offset = delta.total_seconds() / 3600 if delta is not None else None
        airports.append({"fs": code, "iata": code, "icao": row.get("icao"),
                         "name": row.get("name"), "city": row.get("city"),
                         "countryCode": row.get("country"), "timeZoneRegionName": zone,
                         "utcOffsetHours": offset, "active": True})
    equipment = [{"iata": leg.aircraft.iata, "name": leg.aircraft.name} for leg in truth.legs]
    return {"airlines": airlines, "airports": airports,
            "equipments": list({e["iata"]: e for e in equipment}.values())}


class Cirium(Provider):
    name: ClassVar[str] = "cirium"

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (Endpoint("GET", _PATH, "data", self.flight_status),)

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        app_id = request.header("appId") or request.query.get("appId")
        app_key = request.header("appKey") or request.query.get("appKey")
        if app_id != APP_ID or app_key != APP_KEY:
            return _error(403, "FORBIDDEN", "application is not active", request)
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        carrier = _iata_of(match["carrier"], request.query.get("codeType", "FS").upper())
        try:
            day = date(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            return None
        return None if carrier is None else Target(carrier, int(match["number"]), day)

    def flight_status(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        target = self.target(request, match)
        if target is None or target.day is None:
            return _error(400, "BAD_REQUEST", "Invalid carrier or date", request)
        operator = OPERATED_BY.get(target.carrier)
        asked = (target.carrier, target.number) if operator else None
        truth = ctx.truth(self.name, operator or target.carrier, target.number, target.day)
        request_echo = {
            "airline": {"requestedCode": match["carrier"], "fsCode": fs_code(target.carrier)},
            "flight": {"requested": match["number"], "interpreted": str(target.number)},
            "date": {"year": match["y"], "month": match["m"], "day": match["d"],
                     "interpreted": target.day.isoformat()},
            "utc": {"interpreted": False},
            "codeType": {"requested": request.query.get("codeType")},
            "extendedOptions": {"requested": request.query.get("extendedOptions")},
        }
        if truth is None:
            return Reply.json(200, {"request": request_echo, "appendix": {},
                                    "flightStatuses": []})
        now = ctx.now()
        return Reply.json(200, {
            "request": request_echo,
            "appendix": _appendix(truth, asked, now),
            "flightStatuses": [_leg(truth, i, leg, now, asked)
                               for i, leg in enumerate(truth.legs)],
        })

    # FlightStats has no 404 for an unknown flight: it answers with no flightStatuses.
    def not_found(self) -> Reply:
        return Reply.json(200, {"request": {}, "appendix": {}, "flightStatuses": []})

    def server_error(self, status: int) -> Reply:
        return _error(status, "SERVER_ERROR", "An internal error occurred", None)

    def rate_limited(self, retry_after: float) -> Reply:
        reply = _error(429, "RATE_LIMIT_EXCEEDED", "Request rate limit exceeded", None)
        return Reply(reply.status, reply.body, reply.content_type,
                     retry_after_header(retry_after))

    def quota_exhausted(self, request: Request) -> Reply:
        return _error(403, "QUOTA_EXCEEDED", "The request quota of this application is used up",
                      None)

    def token_expired(self) -> Reply:
        return _error(403, "FORBIDDEN", "application is not active", None)
