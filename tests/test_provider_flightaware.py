"""FlightAware AeroAPI v4 adapter: request shape, date and journey selection, statuses, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from structlog.testing import capture_logs

from flightsync.config import ProviderSettings
from flightsync.errors import (
    ConfigError,
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers.flightaware import FlightAwareAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "flightaware"
BASE = "https://aeroapi.flightaware.com/aeroapi"
KEY = "fa-test-key-456"

Serve = Callable[..., None]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def adapter() -> FlightAwareAdapter:
    client = httpx.Client(base_url=BASE, timeout=5)
    return FlightAwareAdapter(client, ProviderSettings(credentials={"api_key": KEY}))


@pytest.fixture
def fa_api(httpx_mock: HTTPXMock) -> Serve:
    """Factory: answer the next AeroAPI call with a fixture file (or raw bytes) and status."""

    def serve(fixture: str | None = None, *, status: int = 200, content: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        body = (FIXTURES / fixture).read_bytes() if fixture else (content or b"")
        httpx_mock.add_response(status_code=status, content=body, headers=headers)

    return serve


def test_request_sends_designator_window_and_api_key(
        adapter: FlightAwareAdapter, fa_api: Serve, httpx_mock: HTTPXMock) -> None:
    """GET /aeroapi/flights/{IATA designator} with ident_type=designator, a start/end window
    around the date (a day either side included) and the x-apikey header."""
    fa_api("ba117_three_days.json")
    adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    request = httpx_mock.get_request()
    assert request is not None
    assert request.method == "GET"
    assert request.url.host == "aeroapi.flightaware.com"
    assert request.url.path == "/aeroapi/flights/BA117"
    assert dict(request.url.params) == {
        "ident_type": "designator",
        "start": "2026-07-13T10:00:00Z",   # 00:00 at UTC+14 on the day before
        "end": "2026-07-17T12:00:00Z",     # 24:00 at UTC-12 on the day after
    }
    assert request.headers["x-apikey"] == KEY


def test_suffix_and_icao_carrier_in_ident(
        adapter: FlightAwareAdapter, fa_api: Serve, httpx_mock: HTTPXMock) -> None:
    """An ICAO carrier (one without its own adapter, so the parser keeps it) is sent as
    given; the operational suffix is not part of an ident."""
    fa_api("empty.json")
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("UAL117A", "2026-07-15"))
    request = httpx_mock.get_request()
    assert request is not None and request.url.path == "/aeroapi/flights/UAL117"


def test_picks_the_flight_of_the_date_and_maps_every_field(
        adapter: FlightAwareAdapter, fa_api: Serve) -> None:
    """Of three days of BA117, the 15 July one is returned: en route with runway take-off is
    airborne; gate, runway fallbacks, gates, terminals, ICAO type, codeshares, operator and
    the last position time are carried over."""
    fa_api("ba117_three_days.json")
    obs = adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert obs.provider == "flightaware"
    (leg,) = obs.legs
    assert (leg.origin, leg.destination) == ("LHR", "JFK")
    assert leg.status is FlightStatus.AIRBORNE
    assert leg.scheduled_departure == utc("2026-07-15T07:25")
    assert leg.estimated_departure == utc("2026-07-15T07:41")
    assert leg.actual_departure == utc("2026-07-15T07:41")
    assert leg.scheduled_arrival == utc("2026-07-15T15:05")
    assert leg.estimated_arrival == utc("2026-07-15T15:12")
    assert leg.actual_arrival is None
    assert (leg.departure_terminal, leg.departure_gate) == ("5", "A10")
    assert (leg.arrival_terminal, leg.arrival_gate) == ("7", "6")
    assert leg.baggage_belt is None
    assert leg.aircraft_type == "A35K"
    assert leg.aircraft_registration == "GXWBA"
    assert leg.codeshares == ("AA6143", "IB4218")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("BA", 117)
    assert obs.updated_at == datetime(2026, 7, 15, 10, 31, 7, tzinfo=UTC)
    assert obs.raw == (FIXTURES / "ba117_three_days.json").read_text()


@pytest.mark.parametrize(
    ("day", "status", "departure", "arrival"),
    [
        ("2026-07-14", FlightStatus.ARRIVED, "2026-07-14T07:22", "2026-07-14T14:52"),
        ("2026-07-16", FlightStatus.SCHEDULED, None, None),
    ],
)
def test_other_days_statuses_from_actual_times(
        adapter: FlightAwareAdapter, fa_api: Serve, day: str, status: FlightStatus,
        departure: str | None, arrival: str | None) -> None:
    """actual_in set means arrived (gate times as actuals); no actual time and no delay
    means scheduled."""
    fa_api("ba117_three_days.json")
    (leg,) = adapter.fetch(FlightQuery.parse("BA117", day)).legs
    assert leg.status is status
    assert leg.actual_departure == (utc(departure) if departure else None)
    assert leg.actual_arrival == (utc(arrival) if arrival else None)
    assert leg.scheduled_departure is not None
    assert leg.scheduled_departure.date().isoformat() == day


def test_date_outside_the_answer_is_not_found(adapter: FlightAwareAdapter,
                                              fa_api: Serve) -> None:
    """No flight of the ident on that date: FlightNotFound, not held against the provider."""
    fa_api("ba117_three_days.json")
    with pytest.raises(FlightNotFound) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-17"))
    assert info.value.counts_for_breaker is False


@pytest.mark.parametrize(
    ("day", "scheduled_out"),
    [("2026-07-15", "2026-07-16T02:30"), ("2026-07-16", "2026-07-17T02:30")],
)
def test_local_date_at_origin_not_utc_date(adapter: FlightAwareAdapter, fa_api: Serve,
                                           day: str, scheduled_out: str) -> None:
    """A 22:30 JFK departure belongs to its New York date although its UTC date is the next
    day; without origin.timezone the airport's zone is used."""
    fa_api("ba112_evening.json")
    (leg,) = adapter.fetch(FlightQuery.parse("BA112", day)).legs
    assert leg.origin == "JFK"
    assert leg.scheduled_departure == utc(scheduled_out)


def test_multi_leg_journey_keeps_legs_after_local_midnight(
        adapter: FlightAwareAdapter, fa_api: Serve) -> None:
    """KL419 AMS-RUH-DXB-AMS: the three flights of the 25th are three legs in order, the DXB
    leg included although it leaves on the 26th in Dubai; the previous day's DXB leg (which
    leaves on the 25th in Dubai) is not. Per leg: arrived, airborne, delayed."""
    fa_api("kl419_multi_leg.json")
    obs = adapter.fetch(FlightQuery.parse("KL419", "2026-02-25"))
    assert [(leg.origin, leg.destination) for leg in obs.legs] == [
        ("AMS", "RUH"), ("RUH", "DXB"), ("DXB", "AMS")]
    assert [leg.scheduled_departure for leg in obs.legs] == [
        utc("2026-02-25T12:55"), utc("2026-02-25T19:40"), utc("2026-02-25T23:35")]
    assert [leg.status for leg in obs.legs] == [
        FlightStatus.ARRIVED, FlightStatus.AIRBORNE, FlightStatus.DELAYED]
    assert obs.legs[2].estimated_departure == utc("2026-02-26T00:05")
    assert all(leg.codeshares == ("DL9443",) for leg in obs.legs)


def test_previous_day_journey_is_whole(adapter: FlightAwareAdapter, fa_api: Serve) -> None:
    """The 24th's journey is its own three legs, all arrived."""
    fa_api("kl419_multi_leg.json")
    obs = adapter.fetch(FlightQuery.parse("KL419", "2026-02-24"))
    assert [leg.scheduled_departure for leg in obs.legs] == [
        utc("2026-02-24T12:55"), utc("2026-02-24T19:40"), utc("2026-02-24T23:35")]
    assert {leg.status for leg in obs.legs} == {FlightStatus.ARRIVED}


@pytest.mark.parametrize(
    ("day", "route"),
    [
        ("2026-11-23", [("WAW", "AMS")]),
        ("2026-11-24", [("AMS", "ATH"), ("ATH", "BCN"), ("BCN", "AMS")]),
        ("2026-11-25", [("AMS", "HEL")]),
    ],
)
def test_overnight_stop_at_a_hub_starts_a_new_journey(
        adapter: FlightAwareAdapter, fa_api: Serve, day: str,
        route: list[tuple[str, str]]) -> None:
    """A day's flights that end at the airport where the next day's start are not chained
    across the night: each date gets its own legs only."""
    fa_api("kl419_hub_days.json")
    obs = adapter.fetch(FlightQuery.parse("KL419", day))
    assert [(leg.origin, leg.destination) for leg in obs.legs] == route


@pytest.mark.parametrize(
    ("day", "route"),
    [
        ("2026-11-22", [("AMS", "WAW"), ("WAW", "TLV"), ("TLV", "AMS")]),
        ("2026-11-23", [("AMS", "PRG"), ("PRG", "WAW"), ("WAW", "AMS")]),
    ],
)
def test_overlapping_days_do_not_absorb_each_other(
        adapter: FlightAwareAdapter, fa_api: Serve, day: str,
        route: list[tuple[str, str]]) -> None:
    """Journeys of adjacent days that overlap in time, with a window that cuts into an
    earlier one, stay apart: a journey never leaves the same airport twice, and the TLV leg
    after midnight stays with the 22nd."""
    fa_api("kl419_overlapping_days.json")
    obs = adapter.fetch(FlightQuery.parse("KL419", day))
    assert [(leg.origin, leg.destination) for leg in obs.legs] == route


@pytest.mark.parametrize(
    ("day", "status"),
    [("2026-03-01", FlightStatus.CANCELLED), ("2026-03-02", FlightStatus.DIVERTED)],
)
def test_cancelled_and_diverted_booleans_win(adapter: FlightAwareAdapter, fa_api: Serve,
                                             day: str, status: FlightStatus) -> None:
    """cancelled=true is cancelled; diverted=true is diverted even with runway times set."""
    fa_api("ua901_cancelled_diverted.json")
    (leg,) = adapter.fetch(FlightQuery.parse("UA901", day)).legs
    assert leg.status is status
    assert leg.origin == "SFO"


def _with(change: Callable[[dict[str, Any]], None], fixture: str = "ba117_three_days.json",
          ) -> bytes:
    body = json.loads((FIXTURES / fixture).read_text())
    for flight in body["flights"]:
        change(flight)
    return json.dumps(body).encode()


def _clear_actuals(flight: dict[str, Any]) -> None:
    for key in list(flight):
        if key.startswith("actual_"):
            flight[key] = None


@pytest.mark.parametrize(
    ("text", "delay", "status"),
    [
        ("Scheduled", 0, FlightStatus.SCHEDULED),
        ("Scheduled / Delayed", 900, FlightStatus.DELAYED),
        ("Scheduled", 600, FlightStatus.DELAYED),
        ("En Route / On Time", 0, FlightStatus.AIRBORNE),
        ("Landed / Taxiing", 0, FlightStatus.LANDED),
    ],
)
def test_status_text_and_delay_without_actual_times(
        adapter: FlightAwareAdapter, fa_api: Serve, text: str, delay: int,
        status: FlightStatus) -> None:
    """With no actual_* time, the status text decides progress, then departure_delay > 0
    means delayed."""

    def change(flight: dict[str, Any]) -> None:
        _clear_actuals(flight)
        flight["estimated_out"] = flight["scheduled_out"]
        flight["status"] = text
        flight["departure_delay"] = delay

    fa_api(content=_with(change))
    (leg,) = adapter.fetch(FlightQuery.parse("BA117", "2026-07-15")).legs
    assert leg.status is status


def test_unknown_status_text_is_logged(adapter: FlightAwareAdapter, fa_api: Serve) -> None:
    """Unrecognized status text is logged and the flight falls back to scheduled."""

    def change(flight: dict[str, Any]) -> None:
        _clear_actuals(flight)
        flight["estimated_out"] = flight["scheduled_out"]
        flight["departure_delay"] = 0
        flight["status"] = "Zzq"

    fa_api(content=_with(change))
    with capture_logs() as logs:
        (leg,) = adapter.fetch(FlightQuery.parse("BA117", "2026-07-15")).legs
    assert leg.status is FlightStatus.SCHEDULED
    assert any(e["event"] == "provider.status.unknown" and e["code"] == "Zzq" for e in logs)


def test_flight_without_iata_origin_is_skipped(adapter: FlightAwareAdapter,
                                               fa_api: Serve) -> None:
    """A flight that cannot be placed (no IATA origin) is skipped, leaving not found."""

    def change(flight: dict[str, Any]) -> None:
        flight["origin"]["code_iata"] = None

    fa_api(content=_with(change))
    with capture_logs() as logs, pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert any(e["event"] == "provider.flight.skipped" for e in logs)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, ProviderUnavailable),
        (502, ProviderUnavailable),
        (401, ProviderAuthError),
        (403, ProviderAuthError),
        (404, FlightNotFound),
        (400, ProviderRequestRejected),
        (405, ProviderRequestRejected),
        (429, ProviderRateLimited),
    ],
)
def test_http_status_maps_to_error(adapter: FlightAwareAdapter, fa_api: Serve, status: int,
                                   error: type[ProviderError]) -> None:
    """Each HTTP fault class lands on its ProviderError class with the status, no key shown."""
    fa_api(status=status, content=b'{"title": "x", "reason": "y", "detail": "z"}')
    with pytest.raises(error) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert info.value.provider == "flightaware"
    assert info.value.status == status
    assert KEY not in str(info.value)


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), (None, None)])
def test_rate_limit_retry_after(adapter: FlightAwareAdapter, fa_api: Serve,
                                header: str | None, seconds: float | None) -> None:
    """429 carries Retry-After seconds when given, None otherwise; it is retryable."""
    fa_api(status=429, headers={"Retry-After": header} if header else None)
    with pytest.raises(ProviderRateLimited) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert info.value.retry_after == seconds
    assert info.value.retryable


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ReadTimeout("read timed out"), ProviderTimeout),
        (httpx.ConnectError("connection refused"), ProviderUnavailable),
        (httpx.ReadError("connection reset"), ProviderUnavailable),
    ],
)
def test_transport_failure_maps_to_error(adapter: FlightAwareAdapter, httpx_mock: HTTPXMock,
                                         exc: Exception, error: type[ProviderError]) -> None:
    """Timeouts and connection failures become retryable ProviderErrors, cause chained."""
    httpx_mock.add_exception(exc)
    with pytest.raises(error) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert info.value.__cause__ is exc
    assert info.value.retryable


def test_malformed_json_is_bad_response(adapter: FlightAwareAdapter, fa_api: Serve) -> None:
    """A truncated body is ProviderBadResponse chained to the decode error."""
    fa_api(content=b'{"flights": [{"ident": ')
    with pytest.raises(ProviderBadResponse) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert isinstance(info.value.__cause__, ValueError)


def test_empty_flights_is_not_found(adapter: FlightAwareAdapter, fa_api: Serve) -> None:
    """An empty flights array is FlightNotFound."""
    fa_api("empty.json")
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ((FIXTURES / "wrong_shape.json").read_bytes(), "flights"),
        (b'{"flights": ["BAW117"]}', "non-object"),
        (_with(lambda f: f.update(scheduled_out="2026-07-15 07:25")), "scheduled_out"),
        (_with(lambda f: f.update(scheduled_out=1784100000)), "scheduled_out"),
        (_with(lambda f: f.update(cancelled="false")), "cancelled"),
        (_with(lambda f: f.update(codeshares_iata="AA6143")), "codeshares_iata"),
        (_with(lambda f: f.update(origin="EGLL")), "origin"),
        (_with(lambda f: f.update(departure_delay="960")), "departure_delay"),
    ],
    ids=["other-provider-shape", "flight-string", "time-no-offset", "time-number",
         "bool-as-string", "codeshares-string", "origin-string", "delay-string"],
)
def test_wrong_shape_is_bad_response_naming_the_cause(
        adapter: FlightAwareAdapter, fa_api: Serve, content: bytes, cause: str) -> None:
    """Valid JSON that violates the documented shape is ProviderBadResponse naming what."""
    fa_api(content=content)
    with pytest.raises(ProviderBadResponse) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert cause in str(info.value)


def test_missing_key_is_config_error() -> None:
    """Constructing the adapter without an API key says which variable to set."""
    with pytest.raises(ConfigError, match="FLIGHTAWARE_API_KEY"):
        FlightAwareAdapter(httpx.Client(base_url=BASE), ProviderSettings())


def test_class_attributes_describe_the_provider() -> None:
    """Covers every carrier at priority 20 with one API key, no OAuth."""
    assert FlightAwareAdapter.name == "flightaware"
    assert FlightAwareAdapter.default_carriers is None
    assert FlightAwareAdapter.default_priority == 20
    assert FlightAwareAdapter.credential_env == ("FLIGHTAWARE_API_KEY",)
    assert FlightAwareAdapter.uses_oauth is False
    assert FlightAwareAdapter.default_base_url == "https://aeroapi.flightaware.com/aeroapi"
