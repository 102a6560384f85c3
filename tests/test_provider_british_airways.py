"""British Airways legacy v1 adapter: request shape, parsing of the documented body, errors."""

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
from flightsync.providers.british_airways import BritishAirwaysAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "british_airways"
BASE = "https://api.ba.com"
KEY = "ba-test-key-123"

Serve = Callable[..., None]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def adapter() -> BritishAirwaysAdapter:
    client = httpx.Client(base_url=BASE, timeout=5)
    return BritishAirwaysAdapter(client, ProviderSettings(credentials={"api_key": KEY}))


@pytest.fixture
def ba_api(httpx_mock: HTTPXMock) -> Serve:
    """Factory: answer the next BA call with a fixture file (or raw bytes) and status."""

    def serve(fixture: str | None = None, *, status: int = 200, content: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        body = (FIXTURES / fixture).read_bytes() if fixture else (content or b"")
        httpx_mock.add_response(status_code=status, content=body, headers=headers)

    return serve


def test_request_uses_matrix_parameters_and_client_key(
        adapter: BritishAirwaysAdapter, ba_api: Serve, httpx_mock: HTTPXMock) -> None:
    """One GET to /rest-v1/v1/flights with the date and flight number as matrix parameters
    and the key in the client-key header, no query string."""
    ba_api("ba117_departed.json")
    adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    request = httpx_mock.get_request()
    assert request is not None
    assert request.method == "GET"
    assert request.url.host == "api.ba.com"
    assert request.url.raw_path == (
        b"/rest-v1/v1/flights;scheduledDepartureDate=2026-07-15;flightNumber=BA117")
    assert request.url.query == b""
    assert request.headers["client-key"] == KEY
    assert request.headers["accept"] == "application/json"


def test_collapsed_objects_and_numbers_parse_into_one_leg(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """Flight and Sector given as single objects, terminals and aircraft type as numbers,
    local times placed in each airport's zone (LHR BST, JFK EDT) and stored as UTC."""
    ba_api("ba117_departed.json")
    obs = adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert obs.provider == "british_airways"
    assert len(obs.legs) == 1
    leg = obs.legs[0]
    assert (leg.origin, leg.destination) == ("LHR", "JFK")
    assert leg.status is FlightStatus.DEPARTED
    assert leg.scheduled_departure == utc("2026-07-15T07:25")  # 08:25 BST
    assert leg.actual_departure == utc("2026-07-15T07:41")     # reported, after departure
    assert leg.estimated_departure is None
    assert leg.scheduled_arrival == utc("2026-07-15T15:05")    # 11:05 EDT
    assert leg.estimated_arrival == utc("2026-07-15T15:12")    # reported, not yet landed
    assert leg.actual_arrival is None
    assert (leg.departure_terminal, leg.arrival_terminal) == ("5", "7")
    assert leg.departure_gate == "A10"
    assert leg.aircraft_type == "388"
    assert (leg.operating_carrier, leg.operating_flight_number) == ("BA", 117)
    assert obs.updated_at == datetime(2026, 7, 15, 7, 50, 12, tzinfo=UTC)
    assert obs.raw == (FIXTURES / "ba117_departed.json").read_text()
    for value in (leg.scheduled_departure, leg.scheduled_arrival, obs.fetched_at):
        assert value is not None and value.utcoffset() is not None


def test_sector_array_gives_legs_in_order_on_the_first_origin_date(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """Two sectors (LHR-SIN-SYD) become two legs; the second one leaves the next local day
    and still belongs to the flight; zero-padded string flight numbers match; a delayed
    sector's reported time is its estimate."""
    ba_api("ba15_two_sectors.json")
    obs = adapter.fetch(FlightQuery.parse("BA15", "2026-01-20"))
    assert [(leg.origin, leg.destination) for leg in obs.legs] == [("LHR", "SIN"),
                                                                    ("SIN", "SYD")]
    first, second = obs.legs
    assert first.status is FlightStatus.DELAYED
    assert first.scheduled_departure == utc("2026-01-20T21:15")   # GMT
    assert first.estimated_departure == utc("2026-01-20T21:55")
    assert first.actual_departure is None
    assert first.scheduled_arrival == utc("2026-01-21T09:50")     # 17:50 SGT (+8)
    assert first.estimated_arrival == utc("2026-01-21T10:20")
    assert first.departure_terminal == "5" and first.aircraft_type == "77W"
    assert first.departure_gate == "B36"
    assert second.status is FlightStatus.SCHEDULED
    assert second.scheduled_departure == utc("2026-01-21T11:25")  # 19:25 SGT
    assert second.scheduled_arrival == utc("2026-01-21T18:40")    # 05:40 AEDT (+11)
    assert second.estimated_departure is None and second.departure_gate is None
    assert second.departure_terminal == "1"
    # No offset on DataLastUpdated and no airport to place it: not guessed.
    assert obs.updated_at is None


def test_cancelled_flight_operated_by_cityflyer(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """A cancelled status maps to cancelled; another operating carrier is kept and the
    operating flight number is left unknown; null terminals stay None."""
    ba_api("ba8451_cancelled_cityflyer.json")
    obs = adapter.fetch(FlightQuery.parse("BA8451", "2026-03-10"))
    (leg,) = obs.legs
    assert leg.status is FlightStatus.CANCELLED
    assert leg.operating_carrier == "CJ"
    assert leg.operating_flight_number is None
    assert leg.departure_terminal is None and leg.arrival_terminal is None
    assert leg.scheduled_departure == utc("2026-03-10T07:05")   # LCY, GMT
    assert obs.updated_at == utc("2026-03-10T05:58")


def test_date_other_than_the_first_sector_local_date_is_not_found(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """A flight whose first sector leaves on another local date is not the one asked for."""
    ba_api("ba15_two_sectors.json")
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("BA15", "2026-01-21"))


def test_other_flight_number_in_body_is_not_found(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """Flights in the body that are not the queried number are ignored."""
    ba_api("ba117_departed.json")
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("BA118", "2026-07-15"))


def test_response_without_flight_is_not_found(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """A FlightsResponse with no Flight element is an empty result."""
    ba_api("no_flights.json")
    with pytest.raises(FlightNotFound) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert info.value.counts_for_breaker is False


def test_unknown_status_word_is_unknown_and_logged(
        adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """A status outside the known words maps to unknown and emits a log event with the code."""
    body = json.loads((FIXTURES / "ba8451_cancelled_cityflyer.json").read_text())
    sector = body["FlightsResponse"]["Flight"]["Sector"]
    sector["DepartureStatus"] = sector["ArrivalStatus"] = "Zzq"
    ba_api(content=json.dumps(body).encode())
    with capture_logs() as logs:
        obs = adapter.fetch(FlightQuery.parse("BA8451", "2026-03-10"))
    assert obs.legs[0].status is FlightStatus.UNKNOWN
    events = [e for e in logs if e["event"] == "provider.status.unknown"]
    assert events and events[0]["code"] == "Zzq" and events[0]["provider"] == "british_airways"


def _mutated(change: Callable[[dict[str, Any]], None]) -> bytes:
    body = json.loads((FIXTURES / "ba117_departed.json").read_text())
    change(body["FlightsResponse"]["Flight"]["Sector"])
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("departure", "arrival", "gate", "expected"),
    [
        ("On time", "On time", "Open", FlightStatus.SCHEDULED),
        ("On time", "On time", "Closed", FlightStatus.BOARDING),
        ("Boarding", "On time", None, FlightStatus.BOARDING),
        ("Delayed", "Delayed", "Open", FlightStatus.DELAYED),
        ("Departed", "Delayed", "Closed", FlightStatus.DEPARTED),
        ("Departed", "Landed", "Closed", FlightStatus.LANDED),
        ("Departed", "Arrived", None, FlightStatus.ARRIVED),
        ("Not Departed", None, None, FlightStatus.SCHEDULED),
        ("Departed", "Diverted", None, FlightStatus.DIVERTED),
        ("CANCELLED", None, None, FlightStatus.CANCELLED),
    ],
)
def test_status_words_combine_to_the_furthest_state(
        adapter: BritishAirwaysAdapter, ba_api: Serve, departure: str, arrival: str | None,
        gate: str | None, expected: FlightStatus) -> None:
    """Departure, arrival and gate statuses combine: cancelled or diverted wins, otherwise the
    furthest progress any of them reports; a bare gate "Closed" means boarding."""

    def change(sector: dict[str, Any]) -> None:
        sector.update(DepartureStatus=departure, ArrivalStatus=arrival,
                      ReportedDepartureDateTime=None, ReportedArrivalDateTime=None)
        sector["DepartureGateInformation"]["GateStatus"] = gate

    ba_api(content=_mutated(change))
    (leg,) = adapter.fetch(FlightQuery.parse("BA117", "2026-07-15")).legs
    assert leg.status is expected


def test_landed_makes_reported_arrival_actual(adapter: BritishAirwaysAdapter,
                                              ba_api: Serve) -> None:
    """Once landed, the reported arrival time is the actual arrival, not an estimate."""
    ba_api(content=_mutated(lambda s: s.update(ArrivalStatus="Landed")))
    (leg,) = adapter.fetch(FlightQuery.parse("BA117", "2026-07-15")).legs
    assert leg.actual_arrival == utc("2026-07-15T15:12")
    assert leg.estimated_arrival is None


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (500, None, ProviderUnavailable),
        (503, None, ProviderUnavailable),
        (401, None, ProviderAuthError),
        (403, None, ProviderAuthError),
        (404, None, FlightNotFound),
        (400, None, ProviderRequestRejected),
        (406, None, ProviderRequestRejected),
        (429, {"Retry-After": "17"}, ProviderRateLimited),
    ],
)
def test_http_status_maps_to_error(adapter: BritishAirwaysAdapter, ba_api: Serve, status: int,
                                   headers: dict[str, str] | None,
                                   error: type[ProviderError]) -> None:
    """Each documented HTTP status lands on its ProviderError class, carrying the status."""
    ba_api(status=status, content=b'{"error": "x"}', headers=headers)
    with pytest.raises(error) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert info.value.provider == "british_airways"
    assert info.value.status == status
    assert KEY not in str(info.value)


def test_rate_limit_carries_retry_after(adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """429 with Retry-After gives ProviderRateLimited with that many seconds, retryable."""
    ba_api(status=429, headers={"Retry-After": "17"})
    with pytest.raises(ProviderRateLimited) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert info.value.retry_after == 17.0
    assert info.value.retryable


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ReadTimeout("read timed out"), ProviderTimeout),
        (httpx.ConnectTimeout("connect timed out"), ProviderTimeout),
        (httpx.ConnectError("connection refused"), ProviderUnavailable),
        (httpx.RemoteProtocolError("server disconnected"), ProviderUnavailable),
    ],
)
def test_transport_failure_maps_to_error(adapter: BritishAirwaysAdapter,
                                         httpx_mock: HTTPXMock, exc: Exception,
                                         error: type[ProviderError]) -> None:
    """No httpx exception escapes: timeouts and connection failures become ProviderErrors
    with the httpx exception chained as the cause."""
    httpx_mock.add_exception(exc)
    with pytest.raises(error) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert isinstance(info.value.__cause__, httpx.HTTPError)
    assert info.value.retryable


def test_malformed_json_is_bad_response(adapter: BritishAirwaysAdapter, ba_api: Serve) -> None:
    """A body that is not JSON is ProviderBadResponse, chained to the decode error."""
    ba_api(content=b'{"FlightsResponse": {"Flight": ')
    with pytest.raises(ProviderBadResponse) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ((FIXTURES / "wrong_shape.json").read_bytes(), "FlightsResponse"),
        (b"[]", "FlightsResponse"),
        (b'{"FlightsResponse": {"Flight": "BA117"}}', "Flight"),
        (_mutated(lambda s: s.pop("DepartureAirport")), "DepartureAirport"),
        (_mutated(lambda s: s.update(ScheduledDepartureDateTime="15/07/2026 08:25")),
         "ScheduledDepartureDateTime"),
        (_mutated(lambda s: s.update(ArrivalAirport="XQQ")), "unknown airport"),
        (_mutated(lambda s: s.update(DepartureTerminal={"Name": 5})), "DepartureTerminal"),
        (_mutated(lambda s: s.update(DepartureGateInformation="A10")),
         "DepartureGateInformation"),
    ],
    ids=["other-provider-shape", "array", "flight-string", "no-origin", "bad-time",
         "unknown-airport", "terminal-object", "gate-string"],
)
def test_wrong_shape_is_bad_response_naming_the_cause(
        adapter: BritishAirwaysAdapter, ba_api: Serve, content: bytes, cause: str) -> None:
    """Valid JSON that violates the documented shape is ProviderBadResponse naming what."""
    ba_api(content=content)
    with pytest.raises(ProviderBadResponse) as info:
        adapter.fetch(FlightQuery.parse("BA117", "2026-07-15"))
    assert cause in str(info.value)


def test_missing_key_is_config_error() -> None:
    """Constructing the adapter without a client key says which variable to set."""
    with pytest.raises(ConfigError, match="BA_CLIENT_KEY"):
        BritishAirwaysAdapter(httpx.Client(base_url=BASE), ProviderSettings())


def test_class_attributes_describe_the_provider() -> None:
    """Name, coverage, priority and credentials as the registry and builder expect."""
    assert BritishAirwaysAdapter.name == "british_airways"
    assert BritishAirwaysAdapter.default_carriers == frozenset({"BA"})
    assert BritishAirwaysAdapter.default_priority == 40
    assert BritishAirwaysAdapter.credential_env == ("BA_CLIENT_KEY",)
    assert BritishAirwaysAdapter.uses_oauth is False
    assert BritishAirwaysAdapter.default_base_url.startswith("https://api.ba.com")
