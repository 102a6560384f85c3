"""Lufthansa adapter: the documented LH400 capture through the real parser, the XML-to-JSON
quirks, the request it sends and the mapping of every fault class (docs/PROVIDERS.md section 3)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pytest_httpx import HTTPXMock
from structlog.testing import capture_logs

from flightsync.config import ProviderSettings
from flightsync.errors import (
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers import OAuthTokenSource
from flightsync.providers.lufthansa import LufthansaAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "lufthansa"
BASE = "https://api.lufthansa.com"
TOKEN_URL = f"{BASE}/v1/oauth/token"
QUERY = FlightQuery.parse("LH400", "2017-09-07")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def lh400() -> dict[str, Any]:
    return copy.deepcopy(load("flightstatus_lh400.json"))


def flight_of(payload: dict[str, Any]) -> dict[str, Any]:
    flight: dict[str, Any] = payload["FlightStatusResource"]["Flights"]["Flight"]
    return flight


@pytest.fixture
def adapter(state_dir: Path) -> Iterator[LufthansaAdapter]:
    with httpx.Client(base_url=BASE) as client:
        tokens = OAuthTokenSource(client, provider="lufthansa",
                                  token_path=LufthansaAdapter.token_path, client_id="id",
                                  client_secret="secret", state_dir=state_dir)
        yield LufthansaAdapter(client, ProviderSettings(), tokens)
        tokens.close()


@pytest.fixture
def lufthansa_api(httpx_mock: HTTPXMock) -> Callable[..., None]:
    """Factory: token answers from the documented token example, then each flight-status
    response in turn (fixture file name, JSON value, httpx.Response or exception)."""

    def install(*responses: Any, tokens: tuple[str, ...] = ("tok-1",)) -> None:
        for token in tokens:
            body = load("token.json") | {"access_token": token}
            httpx_mock.add_response(method="POST", url=TOKEN_URL, json=body)
        for response in responses:
            if isinstance(response, httpx.Response):
                httpx_mock.add_callback(lambda request, r=response: r, method="GET")
            elif isinstance(response, Exception):
                httpx_mock.add_exception(response, method="GET")
            elif isinstance(response, str):
                httpx_mock.add_response(method="GET", content=(FIXTURES / response).read_bytes(),
                                        headers={"Content-Type": "application/json"})
            else:
                httpx_mock.add_response(method="GET", json=response)

    return install


def gets(httpx_mock: HTTPXMock) -> list[httpx.Request]:
    return [r for r in httpx_mock.get_requests() if r.method == "GET"]


def test_lh400_capture_is_normalized(adapter: LufthansaAdapter,
                                     lufthansa_api: Callable[..., None]) -> None:
    """The LH400 capture: UTC times, actual departure (no estimate), estimated arrival (no
    actual), numeric terminal and equipment as strings, gate inside Terminal, DP -> departed."""
    lufthansa_api("flightstatus_lh400.json")
    observation = adapter.fetch(QUERY)
    [leg] = observation.legs
    assert (leg.origin, leg.destination) == ("FRA", "JFK")
    assert leg.scheduled_departure == datetime(2017, 9, 7, 9, 0, tzinfo=UTC)
    assert leg.actual_departure == datetime(2017, 9, 7, 9, 28, tzinfo=UTC)
    assert leg.estimated_departure is None
    assert leg.scheduled_arrival == datetime(2017, 9, 7, 17, 30, tzinfo=UTC)
    assert leg.estimated_arrival == datetime(2017, 9, 7, 18, 5, tzinfo=UTC)
    assert leg.actual_arrival is None
    assert (leg.departure_terminal, leg.departure_gate) == ("1", "C14")
    assert (leg.arrival_terminal, leg.arrival_gate) == ("1", None)
    assert leg.aircraft_type == "744"
    assert leg.status is FlightStatus.DEPARTED
    assert (leg.operating_carrier, leg.operating_flight_number) == ("LH", 400)
    assert leg.codeshares is None
    assert observation.raw == (FIXTURES / "flightstatus_lh400.json").read_text()


def test_request_path_and_capitalized_bearer(adapter: LufthansaAdapter,
                                             lufthansa_api: Callable[..., None],
                                             httpx_mock: HTTPXMock) -> None:
    """GET /v1/operations/flightstatus/LH400/2017-09-07 with ``Bearer`` capitalized although
    the token endpoint says ``bearer``, and Accept: application/json."""
    lufthansa_api("flightstatus_lh400.json")
    adapter.fetch(FlightQuery.parse("LH0400", "2017-09-07"))
    token_request = httpx_mock.get_requests()[0]
    [request] = gets(httpx_mock)
    assert token_request.url.path == "/v1/oauth/token"
    assert request.url.path == "/v1/operations/flightstatus/LH400/2017-09-07"
    assert request.headers["authorization"] == "Bearer tok-1"
    assert request.headers["accept"] == "application/json"


def test_codeshare_and_registration(adapter: LufthansaAdapter,
                                    lufthansa_api: Callable[..., None]) -> None:
    """A marketing carrier different from the operating one becomes an LX7171-style codeshare;
    the registration is read when present."""
    payload = lh400()
    flight = flight_of(payload)
    flight["MarketingCarrier"] = {"AirlineID": "LX", "FlightNumber": "7171"}
    flight["Equipment"] = {"AircraftCode": "34E", "AircraftRegistration": "DAIHA"}
    lufthansa_api(payload)
    [leg] = adapter.fetch(FlightQuery.parse("LX7171", "2017-09-07")).legs
    assert leg.codeshares == ("LX7171",)
    assert (leg.operating_carrier, leg.operating_flight_number) == ("LH", 400)
    assert (leg.aircraft_type, leg.aircraft_registration) == ("34E", "DAIHA")


def test_flight_list_is_ordered_and_local_times_are_zoned(
        adapter: LufthansaAdapter, lufthansa_api: Callable[..., None]) -> None:
    """``Flight`` as an array gives one leg per entry ordered by departure; a leg with only
    ``...Local`` times is placed in the airport's time zone."""
    payload = lh400()
    first = flight_of(payload)
    second = {
        "Departure": {"AirportCode": "JFK", "ScheduledTimeLocal": {"DateTime": "2017-09-07T16:00"},
                      "TimeStatus": {"Code": "OT"}},
        "Arrival": {"AirportCode": "ORD", "ScheduledTimeLocal": {"DateTime": "2017-09-07T17:45"}},
        "MarketingCarrier": {"AirlineID": "LH", "FlightNumber": 400},
        "OperatingCarrier": {"AirlineID": "LH", "FlightNumber": 400},
        "FlightStatus": {"Code": "NA"},
    }
    payload["FlightStatusResource"]["Flights"]["Flight"] = [second, first]
    lufthansa_api(payload)
    legs = adapter.fetch(QUERY).legs
    assert [(leg.origin, leg.destination) for leg in legs] == [("FRA", "JFK"), ("JFK", "ORD")]
    new_york = ZoneInfo("America/New_York")
    assert legs[1].scheduled_departure == datetime(2017, 9, 7, 16, 0, tzinfo=new_york)
    assert legs[1].scheduled_departure.tzinfo == UTC
    assert legs[1].scheduled_arrival == datetime(2017, 9, 7, 17, 45, tzinfo=ZoneInfo(
        "America/Chicago"))
    assert legs[1].status is FlightStatus.SCHEDULED


@pytest.mark.parametrize(("flight_code", "time_code", "expected"), [
    ("CD", "DL", FlightStatus.CANCELLED),
    ("DP", "DL", FlightStatus.DEPARTED),
    ("LD", "OT", FlightStatus.LANDED),
    ("RT", "OT", FlightStatus.DIVERTED),
    ("NA", "DL", FlightStatus.DELAYED),
    ("NA", "OT", FlightStatus.SCHEDULED),
    ("NA", "FE", FlightStatus.SCHEDULED),
    ("NA", "NI", FlightStatus.SCHEDULED),
    ("NA", "NO", FlightStatus.SCHEDULED),
])
def test_status_codes_are_mapped(adapter: LufthansaAdapter, lufthansa_api: Callable[..., None],
                                 flight_code: str, time_code: str,
                                 expected: FlightStatus) -> None:
    """FlightStatus.Code wins; NA defers to the departure TimeStatus (docs/PROVIDERS.md §8)."""
    payload = lh400()
    flight = flight_of(payload)
    flight["FlightStatus"] = {"Code": flight_code}
    flight["Departure"]["TimeStatus"] = {"Code": time_code}
    lufthansa_api(payload)
    assert adapter.fetch(QUERY).legs[0].status is expected


def test_unknown_status_code_is_unknown_and_logged(adapter: LufthansaAdapter,
                                                   lufthansa_api: Callable[..., None]) -> None:
    """An undocumented code (e.g. DV) maps to UNKNOWN and emits provider.status.unknown."""
    payload = lh400()
    flight_of(payload)["FlightStatus"] = {"Code": "DV", "Definition": "Diverted?"}
    lufthansa_api(payload)
    with capture_logs() as events:
        [leg] = adapter.fetch(QUERY).legs
    assert leg.status is FlightStatus.UNKNOWN
    assert any(e["event"] == "provider.status.unknown" and e["code"] == "DV" for e in events)


def test_missing_flights_is_not_found(adapter: LufthansaAdapter,
                                      lufthansa_api: Callable[..., None]) -> None:
    """A FlightStatusResource without Flights means no such flight."""
    lufthansa_api({"FlightStatusResource": {"Meta": {"@Version": "1.0.0"}}})
    with pytest.raises(FlightNotFound):
        adapter.fetch(QUERY)


def test_expired_token_is_refreshed_exactly_once(adapter: LufthansaAdapter,
                                                 lufthansa_api: Callable[..., None],
                                                 httpx_mock: HTTPXMock) -> None:
    """A 401 on the resource call invalidates the token and retries once with a fresh one."""
    lufthansa_api(httpx.Response(401, json=load("error_not_authorized.json")),
                  "flightstatus_lh400.json", tokens=("tok-old", "tok-new"))
    assert adapter.fetch(QUERY).legs[0].origin == "FRA"
    assert [r.headers["authorization"] for r in gets(httpx_mock)] == [
        "Bearer tok-old", "Bearer tok-new"]


def test_refused_after_refresh_is_auth_error(adapter: LufthansaAdapter,
                                             lufthansa_api: Callable[..., None],
                                             httpx_mock: HTTPXMock) -> None:
    """Two 401s in a row end in ProviderAuthError after exactly two calls."""
    refused = httpx.Response(401, json=load("error_not_authorized.json"))
    lufthansa_api(refused, refused, tokens=("tok-1", "tok-2"))
    with pytest.raises(ProviderAuthError):
        adapter.fetch(QUERY)
    assert len(gets(httpx_mock)) == 2


def test_rate_limit_429_and_mashery_403(adapter: LufthansaAdapter,
                                        lufthansa_api: Callable[..., None]) -> None:
    """429 with Retry-After and Mashery's 403 "Developer Over Qps" are both rate limits."""
    lufthansa_api(httpx.Response(429, headers={"Retry-After": "2"}),
                  httpx.Response(403, text="<h1>Developer Over Qps</h1>"))
    with pytest.raises(ProviderRateLimited) as caught:
        adapter.fetch(QUERY)
    assert caught.value.retry_after == 2.0
    with pytest.raises(ProviderRateLimited):
        adapter.fetch(QUERY)


@pytest.mark.parametrize(("response", "expected"), [
    (httpx.Response(404, json=load("error_processing.json")), FlightNotFound),
    (httpx.Response(400, json={"ProcessingErrors": {"ProcessingError": {
        "@RetryIndicator": True, "Type": "BusinessError", "Code": "3"}}}), ProviderUnavailable),
    (httpx.Response(400, json=load("error_processing.json")), ProviderRequestRejected),
    (httpx.Response(403, json=load("error_not_authorized.json")), ProviderAuthError),
    (httpx.Response(500, text="oops"), ProviderUnavailable),
    (httpx.Response(200, text="<FlightStatusResource/>"), ProviderBadResponse),
    (httpx.ReadTimeout("slow"), ProviderTimeout),
    (httpx.ConnectError("refused"), ProviderUnavailable),
])
def test_fault_classes_are_mapped(adapter: LufthansaAdapter, lufthansa_api: Callable[..., None],
                                  response: Any, expected: type[Exception]) -> None:
    """404, processing errors (with RetryIndicator: retry; without: the request is
    rejected), gateway refusals, 5xx, malformed JSON, timeouts and connection errors map to
    their ProviderError subclass."""
    lufthansa_api(response)
    with pytest.raises(expected):
        adapter.fetch(QUERY)


def _broken(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    payload = lh400()
    mutate(flight_of(payload))
    return payload


@pytest.mark.parametrize("payload", [
    {"Flights": {}},
    {"FlightStatusResource": {"Flights": {"Flight": "LH400"}}},
    _broken(lambda f: f.pop("Departure")),
    _broken(lambda f: f["Departure"].pop("AirportCode")),
    _broken(lambda f: f["Departure"].update(ScheduledTimeUTC={"DateTime": "yesterday"})),
    _broken(lambda f: f["Departure"].update(Terminal={"Name": {"x": 1}})),
    _broken(lambda f: f["Departure"].update(ScheduledTimeUTC="2017-09-07T09:00Z")),
    _broken(lambda f: f["OperatingCarrier"].update(FlightNumber="four hundred")),
    _broken(lambda f: f.update(Arrival={"AirportCode": "ZZZ",
                                        "ScheduledTimeLocal": {"DateTime": "2017-09-07T13:30"}})),
])
def test_schema_violations_are_bad_responses(adapter: LufthansaAdapter,
                                             lufthansa_api: Callable[..., None],
                                             payload: Any) -> None:
    """Missing keys, wrong types, unparseable times and a local time at an unknown airport
    raise ProviderBadResponse, never KeyError/TypeError."""
    lufthansa_api(payload)
    with pytest.raises(ProviderBadResponse):
        adapter.fetch(QUERY)
