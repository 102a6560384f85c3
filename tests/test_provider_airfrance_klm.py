"""Air France-KLM adapter: the documented AF7711 capture through the real parser, the UTC
range query and local-date pick, several legs, status mapping and faults (docs/PROVIDERS.md
section 4)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
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
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers.airfrance_klm import AirFranceKlmAdapter, parse_flight

FIXTURES = Path(__file__).parent / "fixtures" / "airfrance_klm"
BASE = "https://api.airfranceklm.com"
QUERY = FlightQuery.parse("AF7711", "2021-09-23")


def af7711() -> dict[str, Any]:
    flight: dict[str, Any] = json.loads((FIXTURES / "flight_af7711.json").read_text())
    return flight


def listing(*flights: dict[str, Any]) -> dict[str, Any]:
    return {"operationalFlights": list(flights),
            "page": {"pageSize": 10, "pageNumber": 0, "fullCount": len(flights)}}


@pytest.fixture
def adapter() -> Iterator[AirFranceKlmAdapter]:
    with httpx.Client(base_url=BASE) as client:
        yield AirFranceKlmAdapter(client, ProviderSettings(credentials={"api_key": "key-123"}))


@pytest.fixture
def afklm_api(httpx_mock: HTTPXMock) -> Callable[..., None]:
    """Factory: each response in turn for GET /opendata/flightstatus."""

    def install(*responses: Any) -> None:
        for response in responses:
            if isinstance(response, httpx.Response):
                httpx_mock.add_callback(lambda request, r=response: r, method="GET")
            elif isinstance(response, Exception):
                httpx_mock.add_exception(response, method="GET")
            else:
                httpx_mock.add_response(method="GET", json=response)

    return install


def test_af7711_capture_is_normalized() -> None:
    """The documented flight object: offsets and milliseconds to UTC, terminals from places,
    estimate from the ``estimated`` object, codeshares, operator, equipment and status."""
    [leg] = parse_flight(af7711())
    assert (leg.origin, leg.destination) == ("NCE", "CDG")
    assert leg.scheduled_departure == datetime(2021, 9, 23, 5, 15, tzinfo=UTC)
    assert leg.scheduled_arrival == datetime(2021, 9, 23, 6, 50, tzinfo=UTC)
    assert leg.estimated_arrival == datetime(2021, 9, 23, 6, 50, tzinfo=UTC)
    assert leg.actual_departure is None and leg.actual_arrival is None
    assert (leg.departure_terminal, leg.arrival_terminal) == ("2", "2F")
    assert leg.departure_gate is None
    assert leg.aircraft_type == "318"
    assert leg.codeshares == ("AM6161", "DL8610")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("AF", 7711)
    assert leg.status is FlightStatus.SCHEDULED


def test_request_is_a_utc_range_with_api_key(adapter: AirFranceKlmAdapter,
                                             afklm_api: Callable[..., None],
                                             httpx_mock: HTTPXMock) -> None:
    """GET /opendata/flightstatus over the UTC days around the local date, with carrierCode,
    flightNumber and the API-Key header; raw keeps the response text."""
    afklm_api(listing(af7711()))
    observation = adapter.fetch(QUERY)
    [request] = httpx_mock.get_requests()
    assert request.url.path == "/opendata/flightstatus"
    assert dict(request.url.params) == {
        "startRange": "2021-09-22T00:00:00Z", "endRange": "2021-09-24T23:59:59Z",
        "carrierCode": "AF", "flightNumber": "7711"}
    assert request.headers["api-key"] == "key-123"
    assert json.loads(observation.raw) == listing(af7711())
    assert observation.provider == "airfrance_klm"


def test_picks_the_flight_by_local_departure_date(adapter: AirFranceKlmAdapter,
                                                  afklm_api: Callable[..., None]) -> None:
    """Of the flights in the range, the one whose first leg leaves on the queried local date is
    chosen, even when its flightScheduleDate (a UTC date) is the day before."""
    day_before = af7711()
    day_before["flightLegs"][0]["departureInformation"]["times"]["scheduled"] = (
        "2021-09-22T07:15:00.000+02:00")
    just_after_midnight = af7711()
    just_after_midnight["flightScheduleDate"] = "2021-09-22"
    times = just_after_midnight["flightLegs"][0]["departureInformation"]["times"]
    times["scheduled"] = "2021-09-23T00:30:00.000+02:00"
    afklm_api(listing(day_before, just_after_midnight))
    [leg] = adapter.fetch(QUERY).legs
    assert leg.scheduled_departure == datetime(2021, 9, 22, 22, 30, tzinfo=UTC)


def test_no_matching_flight_is_not_found(adapter: AirFranceKlmAdapter,
                                         afklm_api: Callable[..., None]) -> None:
    """An empty list, or only other flights, means FlightNotFound."""
    other = af7711()
    other["flightNumber"] = 1001
    afklm_api(listing(), listing(other), httpx.Response(404, json={"errors": []}))
    for _ in range(3):
        with pytest.raises(FlightNotFound):
            adapter.fetch(QUERY)


def _leg(origin: str, destination: str, std: str, sta: str, status: str,
         **times: Any) -> dict[str, Any]:
    return {
        "legStatusPublic": status,
        "departureInformation": {
            "airport": {"code": origin, "places": {"gateNumber": ["D7"], "terminalCode": "C"}},
            "times": {"scheduled": std, **times.get("dep", {})}},
        "arrivalInformation": {"airport": {"code": destination}, "times": {
            "scheduled": sta, **times.get("arr", {})}},
        "aircraft": {"typeCode": "77W", "registration": "PH-BVA"},
        "irregularity": {"cancelled": times.get("cancelled", "N")},
    }


def test_several_legs_in_flying_order(adapter: AirFranceKlmAdapter,
                                      afklm_api: Callable[..., None]) -> None:
    """KL835 AMS-SIN-DPS: two legs in order, ICAO airline code read as IATA, gates from
    gateNumber[0], actual and estimated times, airborne once a take-off time is known."""
    flight = {
        "flightNumber": 835, "flightScheduleDate": "2021-09-23", "route": ["AMS", "SIN", "DPS"],
        "airline": {"code": "KLM", "name": "KLM"}, "flightStatusPublic": "DELAYED",
        "flightLegs": [
            _leg("AMS", "SIN", "2021-09-23T10:50:00.000+02:00", "2021-09-24T05:35:00.000+08:00",
                 "DELAYED_ARRIVAL",
                 dep={"actual": "2021-09-23T11:02:00.000+02:00",
                      "actualTakeOffTime": "2021-09-23T11:20:00.000+02:00"},
                 arr={"estimatedPublic": "2021-09-24T05:58:00.000+08:00"}),
            _leg("SIN", "DPS", "2021-09-24T07:05:00.000+08:00", "2021-09-24T09:40:00.000+08:00",
                 "DELAYED_DEPARTURE",
                 dep={"estimatedPublic": "2021-09-24T07:30:00.000+08:00"}),
        ],
    }
    afklm_api(listing(flight))
    first, second = adapter.fetch(FlightQuery.parse("KL835", "2021-09-23")).legs
    assert [(first.origin, first.destination), (second.origin, second.destination)] == [
        ("AMS", "SIN"), ("SIN", "DPS")]
    assert first.status is FlightStatus.AIRBORNE
    assert first.actual_departure == datetime(2021, 9, 23, 9, 2, tzinfo=UTC)
    assert first.estimated_arrival == datetime(2021, 9, 23, 21, 58, tzinfo=UTC)
    assert second.status is FlightStatus.DELAYED
    assert second.estimated_departure == datetime(2021, 9, 23, 23, 30, tzinfo=UTC)
    assert (second.departure_terminal, second.departure_gate) == ("C", "D7")
    assert (first.operating_carrier, first.aircraft_registration) == ("KL", "PHBVA")


@pytest.mark.parametrize(("status", "extra", "expected"), [
    ("ARRIVED", {}, FlightStatus.ARRIVED),
    ("IS_ARRIVED", {}, FlightStatus.ARRIVED),
    ("LANDED", {}, FlightStatus.LANDED),
    ("IN_FLIGHT", {}, FlightStatus.AIRBORNE),
    ("DEPARTED", {}, FlightStatus.DEPARTED),
    ("CANCELLED", {}, FlightStatus.CANCELLED),
    ("ONTIME", {"cancelled": "Y"}, FlightStatus.CANCELLED),
    ("DIVERTED", {}, FlightStatus.DIVERTED),
    ("NEW_DEPARTURE_TIME", {}, FlightStatus.SCHEDULED),
    ("EARLY_ARRIVAL", {}, FlightStatus.SCHEDULED),
    ("DELAYED_ARRIVAL", {}, FlightStatus.DELAYED),
])
def test_leg_status_mapping(status: str, extra: dict[str, Any],
                            expected: FlightStatus) -> None:
    """legStatusPublic and irregularity.cancelled map per docs/PROVIDERS.md section 8."""
    flight = af7711()
    leg = flight["flightLegs"][0]
    leg["legStatusPublic"] = status
    leg["irregularity"] = {"cancelled": extra.get("cancelled", "N")}
    assert parse_flight(flight)[0].status is expected


def test_unknown_status_is_unknown_and_logged() -> None:
    """A status outside the table maps to UNKNOWN and emits provider.status.unknown."""
    flight = af7711()
    flight["flightLegs"][0]["legStatusPublic"] = "BEAMED_UP"
    with capture_logs() as events:
        [leg] = parse_flight(flight)
    assert leg.status is FlightStatus.UNKNOWN
    assert any(e["event"] == "provider.status.unknown" and e["code"] == "BEAMED_UP"
               for e in events)


def test_codeshare_designator_finds_the_flight(adapter: AirFranceKlmAdapter,
                                               afklm_api: Callable[..., None]) -> None:
    """A query for a marketing designator (DL8610) matches through codeShareRelations."""
    afklm_api(listing(af7711()))
    [leg] = adapter.fetch(FlightQuery.parse("DL8610", "2021-09-23")).legs
    assert (leg.operating_carrier, leg.operating_flight_number) == ("AF", 7711)


def test_missing_api_key_is_a_config_error() -> None:
    """Without an API key the adapter refuses to be built."""
    with httpx.Client(base_url=BASE) as client, pytest.raises(ConfigError):
        AirFranceKlmAdapter(client, ProviderSettings())


@pytest.mark.parametrize(("response", "expected"), [
    (httpx.Response(401, json={"errors": [{"code": "401"}]}), ProviderAuthError),
    (httpx.Response(403, text="forbidden"), ProviderAuthError),
    (httpx.Response(429, headers={"Retry-After": "1"}), ProviderRateLimited),
    (httpx.Response(503, text="maintenance"), ProviderUnavailable),
    (httpx.Response(200, text="{'single': 'quotes'}"), ProviderBadResponse),
    (httpx.ReadTimeout("slow"), ProviderTimeout),
    (httpx.ConnectError("refused"), ProviderUnavailable),
])
def test_fault_classes_are_mapped(adapter: AirFranceKlmAdapter, afklm_api: Callable[..., None],
                                  response: Any, expected: type[Exception]) -> None:
    """401/403, 429, 5xx, malformed JSON, timeouts and connection errors are mapped."""
    afklm_api(response)
    with pytest.raises(expected) as caught:
        adapter.fetch(QUERY)
    if isinstance(caught.value, ProviderRateLimited):
        assert caught.value.retry_after == 1.0


def _broken(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    flight = copy.deepcopy(af7711())
    mutate(flight)
    return listing(flight)


@pytest.mark.parametrize("payload", [
    ["not", "an", "object"],
    {"operationalFlights": {"flightNumber": 7711}},
    _broken(lambda f: f.update(flightLegs="NCE-CDG")),
    _broken(lambda f: f["flightLegs"][0].pop("arrivalInformation")),
    _broken(lambda f: f["flightLegs"][0]["departureInformation"]["times"].update(
        scheduled="23/09/2021 07:15")),
    _broken(lambda f: f["flightLegs"][0]["arrivalInformation"]["times"].update(
        scheduled=20210923)),
    _broken(lambda f: f["flightLegs"][0]["departureInformation"]["airport"].update(
        places={"terminalCode": {"code": "2"}})),
    _broken(lambda f: f.update(flightNumber="seventy")),
])
def test_schema_violations_are_bad_responses(adapter: AirFranceKlmAdapter,
                                             afklm_api: Callable[..., None],
                                             payload: Any) -> None:
    """Wrong shapes, unparseable times and wrong types raise ProviderBadResponse."""
    afklm_api(payload)
    with pytest.raises(ProviderBadResponse):
        adapter.fetch(QUERY)
