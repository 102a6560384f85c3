"""Reading AeroAPI deliver_alert bodies (providers/_fa_delivery.py): the sandbox's own
deliveries, ICAO and IATA airport strings, partial deliveries and malformed ones."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from flightsync.errors import WebhookPayloadError
from flightsync.models import FlightStatus
from flightsync.providers._fa_delivery import parse_delivery
from flightsync.sandbox._fa_alerts import payload


def _leg(**overrides: Any) -> dict[str, Any]:
    leg: dict[str, Any] = {
        "ident": "DLH400", "ident_icao": "DLH400", "ident_iata": "LH400",
        "fa_flight_id": "DLH400-1-schedule-0000", "operator_iata": "LH", "flight_number": "400",
        "origin": {"code": "EDDF"}, "destination": {"code": "KJFK"},
        "scheduled_out": "2026-03-02T08:00:00Z", "estimated_out": "2026-03-02T08:50:00Z",
        "scheduled_in": "2026-03-02T17:00:00Z", "gate_origin": "Z99", "cancelled": False,
        "diverted": False}
    leg.update(overrides)
    return leg


def test_a_sandbox_change_delivery_reads_as_a_leg() -> None:
    """The sandbox's deliver_alert body: flight LH400 on its local date, origin and
    destination as IATA (from the ICAO strings), the new gate and the delay."""
    body = json.dumps(payload(1001, "change", "departure gate is now Z99", _leg())).encode()
    delivery = parse_delivery(body)
    assert (delivery.alert_id, delivery.event_code) == (1001, "change")
    assert delivery.designator == "LH400" and delivery.day == date(2026, 3, 2)
    assert delivery.leg is not None
    assert (delivery.leg.origin, delivery.leg.destination) == ("FRA", "JFK")
    assert delivery.leg.departure_gate == "Z99"
    assert delivery.leg.estimated_departure == datetime(2026, 3, 2, 8, 50, tzinfo=UTC)
    assert delivery.leg.status is FlightStatus.DELAYED


def test_iata_strings_and_cancellation() -> None:
    leg = _leg(origin="FRA", destination="JFK", cancelled=True)
    delivery = parse_delivery(json.dumps(payload(7, "cancelled", "cancelled", leg)).encode())
    assert delivery.leg is not None and delivery.leg.origin == "FRA"
    assert delivery.leg.status is FlightStatus.CANCELLED


def test_a_partial_delivery_names_no_leg() -> None:
    """Only fa_flight_id (and an error): accepted, no leg to apply."""
    delivery = parse_delivery(json.dumps({
        "long_description": "x", "short_description": "x", "summary": "x",
        "event_code": "filed", "alert_id": 3,
        "flight": {"fa_flight_id": "DLH400-1-schedule-0000", "error": "unknown"}}).encode())
    assert delivery.leg is None and delivery.event_code == "filed"


@pytest.mark.parametrize(("body", "problem"), [
    (b"not json", "not JSON"),
    (b"[]", "JSON object"),
    (b'{"flight": {"fa_flight_id": "x"}}', "event_code"),
    (b'{"event_code": "change"}', "flight must be an object"),
    (b'{"event_code": "change", "flight": {}}', "fa_flight_id"),
    (b'{"event_code": "change", "alert_id": "7", "flight": {"fa_flight_id": "x"}}',
     "alert_id"),
    (json.dumps({"event_code": "change", "flight": _leg(origin=5)}).encode(), "airport code"),
    (json.dumps({"event_code": "change", "flight": _leg(
        origin="EDDF", destination="KJFK", scheduled_out="soon")}).encode(), "scheduled_out"),
])
def test_malformed_deliveries_are_refused(body: bytes, problem: str) -> None:
    with pytest.raises(WebhookPayloadError, match=problem):
        parse_delivery(body)
