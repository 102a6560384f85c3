"""Aviationstack adapter: documented example answers through the real parser, the request it
sends, local times mislabelled ``+00:00``, codeshare copies, the free plan's refusal of
``flight_date`` and the mapping of every error class; the access key never leaves."""

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
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers import aviationstack
from flightsync.providers.aviationstack import AviationstackAdapter

FIXTURES = Path(__file__).parent / "fixtures" / "aviationstack"
BASE = "https://api.aviationstack.com/v1"
KEY = "avs-test-key-7d41c9"

Serve = Callable[..., None]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_plan_memory() -> Iterator[None]:
    # The refusal of flight_date is remembered per process; each test starts without it.
    aviationstack._DATE_REFUSED.clear()
    yield
    aviationstack._DATE_REFUSED.clear()


def make_adapter(key: str = KEY) -> AviationstackAdapter:
    client = httpx.Client(base_url=BASE, timeout=5)
    return AviationstackAdapter(client, ProviderSettings(credentials={"api_key": key}))


@pytest.fixture
def adapter() -> AviationstackAdapter:
    return make_adapter()


@pytest.fixture
def api(httpx_mock: HTTPXMock) -> Serve:
    """Factory: answer the next call with a fixture file, a JSON value or raw bytes."""

    def serve(fixture: str | None = None, *, status: int = 200, payload: Any = None,
              content: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        if fixture is not None:
            body = (FIXTURES / fixture).read_bytes()
        elif payload is not None:
            body = json.dumps(payload).encode()
        else:
            body = content or b""
        httpx_mock.add_response(status_code=status, content=body, headers=headers)

    return serve


def error(code: str, message: str = "provider text 0x5f") -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def record(flight: str = "LH400", day: str = "2026-02-25", *, origin: str = "FRA",
           destination: str = "JFK", departs: str = "10:05", arrives: str = "12:55",
           status: str = "scheduled", codeshared: str | None = None,
           gate: str = "Z25") -> dict[str, Any]:
    """One record in the documented shape; ``codeshared`` makes it a marketing copy of that
    operating flight. Times are local wall clock labelled +00:00, as the API sends them."""
    zones = {"FRA": "Europe/Berlin", "JFK": "America/New_York", "MUC": "Europe/Berlin",
             "BUD": "Europe/Budapest"}
    shared = None if codeshared is None else {
        "airline_name": "lufthansa", "airline_iata": codeshared[:2].lower(),
        "airline_icao": "dlh", "flight_number": codeshared[2:],
        "flight_iata": codeshared.lower(), "flight_icao": None}
    return {
        "flight_date": day, "flight_status": status,
        "departure": {"airport": origin, "timezone": zones[origin], "iata": origin,
                      "icao": None, "terminal": "1", "gate": gate, "delay": None,
                      "scheduled": f"{day}T{departs}:00+00:00", "estimated": None,
                      "actual": None, "estimated_runway": None, "actual_runway": None},
        "arrival": {"airport": destination, "timezone": zones[destination],
                    "iata": destination, "icao": None, "terminal": "4", "gate": "B3",
                    "baggage": "7", "delay": None, "scheduled": f"{day}T{arrives}:00+00:00",
                    "estimated": None, "actual": None, "estimated_runway": None,
                    "actual_runway": None},
        "airline": {"name": "x", "iata": flight[:2], "icao": None},
        "flight": {"number": flight[2:], "iata": flight, "icao": None, "codeshared": shared},
        "aircraft": {"registration": "D-AIXA", "iata": "359", "icao": "A359", "icao24": "3C"},
        "live": None,
    }


def page(*records: dict[str, Any], total: int | None = None) -> dict[str, Any]:
    count = len(records)
    return {"pagination": {"limit": 100, "offset": 0, "count": count,
                           "total": count if total is None else total},
            "data": list(records)}


LH400 = FlightQuery.parse("LH400", "2026-02-25")


# --- the request --------------------------------------------------------------------------

def test_request_sends_designator_date_limit_and_key(
        adapter: AviationstackAdapter, api: Serve, httpx_mock: HTTPXMock) -> None:
    """GET {base}/flights with flight_iata (no suffix), flight_date, a one-page limit and the
    access_key query parameter; no auth header."""
    api(payload=page(record()))
    adapter.fetch(FlightQuery.parse("lh 400", "2026-02-25"))
    request = httpx_mock.get_request()
    assert request is not None
    assert request.method == "GET"
    assert (request.url.host, request.url.path) == ("api.aviationstack.com", "/v1/flights")
    assert dict(request.url.params) == {"flight_iata": "LH400", "flight_date": "2026-02-25",
                                        "limit": "100", "access_key": KEY}
    assert "authorization" not in request.headers


# --- documented examples ------------------------------------------------------------------

def test_documented_example_reads_local_times_in_the_airport_zone(
        adapter: AviationstackAdapter, api: Serve) -> None:
    """The example of aviationstack.com/documentation (``/flights``, AA1004 SFO-DFW): every
    ``+00:00`` time is read as the wall clock of its airport (America/Los_Angeles,
    America/Chicago), and every field lands where docs/PROVIDERS.md section 7 says."""
    api("flights_docs_example.json")
    observation = adapter.fetch(FlightQuery.parse("AA1004", "2019-12-12"))
    (leg,) = observation.legs
    assert (leg.origin, leg.destination) == ("SFO", "DFW")
    assert leg.scheduled_departure == utc("2019-12-12T12:20:00")      # 04:20 PST
    assert leg.estimated_departure == utc("2019-12-12T12:20:00")
    assert leg.actual_departure == utc("2019-12-12T12:20:13")
    assert leg.scheduled_arrival == utc("2019-12-12T10:20:00")        # 04:20 CST
    assert leg.actual_arrival is None
    # Active with a runway time: in the air.
    assert leg.status is FlightStatus.AIRBORNE
    assert (leg.departure_terminal, leg.departure_gate) == ("2", "D11")
    assert (leg.arrival_terminal, leg.arrival_gate, leg.baggage_belt) == ("A", "A22", "A17")
    assert (leg.aircraft_type, leg.aircraft_registration) == ("A321", "N160AN")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("AA", 1004)
    assert leg.codeshares is None
    # live.updated is a position report time, stamped in UTC.
    assert observation.updated_at == utc("2019-12-12T10:00:00")


def test_issue_2_answer_is_read_in_singapore_and_kuala_lumpur_time(
        adapter: AviationstackAdapter, api: Serve) -> None:
    """The answer quoted in apilayer/aviationstack issue 2 (TR428 SIN-PEN, times that are
    local UTC+8 wall clock labelled +00:00) gives the real UTC instants; ``landed`` is
    landed; the registration loses its dash like every provider's."""
    api("flights_issue2_tr428.json")
    (leg,) = adapter.fetch(FlightQuery.parse("TR428", "2020-02-04")).legs
    assert leg.scheduled_departure == utc("2020-02-04T12:25:00")
    assert leg.actual_departure == utc("2020-02-04T12:38:00")
    assert leg.scheduled_arrival == utc("2020-02-04T13:50:00")
    assert leg.actual_arrival == utc("2020-02-04T13:33:00")
    assert leg.status is FlightStatus.LANDED
    assert (leg.departure_terminal, leg.departure_gate) == ("1", "D35")
    assert (leg.arrival_terminal, leg.arrival_gate, leg.baggage_belt) == ("I", None, None)
    assert (leg.aircraft_type, leg.aircraft_registration) == ("A320", "9VTAU")


def test_marketing_copy_becomes_the_operating_flight(adapter: AviationstackAdapter,
                                                     api: Serve) -> None:
    """A marketing record as captured in FlyTrackers/FlyTrackers (MU1833, ``codeshared``
    KL1721 in lower case): the leg is KL1721's, with MU1833 as its codeshare; summer time
    in Amsterdam and Brussels (UTC+2 on 2 April 2022)."""
    api("flights_codeshare_mu1833.json")
    (leg,) = adapter.fetch(FlightQuery.parse("MU1833", "2022-04-02")).legs
    assert (leg.operating_carrier, leg.operating_flight_number) == ("KL", 1721)
    assert leg.codeshares == ("MU1833",)
    assert leg.scheduled_departure == utc("2022-04-02T04:45:00")
    assert leg.scheduled_arrival == utc("2022-04-02T05:30:00")
    assert leg.status is FlightStatus.SCHEDULED
    assert leg.aircraft_type is None


# --- the quirks ---------------------------------------------------------------------------

def test_codeshare_copies_collapse_to_one_operating_leg(adapter: AviationstackAdapter,
                                                        api: Serve) -> None:
    """Copies listed before the operating record (one with a stale departure time) still
    give one leg, taken from the operating record (its gate and time), with the copies'
    designators as codeshares, in order."""
    copies = [record("UA9050", codeshared="LH400", gate="COPY"),
              record("AC6701", codeshared="LH400", gate="COPY", departs="09:55")]
    api(payload=page(*copies, record("LH400"), copies[0]))
    (leg,) = adapter.fetch(LH400).legs
    assert leg.codeshares == ("UA9050", "AC6701")
    assert leg.departure_gate == "Z25"
    assert leg.scheduled_departure == utc("2026-02-25T09:05:00")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("LH", 400)


def test_legs_in_flying_order_and_other_dates_dropped(adapter: AviationstackAdapter,
                                                      api: Serve) -> None:
    """Records of other dates are not the queried flight; the legs come out sorted by their
    departure instant, whatever the record order."""
    api(payload=page(
        record(origin="JFK", destination="FRA", departs="18:00", arrives="23:50"),
        record(day="2026-02-24"),
        record(origin="MUC", destination="JFK", departs="09:00", arrives="12:00"),
        record(day="2026-02-26")))
    legs = adapter.fetch(LH400).legs
    assert [(leg.origin, leg.destination) for leg in legs] == [("MUC", "JFK"), ("JFK", "FRA")]
    assert legs[0].scheduled_departure == utc("2026-02-25T08:00:00")


def test_record_without_flight_date_is_dated_by_its_local_departure(
        adapter: AviationstackAdapter, api: Serve) -> None:
    """Without ``flight_date``, the local date of the departure time places the record: a
    00:30 departure in Frankfurt is on the 25th though it is 23:30 UTC on the 24th."""
    early = record(departs="00:30")
    del early["flight_date"]
    api(payload=page(early))
    (leg,) = adapter.fetch(LH400).legs
    assert leg.scheduled_departure == utc("2026-02-24T23:30:00")


@pytest.mark.parametrize("label", ["+00:00", "+05:00", "Z", ""])
def test_the_offset_label_is_never_trusted(adapter: AviationstackAdapter, api: Serve,
                                           label: str) -> None:
    """Whatever offset the time carries (or none), 10:05 is Frankfurt's wall clock."""
    item = record()
    item["departure"]["scheduled"] = f"2026-02-25T10:05:00{label}"
    api(payload=page(item))
    (leg,) = adapter.fetch(LH400).legs
    assert leg.scheduled_departure == utc("2026-02-25T09:05:00")


def test_summer_time_follows_the_zone_rules(adapter: AviationstackAdapter, api: Serve) -> None:
    """The same wall clock is UTC+1 in February and UTC+2 in July in Frankfurt."""
    api(payload=page(record(day="2026-07-15")))
    (leg,) = adapter.fetch(FlightQuery.parse("LH400", "2026-07-15")).legs
    assert leg.scheduled_departure == utc("2026-07-15T08:05:00")
    assert leg.scheduled_arrival == utc("2026-07-15T16:55:00")    # New York, EDT


def test_missing_or_unknown_zone_falls_back_to_the_airport_table(
        adapter: AviationstackAdapter, api: Serve) -> None:
    """A missing or unknown ``timezone`` is taken from the airport table by IATA code."""
    item = record()
    item["departure"]["timezone"] = None
    item["arrival"]["timezone"] = "Mars/Olympus_Mons"
    api(payload=page(item))
    (leg,) = adapter.fetch(LH400).legs
    assert leg.scheduled_departure == utc("2026-02-25T09:05:00")
    assert leg.scheduled_arrival == utc("2026-02-25T17:55:00")


def test_time_at_an_airport_without_a_zone_is_bad_response(adapter: AviationstackAdapter,
                                                           api: Serve) -> None:
    """No zone and an airport the table does not know: a guessed zone would store a wrong
    instant, so the answer is refused."""
    item = record()
    item["departure"].update(timezone=None, iata="QQQ")
    api(payload=page(item))
    with pytest.raises(ProviderBadResponse, match="time zone"):
        adapter.fetch(LH400)


# --- statuses -------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "change", "expected"), [
    ("scheduled", {}, FlightStatus.SCHEDULED),
    ("scheduled", {"delay": 20}, FlightStatus.DELAYED),
    ("active", {}, FlightStatus.DEPARTED),
    ("active", {"actual_runway": "2026-02-25T10:20:00+00:00"}, FlightStatus.AIRBORNE),
    ("landed", {}, FlightStatus.LANDED),
    ("cancelled", {}, FlightStatus.CANCELLED),
    ("diverted", {}, FlightStatus.DIVERTED),
    ("incident", {}, FlightStatus.UNKNOWN),
])
def test_documented_statuses(adapter: AviationstackAdapter, api: Serve, status: str,
                             change: dict[str, Any], expected: FlightStatus) -> None:
    """Each documented ``flight_status`` maps to our vocabulary (docs/PROVIDERS.md section 8),
    refined by the departure delay and the take-off time, without any warning."""
    item = record(status=status)
    item["departure"].update(change)
    api(payload=page(item))
    with capture_logs() as logs:
        (leg,) = adapter.fetch(LH400).legs
    assert leg.status is expected
    assert [e for e in logs if e["log_level"] == "warning"] == []


def test_undocumented_status_is_unknown_with_one_warning(adapter: AviationstackAdapter,
                                                         api: Serve) -> None:
    """An undocumented status is ``unknown`` and one warning names the provider and code."""
    api(payload=page(record(status="boarding"), record("UA9050", codeshared="LH400",
                                                       status="boarding")))
    with capture_logs() as logs:
        (leg,) = adapter.fetch(LH400).legs
    assert leg.status is FlightStatus.UNKNOWN
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert (warnings[0]["provider"], warnings[0]["code"]) == ("aviationstack", "boarding")


# --- the free plan and flight_date --------------------------------------------------------

def _params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def test_plan_refusal_falls_back_to_filtering_by_date_and_is_remembered(
        api: Serve, httpx_mock: HTTPXMock) -> None:
    """403 function_access_restricted for flight_date: the same flight is asked again without
    it and the records of other dates are dropped; later lookups of that account (another
    flight, another adapter object) go without flight_date at once; another key still asks
    with it."""
    api(status=403, payload=error("function_access_restricted"))
    api(payload=page(record(day="2026-02-24", gate="A1"), record(), record(day="2026-02-26")))
    with capture_logs() as logs:
        (leg,) = make_adapter().fetch(LH400).legs
    assert leg.departure_gate == "Z25"
    first, second = httpx_mock.get_requests()
    assert "flight_date" in _params(first)
    assert "flight_date" not in _params(second)
    assert sum(e["event"] == "provider.plan.date_refused" for e in logs) == 1

    api(payload=page(record("LH401")))
    make_adapter().fetch(FlightQuery.parse("LH401", "2026-02-25"))
    assert "flight_date" not in _params(httpx_mock.get_requests()[-1])

    api(payload=page(record()))
    make_adapter("another-key").fetch(LH400)
    assert _params(httpx_mock.get_requests()[-1])["flight_date"] == "2026-02-25"


def test_plan_refusal_without_flight_date_is_a_refused_request(
        api: Serve, httpx_mock: HTTPXMock) -> None:
    """When even the undated request is refused, that is a refused request: not retried, not
    held against the provider's breaker, and asked twice at most."""
    api(status=403, payload=error("function_access_restricted"))
    api(status=403, payload=error("function_access_restricted"))
    with pytest.raises(ProviderRequestRejected) as caught:
        make_adapter().fetch(LH400)
    assert caught.value.counts_for_breaker is False
    assert caught.value.retryable is False
    assert len(httpx_mock.get_requests()) == 2


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "body", "expected"), [
    (401, error("invalid_access_key"), ProviderAuthError),
    (401, error("missing_access_key"), ProviderAuthError),
    (401, error("inactive_user"), ProviderAuthError),
    (403, error("https_access_restricted"), ProviderRequestRejected),
    (404, error("invalid_api_function"), ProviderBadResponse),
    (404, None, FlightNotFound),
    (422, {"error": {"code": "validation_error", "message": "Request failed",
                     "context": {"flight_iata": [{"key": "invalid", "message": "x"}]}}},
     ProviderRequestRejected),
    (429, error("usage_limit_reached"), ProviderQuotaExhausted),
    (200, error("usage_limit_reached"), ProviderQuotaExhausted),
    (500, error("internal_error"), ProviderUnavailable),
    (503, None, ProviderUnavailable),
    (418, error("something_new"), ProviderRequestRejected),
    (200, error("something_new"), ProviderBadResponse),
])
def test_error_answers_map_to_the_error_tree(adapter: AviationstackAdapter, api: Serve,
                                             status: int, body: Any,
                                             expected: type[ProviderError]) -> None:
    """Each documented error code (and an undocumented one, by its HTTP status) becomes its
    ProviderError; the error code is named, the body is not quoted."""
    api(status=status, payload=body, content=b"" if body is None else None)
    with pytest.raises(ProviderError) as caught:
        adapter.fetch(LH400)
    assert type(caught.value) is expected
    if body is not None:
        assert body["error"]["code"] in caught.value.message
        assert "provider text" not in caught.value.message


def test_quota_is_not_retried_and_rate_limit_is(adapter: AviationstackAdapter,
                                                api: Serve) -> None:
    """Both come as 429: usage_limit_reached (monthly quota) is final, rate_limit_reached is
    retried after its Retry-After."""
    api(status=429, payload=error("usage_limit_reached"))
    with pytest.raises(ProviderQuotaExhausted) as quota:
        adapter.fetch(LH400)
    assert quota.value.retryable is False
    api(status=429, payload=error("rate_limit_reached"), headers={"Retry-After": "7"})
    with pytest.raises(ProviderRateLimited) as rate:
        adapter.fetch(LH400)
    assert rate.value.retryable is True
    assert rate.value.retry_after == 7


@pytest.mark.parametrize(("exc", "expected"), [
    (httpx.ReadTimeout("slow"), ProviderTimeout),
    (httpx.ConnectError("refused"), ProviderUnavailable),
])
def test_transport_failure_maps_to_error(adapter: AviationstackAdapter, httpx_mock: HTTPXMock,
                                         exc: Exception, expected: type[ProviderError]) -> None:
    """A timeout is ProviderTimeout, a refused connection ProviderUnavailable."""
    httpx_mock.add_exception(exc)
    with pytest.raises(expected):
        adapter.fetch(LH400)


@pytest.mark.parametrize("content", [b'{"data": [', b"<html>502</html>", b'["data"]',
                                     b'{"data": {"flight_date": "x"}}', b'{"data": [7]}'])
def test_malformed_or_wrong_shape_body_is_bad_response(adapter: AviationstackAdapter,
                                                       api: Serve, content: bytes) -> None:
    """A body that is not JSON, or JSON of the wrong shape, is ProviderBadResponse."""
    api(content=content)
    with pytest.raises(ProviderBadResponse):
        adapter.fetch(LH400)


def test_empty_data_is_not_found(adapter: AviationstackAdapter, api: Serve) -> None:
    """Aviationstack says "no such flight" with an empty page: FlightNotFound."""
    api(payload=page())
    with pytest.raises(FlightNotFound):
        adapter.fetch(LH400)


def test_more_records_than_one_page_are_logged(adapter: AviationstackAdapter,
                                               api: Serve) -> None:
    """One page is read; a total beyond it is said in a warning, the page still counts."""
    api(payload=page(record(), total=250))
    with capture_logs() as logs:
        adapter.fetch(LH400)
    assert [e["total"] for e in logs if e["event"] == "provider.page.truncated"] == [250]


# --- the key stays secret -----------------------------------------------------------------

_ALL_FAULTS: tuple[tuple[int, Any], ...] = (
    (401, error("invalid_access_key")), (403, error("https_access_restricted")),
    (404, None), (418, error("x")), (422, error("validation_error")),
    (429, error("usage_limit_reached")), (429, error("rate_limit_reached")),
    (500, error("internal_error")), (502, None), (200, None),
)


@pytest.mark.parametrize(("status", "body"), _ALL_FAULTS)
def test_access_key_is_in_no_error_or_log(api: Serve, status: int, body: Any) -> None:
    """The key is a query parameter by the provider's design: no error message, error
    context, chained cause or log line of any failure (nor of the plan fallback) holds it,
    even when the provider echoes the request URL back in its body."""
    echoed = f"{BASE}/flights?access_key={KEY}&flight_iata=LH400"
    api(status=403, payload=error("function_access_restricted", echoed))
    payload = copy.deepcopy(body)
    if isinstance(payload, dict):
        payload["error"]["message"] = echoed
    api(status=status, payload=payload, content=echoed.encode() if payload is None else None)
    with capture_logs() as logs, pytest.raises(ProviderError) as caught:
        make_adapter().fetch(LH400)
    seen = [caught.value.message, str(caught.value), repr(caught.value.context),
            repr(caught.value.__cause__), json.dumps(logs, default=str)]
    assert not [text for text in seen if KEY in text]


def test_missing_key_is_config_error() -> None:
    """Without an access key the adapter refuses to start, naming the variable to set."""
    with pytest.raises(ConfigError, match="AVIATIONSTACK_ACCESS_KEY"):
        AviationstackAdapter(httpx.Client(base_url=BASE), ProviderSettings(credentials={}))


def test_class_attributes_describe_the_provider() -> None:
    """Every carrier, below the airlines and FlightAware, no suffixes, one key variable."""
    cls = AviationstackAdapter
    assert (cls.name, cls.default_base_url) == ("aviationstack", BASE)
    assert cls.default_carriers is None
    assert cls.default_priority < 20
    assert cls.serves_operational_suffix is False
    assert (cls.credential_env, cls.uses_oauth) == (("AVIATIONSTACK_ACCESS_KEY",), False)
