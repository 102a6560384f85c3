"""Cirium FlightStats Flex flight status v2 adapter: documented answers through the real
parser, the request it sends, its quirks (times twice, fs codes, codeshare answered by the
operator, several legs, errors with HTTP 200) and the mapping of every fault class
(docs/PROVIDERS.md section 6.4).

Contract fixtures (tests/fixtures/cirium/):
- ``aa100_dep_scheduled.json``: the recorded answer of ``/flight/status/AA/100/dep/2013/01/14``
  kept by the public client jlavallee/flightstats-client-scala
  (src/test/resources/flex/flightstatus/rest/v2/json/flight/status/AA/100/dep/2013/01/14...).
- ``fr111_answered_by_ldm111.json``: a recorded answer of ``/flight/status/FR/111/dep/2019/11/29``
  kept in a public Node client's test (quoted in docs/PROVIDERS.md §6.4): Ryanair 111 answered by
  Lauda (fs ``LDM``, IATA ``OE``) with FR 111 among its codeshares, landed, with a tail number.
The error body shape ``{"error": {"httpStatusCode", "errorCode", "errorId", "errorMessage"}}``
is the one of that client's FSError and docs/PROVIDERS.md section 6.4; the docs name no quota codes.
"""

from __future__ import annotations

import copy
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
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.logs import register_secrets
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers.cirium import STATUS, CiriumAdapter, parse_flight_statuses

FIXTURES = Path(__file__).parent / "fixtures" / "cirium"
BASE = "https://api.flightstats.com/flex/flightstatus/rest/v2/json"
APP_ID = "cirium-app-id-7c41"
APP_KEY = "cirium-app-key-e93b0f"

Serve = Callable[..., None]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.fixture
def adapter() -> CiriumAdapter:
    client = httpx.Client(base_url=BASE, timeout=5)
    return CiriumAdapter(client, ProviderSettings(
        credentials={"app_id": APP_ID, "app_key": APP_KEY}))


@pytest.fixture
def cirium_api(httpx_mock: HTTPXMock) -> Serve:
    """Factory: answer the next FlightStats call with a fixture file, a JSON value or raw
    bytes, and a status."""

    def serve(source: str | Any = None, *, status: int = 200, content: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        if isinstance(source, str):
            body = (FIXTURES / source).read_bytes()
        elif source is not None:
            body = json.dumps(source).encode()
        else:
            body = content or b""
        httpx_mock.add_response(status_code=status, content=body, headers=headers)

    return serve


# --- the request ---------------------------------------------------------------------------

def test_request_path_query_and_credentials_in_headers(
        adapter: CiriumAdapter, cirium_api: Serve, httpx_mock: HTTPXMock) -> None:
    """GET /flight/status/{carrier}/{number}/dep/{y}/{m}/{d} (no zero padding, as the API
    echoes it), codeType=IATA and useHttpErrors; appId/appKey travel as headers and never in
    the URL."""
    cirium_api("aa100_dep_scheduled.json")
    adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))
    request = httpx_mock.get_request()
    assert request is not None and request.method == "GET"
    assert request.url.host == "api.flightstats.com"
    assert request.url.path == "/flex/flightstatus/rest/v2/json/flight/status/AA/100/dep/2013/1/14"
    assert dict(request.url.params) == {"codeType": "IATA", "extendedOptions": "useHttpErrors"}
    assert (request.headers["appId"], request.headers["appKey"]) == (APP_ID, APP_KEY)
    assert APP_ID not in str(request.url) and APP_KEY not in str(request.url)


def test_icao_carrier_is_sent_with_code_type_icao(
        adapter: CiriumAdapter, cirium_api: Serve, httpx_mock: HTTPXMock) -> None:
    """A three-letter (ICAO) carrier is sent as given with codeType=ICAO, since without a
    codeType FlightStats would read it as its own fs code."""
    cirium_api({"flightStatuses": []})
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("TOM123", "2026-07-01"))
    request = httpx_mock.get_request()
    assert request is not None
    assert request.url.path.endswith("/flight/status/TOM/123/dep/2026/7/1")
    assert request.url.params["codeType"] == "ICAO"


def test_missing_credentials_is_a_config_error() -> None:
    """Both CIRIUM_APP_ID and CIRIUM_APP_KEY are needed; the error names them."""
    client = httpx.Client(base_url=BASE)
    with pytest.raises(ConfigError, match="CIRIUM_APP_ID and CIRIUM_APP_KEY"):
        CiriumAdapter(client, ProviderSettings(credentials={"app_id": APP_ID}))


# --- documented answers --------------------------------------------------------------------

def test_documented_scheduled_answer_maps_every_field(
        adapter: CiriumAdapter, cirium_api: Serve) -> None:
    """AA100 JFK-LHR of 14 Jan 2013 (recorded answer): dateUtc times, status S, terminals,
    the scheduled IATA equipment, the four marketing codeshares and AA as operator."""
    cirium_api("aa100_dep_scheduled.json")
    obs = adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))
    assert obs.provider == "cirium"
    assert obs.raw == (FIXTURES / "aa100_dep_scheduled.json").read_text()
    (leg,) = obs.legs
    assert (leg.origin, leg.destination) == ("JFK", "LHR")
    assert leg.status is FlightStatus.SCHEDULED
    assert leg.scheduled_departure == utc("2013-01-14T23:15")
    assert leg.scheduled_arrival == utc("2013-01-15T06:20")
    assert (leg.estimated_departure, leg.actual_departure) == (None, None)
    assert (leg.estimated_arrival, leg.actual_arrival) == (None, None)
    assert (leg.departure_terminal, leg.departure_gate) == ("8", None)
    assert (leg.arrival_terminal, leg.arrival_gate, leg.baggage_belt) == ("3", None, None)
    assert (leg.aircraft_type, leg.aircraft_registration) == ("777", None)
    assert leg.codeshares == ("BA1511", "LY8051", "IB4218", "GF6654")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("AA", 100)


def test_marketing_number_answered_by_the_operator(
        adapter: CiriumAdapter, cirium_api: Serve) -> None:
    """FR111 answered by LDM111 (recorded answer): the leg is kept for the asked FR111, the
    operator is recorded with its IATA code OE (fs LDM), FR111 is a codeshare; landed with a
    gate arrival is arrived; gates, actual equipment and tail number are carried over."""
    cirium_api("fr111_answered_by_ldm111.json")
    (leg,) = adapter.fetch(FlightQuery.parse("FR111", "2019-11-29")).legs
    assert (leg.origin, leg.destination) == ("PMI", "SXF")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("OE", 111)
    assert leg.codeshares == ("FR111",)
    assert leg.status is FlightStatus.ARRIVED
    assert leg.scheduled_departure == utc("2019-11-29T05:55")
    assert leg.estimated_departure == leg.actual_departure == utc("2019-11-29T05:55")
    assert leg.scheduled_arrival == utc("2019-11-29T08:40")
    assert leg.estimated_arrival == leg.actual_arrival == utc("2019-11-29T08:29")
    assert (leg.departure_gate, leg.arrival_gate) == ("C41", "D")
    assert (leg.departure_terminal, leg.arrival_terminal) == (None, None)
    assert (leg.aircraft_type, leg.aircraft_registration) == ("320", "OEIHH")


def test_operator_asked_under_its_iata_code_matches_its_fs_code() -> None:
    """Asked as OE111 (IATA), the LDM111 status is the asked flight: the appendix says the
    fs code LDM is IATA OE."""
    (leg,) = parse_flight_statuses(fixture("fr111_answered_by_ldm111.json"),
                                   FlightQuery.parse("OE111", "2019-11-29"))
    assert leg.operating_carrier == "OE"


def test_a_status_for_another_flight_is_not_the_asked_one() -> None:
    """A flightStatuses entry that is neither the asked designator nor carries it as a
    codeshare is not taken: asked for FR112 the FR111 answer is no such flight."""
    with pytest.raises(FlightNotFound):
        parse_flight_statuses(fixture("fr111_answered_by_ldm111.json"),
                              FlightQuery.parse("FR112", "2019-11-29"))


def test_local_time_without_utc_uses_the_appendix_zone() -> None:
    """Without dateUtc, dateLocal (no offset) is read in the appendix airport's
    timeZoneRegionName: 18:15 in America/New_York in January is 23:15 UTC."""
    body = fixture("aa100_dep_scheduled.json")
    status = body["flightStatuses"][0]
    for pair in [status["departureDate"], status["arrivalDate"],
                 *status["operationalTimes"].values()]:
        del pair["dateUtc"]
    (leg,) = parse_flight_statuses(body, FlightQuery.parse("AA100", "2013-01-14"))
    assert leg.scheduled_departure == utc("2013-01-14T23:15")
    assert leg.scheduled_arrival == utc("2013-01-15T06:20")


def test_local_time_falls_back_to_the_airport_table_without_appendix() -> None:
    """With neither dateUtc nor an appendix airport, the local time is placed with the
    airport table's zone (JFK: America/New_York)."""
    body = fixture("aa100_dep_scheduled.json")
    body["appendix"]["airports"] = []
    del body["flightStatuses"][0]["operationalTimes"]["scheduledGateDeparture"]["dateUtc"]
    (leg,) = parse_flight_statuses(body, FlightQuery.parse("AA100", "2013-01-14"))
    assert leg.scheduled_departure == utc("2013-01-14T23:15")


def test_non_iata_fs_carrier_maps_through_the_appendix() -> None:
    """TUI Airways is fs TOM, IATA BY: asked as BY123, the TOM123 status is the flight and
    its operator is BY."""
    body = fixture("aa100_dep_scheduled.json")
    body["appendix"]["airlines"].append(
        {"fs": "TOM", "iata": "BY", "icao": "TOM", "name": "TUI Airways", "active": True})
    status = body["flightStatuses"][0]
    status.update(carrierFsCode="TOM", flightNumber="123", codeshares=[])
    (leg,) = parse_flight_statuses(body, FlightQuery.parse("BY123", "2013-01-14"))
    assert (leg.operating_carrier, leg.operating_flight_number) == ("BY", 123)
    assert leg.codeshares == ()


def test_flight_number_without_leading_zeros_matches() -> None:
    """flightNumber "7" is the asked flight 0007 (numbers compare as numbers)."""
    body = fixture("aa100_dep_scheduled.json")
    body["flightStatuses"][0]["flightNumber"] = "7"
    (leg,) = parse_flight_statuses(body, FlightQuery.parse("AA0007", "2013-01-14"))
    assert leg.operating_flight_number == 7


def test_several_flight_statuses_are_legs_in_flying_order() -> None:
    """Two flightStatuses of one flight (JFK-LHR, then LHR-DXB, listed out of order) are two
    legs ordered by scheduled departure."""
    body = fixture("aa100_dep_scheduled.json")
    first = body["flightStatuses"][0]
    second = copy.deepcopy(first)
    second.update(departureAirportFsCode="LHR", arrivalAirportFsCode="DXB",
                  departureDate={"dateLocal": "2013-01-15T08:00:00.000",
                                 "dateUtc": "2013-01-15T08:00:00.000Z"},
                  arrivalDate={"dateLocal": "2013-01-15T18:00:00.000",
                               "dateUtc": "2013-01-15T14:00:00.000Z"},
                  operationalTimes={})
    body["flightStatuses"] = [second, first]
    legs = parse_flight_statuses(body, FlightQuery.parse("AA100", "2013-01-14"))
    assert [(leg.origin, leg.destination) for leg in legs] == [("JFK", "LHR"), ("LHR", "DXB")]
    assert legs[1].scheduled_departure == utc("2013-01-15T08:00")
    assert legs[1].scheduled_arrival == utc("2013-01-15T14:00")


def test_empty_flight_statuses_is_not_found(adapter: CiriumAdapter, cirium_api: Serve) -> None:
    """FlightStats answers an unknown flight with an empty flightStatuses array."""
    cirium_api({"request": {}, "appendix": {}, "flightStatuses": []})
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))


# --- statuses ------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "times", "delays", "expected"), [
    ("S", {}, {}, FlightStatus.SCHEDULED),
    ("S", {}, {"departureGateDelayMinutes": 25}, FlightStatus.DELAYED),
    ("A", {}, {}, FlightStatus.DEPARTED),
    ("A", {"actualRunwayDeparture": {"dateUtc": "2013-01-14T23:40:00.000Z"}}, {},
     FlightStatus.AIRBORNE),
    ("L", {}, {}, FlightStatus.LANDED),
    ("L", {"actualGateArrival": {"dateUtc": "2013-01-15T06:10:00.000Z"}}, {},
     FlightStatus.ARRIVED),
    ("C", {}, {}, FlightStatus.CANCELLED),
    ("D", {}, {}, FlightStatus.DIVERTED),
    ("R", {}, {}, FlightStatus.DIVERTED),
    ("DN", {}, {}, FlightStatus.UNKNOWN),
    ("NO", {}, {}, FlightStatus.CANCELLED),
    ("U", {}, {}, FlightStatus.UNKNOWN),
])
def test_every_documented_status_maps(code: str, times: dict[str, Any], delays: dict[str, int],
                                      expected: FlightStatus) -> None:
    """docs/PROVIDERS.md section 6.4 codes: S (delayed with a departure delay), A (airborne once the
    runway take-off is known), L (arrived once at the gate), C, D, R, DN, NO, U."""
    body = fixture("aa100_dep_scheduled.json")
    status = body["flightStatuses"][0]
    status["status"] = code
    status["operationalTimes"].update(times)
    status["delays"] = delays
    with capture_logs() as logs:
        (leg,) = parse_flight_statuses(body, FlightQuery.parse("AA100", "2013-01-14"))
    assert leg.status is expected
    assert not [e for e in logs if e["event"] == "provider.status.unknown"]
    assert set(STATUS) == {"S", "A", "L", "C", "D", "R", "DN", "NO", "U"}


def test_undocumented_status_is_unknown_with_one_warning() -> None:
    """A code outside the documented list is unknown, with one warning naming the provider
    and the code, and the answer still counts."""
    body = fixture("aa100_dep_scheduled.json")
    body["flightStatuses"][0]["status"] = "X"
    with capture_logs() as logs:
        (leg,) = parse_flight_statuses(body, FlightQuery.parse("AA100", "2013-01-14"))
    assert leg.status is FlightStatus.UNKNOWN
    warnings = [e for e in logs if e["event"] == "provider.status.unknown"]
    assert len(warnings) == 1
    assert (warnings[0]["provider"], warnings[0]["code"], warnings[0]["log_level"]) == (
        "cirium", "X", "warning")


def test_diverted_airport_is_mapped_to_iata() -> None:
    """divertedAirportFsCode becomes diverted_to through the appendix airports."""
    body = fixture("aa100_dep_scheduled.json")
    body["flightStatuses"][0].update(status="D", divertedAirportFsCode="LHR")
    (leg,) = parse_flight_statuses(body, FlightQuery.parse("AA100", "2013-01-14"))
    assert (leg.status, leg.diverted_to) == (FlightStatus.DIVERTED, "LHR")


# --- errors --------------------------------------------------------------------------------

def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"httpStatusCode": status, "errorId": "2f1c9b1e-8f1d-4f0b-9d7c-0a1b2c3d4e5f",
                      "errorMessage": message, "errorCode": code}}


@pytest.mark.parametrize(("http", "body", "error"), [
    (401, _error(401, "UNAUTHORIZED", "invalid appId or appKey"), ProviderAuthError),
    (403, _error(403, "FORBIDDEN", "application is not active"), ProviderAuthError),
    (403, _error(403, "FORBIDDEN", "this API is not included in your plan"),
     ProviderRequestRejected),
    (404, _error(404, "NOT_FOUND", "no flight"), FlightNotFound),
    (429, _error(429, "RATE_LIMIT_EXCEEDED", "too many requests"), ProviderRateLimited),
    (403, _error(403, "QUOTA_EXCEEDED", "The request quota of this application is used up"),
     ProviderQuotaExhausted),
    (400, _error(400, "BAD_REQUEST", "invalid date"), ProviderRequestRejected),
    (500, _error(500, "SERVER_ERROR", "internal"), ProviderUnavailable),
    (503, None, ProviderUnavailable),
    (200, None, ProviderBadResponse),
])
def test_every_fault_class_maps(adapter: CiriumAdapter, cirium_api: Serve, http: int,
                                body: dict[str, Any] | None,
                                error: type[ProviderError]) -> None:
    """Each HTTP error with its FlightStats error body (or none, as a gateway's page) maps to
    its class: 401 and an inactive application are auth, a plan refusal is a rejected
    request, quota is exhausted quota, 429 rate limited, 5xx unavailable, a body that is not
    JSON a bad response."""
    if body is None:
        cirium_api(status=http, content=b"<html>not json</html>")
    else:
        cirium_api(body, status=http, headers={"Retry-After": "7"} if http == 429 else None)
    with pytest.raises(error) as caught:
        adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))
    assert type(caught.value) is error
    if isinstance(caught.value, ProviderRateLimited):
        assert caught.value.retry_after == 7


@pytest.mark.parametrize(("embedded", "error"), [
    (_error(403, "FORBIDDEN", "application is not active"), ProviderAuthError),
    (_error(404, "NOT_FOUND", "no flight"), FlightNotFound),
    (_error(429, "RATE_LIMIT_EXCEEDED", "too many"), ProviderRateLimited),
    (_error(403, "USAGE_LIMIT_EXCEEDED", "limit reached"), ProviderQuotaExhausted),
    (_error(500, "SERVER_ERROR", "internal"), ProviderUnavailable),
    ({"error": {"errorMessage": "something failed"}}, ProviderUnavailable),
])
def test_error_body_with_http_200_is_an_error(adapter: CiriumAdapter, cirium_api: Serve,
                                              embedded: dict[str, Any],
                                              error: type[ProviderError]) -> None:
    """An error body sent with HTTP 200 (no useHttpErrors honoured) is read by its own
    httpStatusCode; without one it counts as a server error, never as a flight."""
    cirium_api(embedded, status=200)
    with pytest.raises(error):
        adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))


def test_timeout_and_connection_errors_map(adapter: CiriumAdapter,
                                           httpx_mock: HTTPXMock) -> None:
    """A read timeout is ProviderTimeout, a refused connection ProviderUnavailable."""
    httpx_mock.add_exception(httpx.ReadTimeout("slow"))
    with pytest.raises(ProviderTimeout):
        adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailable):
        adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))


@pytest.mark.parametrize("body", [
    [1, 2], {"flightStatuses": {"not": "a list"}}, {"no": "statuses"},
    {"flightStatuses": [{"carrierFsCode": "AA", "flightNumber": "100"}]},
    {"flightStatuses": [{"carrierFsCode": "AA", "flightNumber": "100",
                         "departureAirportFsCode": "JFK", "arrivalAirportFsCode": "LHR",
                         "departureDate": {"dateUtc": "yesterday"}}]},
])
def test_wrong_shapes_are_bad_responses(adapter: CiriumAdapter, cirium_api: Serve,
                                        body: Any) -> None:
    """Bodies of the wrong shape (not an object, no flightStatuses array, a status without
    airports, an unreadable time) are ProviderBadResponse, never a KeyError or TypeError."""
    cirium_api(body)
    with pytest.raises(ProviderBadResponse):
        adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))


def test_credentials_never_reach_logs_or_error_messages(
        adapter: CiriumAdapter, cirium_api: Serve, httpx_mock: HTTPXMock) -> None:
    """With the credentials registered as secrets as a run does, neither appId nor appKey
    appears in the URL, in any log event or in the message of any error raised, across an
    auth refusal, a plan refusal, a 400 and a 5xx."""
    register_secrets([APP_ID, APP_KEY])
    answers = [(401, _error(401, "UNAUTHORIZED", "invalid appId or appKey")),
               (403, _error(403, "FORBIDDEN", "not in your plan")),
               (400, _error(400, "BAD_REQUEST", "invalid")),
               (502, None)]
    seen: list[str] = []
    with capture_logs() as logs:
        for status, body in answers:
            if body is None:
                cirium_api(status=status, content=b"bad gateway")
            else:
                cirium_api(body, status=status)
            with pytest.raises(ProviderError) as caught:
                adapter.fetch(FlightQuery.parse("AA100", "2013-01-14"))
            seen += [str(caught.value), repr(caught.value.context)]
    seen += [str(request.url) for request in httpx_mock.get_requests()]
    seen += [json.dumps(event, default=str) for event in logs]
    assert len(httpx_mock.get_requests()) == len(answers)
    for text in seen:
        assert APP_ID not in text and APP_KEY not in text, text
