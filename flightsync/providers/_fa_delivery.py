"""FlightAware AeroAPI alert deliveries (docs/PROVIDERS.md section 6.1.1, ``deliver_alert``).

A delivery is a JSON object with ``long_description``, ``short_description``, ``summary``,
``event_code``, ``alert_id`` and a ``flight`` object shaped like one of ``/flights``' flights
except that its airports are plain code strings (ICAO when the airport has one, as
AeroAPI's ``code``), it has no status text and no time zones. It is read here into one leg as
the FlightAware adapter reads a flight (same fields, same status rules), so the observation it
becomes means what a poll would have meant.

A partial delivery (only ``fa_flight_id``, maybe ``error``) names no leg: ``leg`` is None.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from flightsync.errors import ProviderBadResponse, WebhookPayloadError
from flightsync.models import Leg
from flightsync.providers._airports import iata_for_icao
from flightsync.providers.flightaware import _parse_flight

_NAME = "flightaware"
_TEXT_KEYS = ("long_description", "short_description", "summary", "event_code")
_DESIGNATOR = re.compile(r"^[A-Z0-9]{2}[0-9]{1,4}[A-Z]?$")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery as flightsync reads it."""

    alert_id: int | None
    event_code: str
    summary: str | None
    designator: str | None  # IATA form (LH400) when the delivery names one
    day: date | None        # the leg's scheduled departure date at its origin
    leg: Leg | None         # None: a partial delivery that names no leg


def parse_delivery(body: bytes) -> Delivery:
    """The delivery in ``body``; WebhookPayloadError naming the problem when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _bad("the body is not JSON") from None
    if not isinstance(data, dict):
        raise _bad("the body must be a JSON object")
    for key in _TEXT_KEYS:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _bad(f"{key} must be a string")
    code = data.get("event_code")
    if not isinstance(code, str) or not code.strip():
        raise _bad("event_code is required")
    alert_id = data.get("alert_id")
    if alert_id is not None and (isinstance(alert_id, bool) or not isinstance(alert_id, int)
                                 or alert_id < 1):
        raise _bad("alert_id must be a positive integer")
    flight = data.get("flight")
    if not isinstance(flight, dict):
        raise _bad("flight must be an object")
    if not isinstance(flight.get("fa_flight_id"), str):
        raise _bad("flight.fa_flight_id is required")
    summary = data.get("summary")
    partial = Delivery(alert_id=alert_id, event_code=code.strip()[:40],
                       summary=summary[:200] if isinstance(summary, str) else None,
                       designator=_designator(flight), day=None, leg=None)
    if flight.get("scheduled_out") is None and flight.get("scheduled_off") is None:
        return partial  # nothing to place the leg by
    origin = _iata(flight.get("origin"), "flight.origin")
    if origin is None:
        return partial
    shaped = {**flight, "origin": {"code_iata": origin},
              "destination": {"code_iata": _iata(flight.get("destination"),
                                                 "flight.destination")}}
    shaped.pop("status", None)  # the deliver_alert flight has none; a stray one is ignored
    try:
        parsed = _parse_flight(shaped)
    except ProviderBadResponse as exc:
        raise _bad(exc.message.removeprefix(f"{_NAME}: ")) from None
    if parsed is None:
        return partial
    leg, day, _ = parsed
    return Delivery(alert_id=alert_id, event_code=partial.event_code, summary=partial.summary,
                    designator=partial.designator, day=day, leg=leg)


def _designator(flight: dict[str, Any]) -> str | None:
    ident = flight.get("ident_iata")
    if isinstance(ident, str) and _DESIGNATOR.fullmatch(ident.strip().upper()):
        return ident.strip().upper()
    carrier, number = flight.get("operator_iata"), flight.get("flight_number")
    if isinstance(carrier, str) and isinstance(number, str | int):
        text = f"{carrier.strip().upper()}{str(number).strip()}"
        if _DESIGNATOR.fullmatch(text):
            return text
    return None


def _iata(value: Any, what: str) -> str | None:
    """An airport code string as IATA: three letters as given, four looked up as ICAO."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{what} must be an airport code string")
    code = value.strip().upper()
    if re.fullmatch(r"[A-Z]{3}", code):
        return code
    if re.fullmatch(r"[A-Z0-9]{4}", code):
        return iata_for_icao(code)
    raise _bad(f"{what} is not an airport code")


def _bad(message: str) -> WebhookPayloadError:
    return WebhookPayloadError(f"flightaware delivery: {message}")


__all__ = ["Delivery", "parse_delivery"]
