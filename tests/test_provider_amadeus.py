"""Amadeus adapter: documented payloads through the real parser, the request it sends, and
the mapping of every fault class (docs/PROVIDERS.md section 2)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock
from structlog.testing import capture_logs

from flightsync.config import ProviderSettings
from flightsync.errors import (
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers import OAuthTokenSource
from flightsync.providers.amadeus import AmadeusAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "amadeus"
BASE = "https://test.api.amadeus.com"
TOKEN_URL = f"{BASE}/v1/security/oauth2/token"
FLIGHTS_URL = f"{BASE}/v2/schedule/flights"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def adapter(state_dir: Path) -> Iterator[AmadeusAdapter]:
    with httpx.Client(base_url=BASE) as client:
        tokens = OAuthTokenSource(client, provider="amadeus",
                                  token_path=AmadeusAdapter.token_path, client_id="id",
                                  client_secret="secret", state_dir=state_dir)
        yield AmadeusAdapter(client, ProviderSettings(), tokens)
        tokens.close()


@pytest.fixture
def amadeus_api(httpx_mock: HTTPXMock) -> Callable[..., None]:
    """Factory: the token endpoint answers ``tokens`` in turn, the flight endpoint answers each
    of ``responses`` in turn (a fixture name, a JSON value or an httpx.Response)."""

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
                # Served byte for byte so ``raw`` can be compared with the file.
                httpx_mock.add_response(method="GET", content=(FIXTURES / response).read_bytes(),
                                        headers={"Content-Type": "application/json"})
            else:
                httpx_mock.add_response(method="GET", json=response)

    return install


def flight_requests(httpx_mock: HTTPXMock) -> list[httpx.Request]:
    return [r for r in httpx_mock.get_requests() if r.method == "GET"]


def test_spec_example_tp487_is_normalized(adapter: AmadeusAdapter,
                                          amadeus_api: Callable[..., None],
                                          httpx_mock: HTTPXMock) -> None:
    """The official spec example: one leg NCE->LIS, local times with offsets as UTC, no status,
    equipment and the partner designator as a codeshare (not as operator)."""
    payload = load("flight_tp487_spec.json")
    amadeus_api("flight_tp487_spec.json")
    observation = adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    [leg] = observation.legs
    points = payload["data"][0]["flightPoints"]
    assert (leg.origin, leg.destination) == ("NCE", "LIS")
    assert leg.scheduled_departure == utc(points[0]["departure"]["timings"][0]["value"])
    assert leg.scheduled_departure == datetime(2023, 8, 1, 16, 10, tzinfo=UTC)
    assert leg.scheduled_arrival == datetime(2023, 8, 1, 18, 45, tzinfo=UTC)
    assert leg.status is None  # no delay: Amadeus does not know the status
    assert leg.estimated_departure is None and leg.estimated_arrival is None
    assert leg.aircraft_type == "E90"
    assert leg.codeshares == ("A31748",)
    assert leg.operating_carrier is None
    assert leg.departure_terminal is None and leg.departure_gate is None
    assert observation.provider == "amadeus"
    assert observation.raw == (FIXTURES / "flight_tp487_spec.json").read_text()
    assert observation.fetched_at.tzinfo is not None


def test_production_example_ib532_has_terminal_and_negative_delay(
        adapter: AmadeusAdapter, amadeus_api: Callable[..., None]) -> None:
    """The production example: departure terminal 4 and an arrival delay of PT-24M give an
    estimated arrival 24 minutes before the scheduled one; an arrival delay is not DELAYED."""
    amadeus_api("flight_ib532_production.json")
    [leg] = adapter.fetch(FlightQuery.parse("IB532", "2020-11-24")).legs
    assert (leg.origin, leg.destination) == ("MAD", "VGO")
    assert leg.scheduled_departure == datetime(2020, 11, 24, 10, 40, tzinfo=UTC)
    assert leg.scheduled_arrival == datetime(2020, 11, 24, 12, 0, tzinfo=UTC)
    assert leg.estimated_arrival == leg.scheduled_arrival - timedelta(minutes=24)
    assert leg.departure_terminal == "4"
    assert leg.aircraft_type == "320"
    assert leg.codeshares == ("AA8711",)
    assert leg.status is None  # no delay: Amadeus does not know the status


def test_request_carries_query_and_bearer_token(adapter: AmadeusAdapter,
                                                amadeus_api: Callable[..., None],
                                                httpx_mock: HTTPXMock) -> None:
    """GET /v2/schedule/flights with carrierCode, flightNumber, scheduledDepartureDate,
    operationalSuffix when given, and ``Authorization: Bearer <token>``."""
    amadeus_api("flight_tp487_spec.json", "flight_tp487_spec.json")
    adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    adapter.fetch(FlightQuery.parse("TP0487A", "2023-08-01"))
    plain, suffixed = flight_requests(httpx_mock)
    assert plain.url.path == "/v2/schedule/flights"
    assert dict(plain.url.params) == {"carrierCode": "TP", "flightNumber": "487",
                                      "scheduledDepartureDate": "2023-08-01"}
    assert plain.headers["authorization"] == "Bearer tok-1"
    assert "application/vnd.amadeus+json" in plain.headers["accept"]
    assert suffixed.url.params["operationalSuffix"] == "A"


def test_departure_delay_gives_delayed_and_estimate(adapter: AmadeusAdapter,
                                                    amadeus_api: Callable[..., None]) -> None:
    """A positive delay on the STD timing makes the leg DELAYED with estimate = STD + delay."""
    payload = load("flight_tp487_spec.json")
    std = payload["data"][0]["flightPoints"][0]["departure"]["timings"][0]
    std["delays"] = [{"duration": "PT1H25M"}]
    amadeus_api(payload)
    [leg] = adapter.fetch(FlightQuery.parse("TP487", "2023-08-01")).legs
    assert leg.status is FlightStatus.DELAYED
    assert leg.scheduled_departure is not None
    assert leg.estimated_departure == leg.scheduled_departure + timedelta(hours=1, minutes=25)


def test_multi_leg_flight_keeps_flying_order(adapter: AmadeusAdapter,
                                             amadeus_api: Callable[..., None]) -> None:
    """A flight with two legs yields two legs in order, each with its own times and gate."""
    payload = load("flight_tp487_spec.json")
    flight = payload["data"][0]
    flight["flightPoints"] = [
        {"iataCode": "NCE", "departure": {"timings": [
            {"qualifier": "STD", "value": "2023-08-01T18:10+02:00"}]}},
        {"iataCode": "LIS",
         "arrival": {"timings": [{"qualifier": "STA", "value": "2023-08-01T19:45+01:00"}]},
         "departure": {"gate": {"mainGate": "10A"}, "timings": [
             {"qualifier": "STD", "value": "2023-08-01T21:00+01:00"}]}},
        {"iataCode": "FNC", "arrival": {"timings": [
            {"qualifier": "STA", "value": "2023-08-01T22:45+01:00"}]}},
    ]
    flight["legs"] = [
        {"boardPointIataCode": "NCE", "offPointIataCode": "LIS"},
        {"boardPointIataCode": "LIS", "offPointIataCode": "FNC",
         "aircraftEquipment": {"aircraftType": "32N"}},
    ]
    flight["segments"] = []
    amadeus_api(payload)
    first, second = adapter.fetch(FlightQuery.parse("TP487", "2023-08-01")).legs
    assert (first.origin, first.destination, second.origin, second.destination) == (
        "NCE", "LIS", "LIS", "FNC")
    assert second.scheduled_departure == datetime(2023, 8, 1, 20, 0, tzinfo=UTC)
    assert second.departure_gate == "10A" and first.departure_gate is None
    assert second.aircraft_type == "32N" and first.aircraft_type is None


def test_empty_data_is_flight_not_found(adapter: AmadeusAdapter,
                                        amadeus_api: Callable[..., None]) -> None:
    """``data: []`` means the flight does not exist: FlightNotFound, not a provider failure."""
    amadeus_api({"meta": {"count": 0}, "data": []})
    with pytest.raises(FlightNotFound) as caught:
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    assert caught.value.counts_for_breaker is False


def expired(code: int | str = 38192) -> httpx.Response:
    return httpx.Response(401, json={"errors": [
        {"code": code, "title": "Access token expired", "status": 401}]})


def test_expired_token_is_refreshed_exactly_once(adapter: AmadeusAdapter,
                                                 amadeus_api: Callable[..., None],
                                                 httpx_mock: HTTPXMock) -> None:
    """A 401 with code 38192 invalidates the token, fetches a new one and retries once."""
    amadeus_api(expired("38192"), "flight_tp487_spec.json", tokens=("tok-old", "tok-new"))
    legs = adapter.fetch(FlightQuery.parse("TP487", "2023-08-01")).legs
    assert len(legs) == 1
    first, second = flight_requests(httpx_mock)
    assert first.headers["authorization"] == "Bearer tok-old"
    assert second.headers["authorization"] == "Bearer tok-new"


def test_token_refused_twice_is_an_auth_error(adapter: AmadeusAdapter,
                                              amadeus_api: Callable[..., None],
                                              httpx_mock: HTTPXMock) -> None:
    """When the fresh token is refused too, the adapter stops after one retry."""
    amadeus_api(expired(38190), expired(38190), tokens=("tok-1", "tok-2"))
    with pytest.raises(ProviderAuthError):
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    assert len(flight_requests(httpx_mock)) == 2


def test_other_401_is_not_retried(adapter: AmadeusAdapter, amadeus_api: Callable[..., None],
                                  httpx_mock: HTTPXMock) -> None:
    """The spec's 401 RESTRICTED (code 20) is an auth error without a token refresh."""
    amadeus_api(httpx.Response(401, json=load("error_401_restricted.json")))
    with pytest.raises(ProviderAuthError):
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    assert len(flight_requests(httpx_mock)) == 1


def test_rate_limit_carries_retry_after(adapter: AmadeusAdapter,
                                        amadeus_api: Callable[..., None]) -> None:
    """The documented 429 (code 38194 as a string) is ProviderRateLimited with Retry-After."""
    amadeus_api(httpx.Response(429, headers={"Retry-After": "3"},
                               json=load("error_429_rate.json")))
    with pytest.raises(ProviderRateLimited) as caught:
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    assert caught.value.retry_after == 3.0
    assert caught.value.retryable is True


def test_quota_exhausted_is_not_retryable(adapter: AmadeusAdapter,
                                          amadeus_api: Callable[..., None]) -> None:
    """429 with code 38195 (monthly quota used up) is ProviderQuotaExhausted, not retryable."""
    amadeus_api(httpx.Response(429, json={"errors": [
        {"code": 38195, "title": "Quota limit exceeded", "status": 429}]}))
    with pytest.raises(ProviderQuotaExhausted) as caught:
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    assert caught.value.retryable is False


@pytest.mark.parametrize(("response", "expected"), [
    (httpx.Response(500, json=load("error_500.json")), ProviderUnavailable),
    (httpx.Response(502, text="bad gateway"), ProviderUnavailable),
    (httpx.Response(400, json=load("error_400.json")), ProviderRequestRejected),
    (httpx.Response(422, json={"errors": [{"code": 4926, "title": "INVALID DATA"}]}),
     ProviderRequestRejected),
    (httpx.Response(404, json={"errors": [{"code": 1797, "title": "NOT FOUND"}]}),
     FlightNotFound),
    (httpx.Response(404, json={"errors": [{"code": 38196, "title": "Resource not found"}]}),
     ProviderBadResponse),
    (httpx.Response(200, text="{not json"), ProviderBadResponse),
    (httpx.ReadTimeout("slow"), ProviderTimeout),
    (httpx.ConnectError("refused"), ProviderUnavailable),
])
def test_fault_classes_are_mapped(adapter: AmadeusAdapter, amadeus_api: Callable[..., None],
                                  response: Any, expected: type[Exception]) -> None:
    """5xx, 400, 404 (flight vs bad URL), malformed JSON, timeouts and connection errors each
    become their ProviderError subclass."""
    amadeus_api(response)
    with pytest.raises(expected):
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))


def _broken(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    payload = copy.deepcopy(load("flight_tp487_spec.json"))
    mutate(payload)
    return payload


@pytest.mark.parametrize("payload", [
    {"meta": {}},
    {"data": {"type": "DatedFlight"}},
    _broken(lambda p: p["data"][0].pop("flightPoints")),
    _broken(lambda p: p["data"][0]["flightPoints"][0]["departure"]["timings"][0].update(
        value=1800)),
    _broken(lambda p: p["data"][0]["flightPoints"][0]["departure"]["timings"][0].update(
        value="2023-08-01T18:10")),
    _broken(lambda p: p["data"][0]["flightPoints"][0]["departure"]["timings"][0].update(
        delays=[{"duration": "25 minutes"}])),
    _broken(lambda p: p["data"][0]["legs"][0].update(boardPointIataCode=None)),
    _broken(lambda p: p["data"][0]["segments"][0]["partnership"].update(
        operatingFlight={"carrierCode": "A3", "flightNumber": "twelve"})),
    _broken(lambda p: p["data"].__setitem__(0, "DatedFlight")),
])
def test_schema_violations_are_bad_responses(adapter: AmadeusAdapter,
                                             amadeus_api: Callable[..., None],
                                             payload: Any) -> None:
    """Missing keys, wrong types and offset-less times raise ProviderBadResponse, never a
    KeyError or TypeError."""
    amadeus_api(payload)
    with pytest.raises(ProviderBadResponse):
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))


def test_location_by_id(adapter: AmadeusAdapter, amadeus_api: Callable[..., None],
                        httpx_mock: HTTPXMock) -> None:
    """location(id) reads the official CMUC example from /v1/reference-data/locations/{id}."""
    amadeus_api("location_cmuc.json")
    location = adapter.location("CMUC")
    [request] = flight_requests(httpx_mock)
    assert request.url.path == "/v1/reference-data/locations/CMUC"
    assert request.headers["authorization"] == "Bearer tok-1"
    assert (location.id, location.sub_type, location.iata_code) == ("CMUC", "CITY", "MUC")
    assert location.time_zone_offset == "+02:00"
    assert (location.city_code, location.country_code) == ("MUC", "DE")
    assert location.latitude == pytest.approx(48.35378)


def test_fault_is_logged_without_token(adapter: AmadeusAdapter,
                                       amadeus_api: Callable[..., None]) -> None:
    """A failing call logs a provider.fetch.error event with the codes and no bearer token."""
    amadeus_api(httpx.Response(500, json=load("error_500.json")), tokens=("tok-secret",))
    with capture_logs() as events, pytest.raises(ProviderUnavailable):
        adapter.fetch(FlightQuery.parse("TP487", "2023-08-01"))
    [event] = [e for e in events if e["event"] == "provider.fetch.error"]
    assert event["codes"] == [141]
    assert "tok-secret" not in repr(events)
