"""FlightAware AeroAPI v4 (docs/PROVIDERS.md section 6.1): ``GET /aeroapi/flights/{ident}`` with an
``x-apikey`` header, ICAO idents and aircraft types, UTC times ``YYYY-MM-DDTHH:MM:SSZ``, one
flight object per leg in a ``start``/``end`` window (default: two days either side of now)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from flightsync.sandbox._base import (
    Context,
    Endpoint,
    Provider,
    Reply,
    Request,
    Target,
    retry_after_header,
)
from flightsync.sandbox._config import SandboxConfig
from flightsync.sandbox._fa_alerts import AlertBook, Delivery, changes, payload
from flightsync.sandbox._truth import FlightTruth, LegTruth, airline, airport, carrier_from_icao

API_KEY = "sandbox"
TAXI_MINUTES = 10
_DEFAULT_WINDOW = timedelta(days=2)
_MAX_WINDOW = timedelta(days=14)


def _error(status: int, title: str, reason: str, detail: str) -> Reply:
    return Reply.json(status, {"title": title, "reason": reason, "detail": detail,
                               "status": status})


def _t(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _airport(code: str) -> dict[str, Any]:
    row = airport(code) or {}
    icao = row.get("icao") or None
    return {"code": icao or code, "code_icao": icao, "code_iata": code, "code_lid": None,
            "timezone": row.get("tz"), "name": row.get("name"), "city": row.get("city"),
            "airport_info_url": f"/airports/{icao or code}"}


def _status(leg: LegTruth, now: datetime) -> str:
    if leg.cancelled:
        return "Cancelled"
    late = "Delayed" if leg.departure_delay_minutes >= 15 else "On Time"
    if leg.arrived(now):
        return "Arrived / Gate Arrival"
    if leg.departed(now):
        return f"En Route / {late}"
    return "Scheduled / Delayed" if late == "Delayed" else "Scheduled"


def _leg(truth: FlightTruth, index: int, leg: LegTruth, now: datetime) -> dict[str, Any]:
    icao = airline(truth.carrier)[0]
    taxi = timedelta(minutes=TAXI_MINUTES)
    out_, in_ = leg.estimated_departure, leg.estimated_arrival
    live = not leg.cancelled
    departed, arrived = leg.departed(now), leg.arrived(now)
    total = (in_ - out_).total_seconds()
    progress = 100 if arrived else 0 if not departed else int(
        100 * (now - out_).total_seconds() / total)
    ident_icao = f"{icao}{truth.number}" if icao else None
    first = truth.legs[0].scheduled_departure
    return {
        "ident": ident_icao or truth.designator, "ident_icao": ident_icao,
        "ident_iata": truth.designator,
        "fa_flight_id": f"{ident_icao or truth.designator}-{int(first.timestamp())}"
                        f"-schedule-{index:04d}",
        "operator": icao or truth.carrier, "operator_icao": icao,
        "operator_iata": truth.carrier, "flight_number": str(truth.number),
        "registration": leg.aircraft.registration, "atc_ident": None,
        "inbound_fa_flight_id": None,
        "codeshares": [f"{airline(c[:2])[0] or c[:2]}{c[2:]}" for c in truth.codeshares],
        "codeshares_iata": list(truth.codeshares),
        "blocked": False, "diverted": False, "cancelled": leg.cancelled,
        "position_only": False,
        "origin": _airport(leg.origin), "destination": _airport(leg.destination),
        "departure_delay": leg.departure_delay_minutes * 60 if live else None,
        "arrival_delay": leg.arrival_delay_minutes * 60 if live else None,
        "filed_ete": int((leg.scheduled_arrival - leg.scheduled_departure).total_seconds()),
        "scheduled_out": _t(leg.scheduled_departure),
        "estimated_out": _t(out_) if live else None,
        "actual_out": _t(out_) if departed else None,
        "scheduled_off": _t(leg.scheduled_departure + taxi),
        "estimated_off": _t(out_ + taxi) if live else None,
        "actual_off": _t(out_ + taxi) if live and now >= out_ + taxi else None,
        "scheduled_on": _t(leg.scheduled_arrival - taxi),
        "estimated_on": _t(in_ - taxi) if live else None,
        "actual_on": _t(in_ - taxi) if live and now >= in_ - taxi else None,
        "scheduled_in": _t(leg.scheduled_arrival),
        "estimated_in": _t(in_) if live else None,
        "actual_in": _t(in_) if arrived else None,
        "progress_percent": progress if live else 0,
        "status": _status(leg, now),
        "aircraft_type": leg.aircraft.icao,
        "route_distance": None, "filed_airspeed": None, "filed_altitude": None, "route": None,
        "baggage_claim": leg.baggage_belt,
        "gate_origin": leg.departure_gate, "gate_destination": leg.arrival_gate,
        "terminal_origin": leg.departure_terminal,
        "terminal_destination": leg.arrival_terminal,
        "type": "Airline",
    }


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def ident_flight(ident: str) -> tuple[str, int] | None:
    """(IATA carrier, number) of an ident (``DLH400`` or ``LH400``), None when unknown."""
    ident = ident.upper()
    found = re.fullmatch(r"([A-Z]{3})(\d{1,4})", ident)
    carrier = carrier_from_icao(found[1]) if found else None
    if found is None or carrier is None:
        found = re.fullmatch(r"([A-Z0-9]{2})(\d{1,4})", ident)
        carrier = found[1] if found else None
    if found is None or carrier is None:
        return None
    return carrier, int(found[2])


class FlightAware(Provider):
    name: ClassVar[str] = "flightaware"

    def __init__(self) -> None:
        self.alerts = AlertBook()

    def endpoints(self) -> tuple[Endpoint, ...]:
        book = self.alerts
        alerts, endpoint = r"/aeroapi/alerts", r"/aeroapi/alerts/endpoint"
        one = re.compile(r"/aeroapi/alerts/(?P<id>\d{1,12})")
        return (Endpoint("GET", re.compile(r"/aeroapi/flights/(?P<ident>[^/]+)"), "data",
                         self.flights),
                Endpoint("PUT", re.compile(endpoint), "alerts", book.put_endpoint),
                Endpoint("GET", re.compile(endpoint), "alerts", book.get_endpoint),
                Endpoint("DELETE", re.compile(endpoint), "alerts", book.delete_endpoint),
                Endpoint("POST", re.compile(alerts), "alerts", book.create),
                Endpoint("GET", re.compile(alerts), "alerts", book.list),
                Endpoint("GET", one, "alerts", book.get),
                Endpoint("DELETE", one, "alerts", book.delete))

    def alert_deliveries(self, ctx: Context, before: SandboxConfig, after: SandboxConfig,
                         ) -> list[Delivery]:
        """The deliveries a change of scenario from ``before`` to ``after`` calls for: each
        watched leg rendered under both, compared as AeroAPI would (docs/SANDBOX.md)."""
        now = datetime.now(UTC)
        out: list[Delivery] = []
        for alert, url, day in self.alerts.watched():
            flight = ident_flight(str(alert.get("ident") or ""))
            if flight is None:
                continue
            old = ctx.truth_under(before, self.name, flight[0], flight[1], day)
            new = ctx.truth_under(after, self.name, flight[0], flight[1], day)
            if old is None or new is None:
                continue
            for index in range(min(len(old.legs), len(new.legs))):
                was = _leg(old, index, old.legs[index], before.now or now)
                is_ = _leg(new, index, new.legs[index], after.now or now)
                for code, what in changes(was, is_, alert["events"]):
                    out.append(Delivery(alert["id"], code, url,
                                        payload(alert["id"], code, what, is_)))
        return out

    def authenticate(self, request: Request, ctx: Context) -> Reply | None:
        if request.header("x-apikey") != API_KEY:
            return _error(401, "Invalid API key", "UNAUTHORIZED",
                          "The x-apikey header is missing or not a valid key")
        return None

    def target(self, request: Request, match: re.Match[str]) -> Target | None:
        if "ident" not in match.groupdict():
            return None  # alert management names no flight
        flight = ident_flight(match["ident"])
        if flight is None:
            return None
        start = _when(request.query.get("start"))
        return Target(flight[0], flight[1], None if start is None else start.date())

    def flights(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        now = ctx.now()
        start = _when(request.query.get("start")) or now - _DEFAULT_WINDOW
        end = _when(request.query.get("end")) or now + _DEFAULT_WINDOW
        if end <= start or end - start > _MAX_WINDOW:
            return _error(400, "Invalid argument", "INVALID_ARGUMENT",
                          "end must be after start, at most 14 days apart")
        target = self.target(request, match)
        found: list[tuple[datetime, dict[str, Any]]] = []
        if target is not None:
            day: date = start.date() - timedelta(days=1)
            while day <= end.date() + timedelta(days=1):
                truth = ctx.truth(self.name, target.carrier, target.number, day)
                for index, leg in enumerate(truth.legs if truth is not None else ()):
                    if truth is not None and start <= leg.scheduled_departure < end:
                        item = _leg(truth, index, leg, now)
                        found.append((leg.scheduled_departure, item))
                day += timedelta(days=1)
        # AeroAPI lists the latest flights first.
        found.sort(key=lambda pair: pair[0], reverse=True)
        return Reply.json(200, {"flights": [item for _, item in found], "links": None,
                                "num_pages": 1})

    def server_error(self, status: int) -> Reply:
        return _error(status, "Service unavailable", "SERVICE_UNAVAILABLE",
                      "The service is temporarily unavailable")

    def rate_limited(self, retry_after: float) -> Reply:
        reply = _error(429, "Too many requests", "TOO_MANY_REQUESTS",
                       "Rate limit for your account tier exceeded")
        return Reply(reply.status, reply.body, reply.content_type,
                     retry_after_header(retry_after))

    def not_found(self) -> Reply:
        return _error(404, "Not found", "NOT_FOUND", "No flights found for the ident")

    def token_expired(self) -> Reply:
        return _error(401, "Invalid API key", "UNAUTHORIZED",
                      "The x-apikey header is missing or not a valid key")
