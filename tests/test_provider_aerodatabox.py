"""AeroDataBox adapter: contract tests on published answers in both schemas (through the real
parser), the request it sends on each marketplace, and the mapping of every fault class.

Where the fixtures come from (all under tests/fixtures/aerodatabox/):
- ``vj84_newer_schema.json``: the newer ``{utc, local}`` schema, a VietJet BNE-SGN answer of
  January 2025 published as sample JSON in tuxy/airo (Kotlin flight-data parser), verbatim.
- ``kl1167_older_schema_codeshares.json``: the older flat schema, six copies of one KLM
  AMS-HEL flight of 2023-01-10 (operator KL 1167, codeshares GA/MH/AF/CZ/DL) from
  maxvanwijnen/am-i-delayed: src/functions/getTestFlightTrackerObject.js; the copies are taken
  verbatim, the other flights of that capture left out.
- ``ei277_changeover_both_schemas.json``: answers of August 2023 that carry both schemas, an
  Aer Lingus BHX-DUB flight and its BA 2107 codeshare copy, from mmicleus/airport-app:
  src/app/services/data.service.ts (a FIDS capture: the arrival airport, given beside the
  flight there, is put inside ``arrival.airport`` as the flight-status answer has it).
- ``kl419_multi_leg.json``: constructed in the documented newer schema (no published capture
  of a multi-leg answer was found); error bodies follow the spec's ``ErrorContract``.
The field list, status enum and error statuses are the provider's OpenAPI v1.14.0.0
(api-evangelist/aerodatabox: openapi/aerodatabox-flight-api-api-openapi.yml).
"""

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
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus
from flightsync.providers.aerodatabox import AeroDataBoxAdapter, aircraft_designator

FIXTURES = Path(__file__).parent / "fixtures" / "aerodatabox"
API_MARKET = "https://prod.api.market/api/v1/aedbx/aerodatabox"
RAPIDAPI = "https://aerodatabox.p.rapidapi.com"
KEY = "adb-test-key-789"

Serve = Callable[..., None]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_adapter(base: str = API_MARKET) -> AeroDataBoxAdapter:
    client = httpx.Client(base_url=base, timeout=5)
    return AeroDataBoxAdapter(client, ProviderSettings(credentials={"api_key": KEY}))


@pytest.fixture
def adapter() -> AeroDataBoxAdapter:
    return make_adapter()


@pytest.fixture
def adb_api(httpx_mock: HTTPXMock) -> Serve:
    """Factory: answer the next call with a fixture file (or a payload, or raw bytes)."""

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


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# --- the request -----------------------------------------------------------------------------

def test_api_market_request_path_query_and_key(adapter: AeroDataBoxAdapter, adb_api: Serve,
                                               httpx_mock: HTTPXMock) -> None:
    """GET {base}/flights/number/{designator}/{local date}?dateLocalRole=Departure with the key
    in x-magicapi-key (API.market, the default base URL), and no RapidAPI header."""
    adb_api("vj84_newer_schema.json")
    adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    request = httpx_mock.get_request()
    assert request is not None and request.method == "GET"
    assert request.url.host == "prod.api.market"
    assert request.url.path == "/api/v1/aedbx/aerodatabox/flights/number/VJ84/2025-01-16"
    assert dict(request.url.params) == {"dateLocalRole": "Departure"}
    assert request.headers["x-magicapi-key"] == KEY
    assert "x-rapidapi-key" not in request.headers


def test_rapidapi_base_url_sends_rapidapi_headers(adb_api: Serve,
                                                  httpx_mock: HTTPXMock) -> None:
    """On RapidAPI's host the key goes in X-RapidAPI-Key with X-RapidAPI-Host beside it, and
    the API.market header is not sent."""
    adb_api("vj84_newer_schema.json")
    make_adapter(RAPIDAPI).fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    request = httpx_mock.get_request()
    assert request is not None
    assert request.url.path == "/flights/number/VJ84/2025-01-16"
    assert request.headers["x-rapidapi-key"] == KEY
    assert request.headers["x-rapidapi-host"] == "aerodatabox.p.rapidapi.com"
    assert "x-magicapi-key" not in request.headers


# --- contract: both schemas ------------------------------------------------------------------

def test_newer_schema_maps_every_field(adapter: AeroDataBoxAdapter, adb_api: Serve) -> None:
    """The newer schema: scheduledTime/revisedTime/predictedTime ``{utc, local}`` with a space
    and minutes become UTC times; before departure the revised time is an estimate and the
    arrival's predicted time stands in for a revised one; Expected is scheduled; a family model
    name (A330) stays as written; lastUpdatedUtc is the update time."""
    adb_api("vj84_newer_schema.json")
    observation = adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    (leg,) = observation.legs
    assert (leg.origin, leg.destination) == ("BNE", "SGN")
    assert leg.status is FlightStatus.SCHEDULED
    assert leg.scheduled_departure == utc("2025-01-16T13:40")
    assert leg.estimated_departure == utc("2025-01-16T13:40")
    assert leg.actual_departure is None
    assert leg.scheduled_arrival == utc("2025-01-16T22:05")
    assert leg.estimated_arrival == utc("2025-01-16T21:35")
    assert leg.actual_arrival is None
    assert (leg.departure_terminal, leg.departure_gate) == ("I", "79")
    assert (leg.arrival_terminal, leg.arrival_gate, leg.baggage_belt) == ("2", None, None)
    assert (leg.aircraft_type, leg.aircraft_registration) == ("Airbus A330", None)
    assert (leg.operating_carrier, leg.operating_flight_number) == ("VJ", 84)
    assert leg.codeshares is None
    assert observation.updated_at == utc("2025-01-14T14:45")
    assert observation.provider == "aerodatabox"


def test_older_flat_schema_with_codeshare_copies(adapter: AeroDataBoxAdapter,
                                                 adb_api: Serve) -> None:
    """The older schema: scheduledTimeUtc/actualTimeUtc strings; after arrival actualTimeUtc is
    the actual time at both ends; six copies of one flight collapse to the IsOperator one
    (KL 1167, its carrier read from the number when ``airline`` has no code) with the other
    five numbers as codeshares; the model name becomes its ICAO designator."""
    adb_api("kl1167_older_schema_codeshares.json")
    observation = adapter.fetch(FlightQuery.parse("KL1167", "2023-01-10"))
    (leg,) = observation.legs
    assert (leg.origin, leg.destination) == ("AMS", "HEL")
    assert leg.status is FlightStatus.ARRIVED
    assert leg.scheduled_departure == utc("2023-01-10T08:45")
    assert leg.actual_departure == utc("2023-01-10T08:47")
    assert leg.estimated_departure is None
    assert leg.scheduled_arrival == utc("2023-01-10T11:10")
    assert leg.actual_arrival == utc("2023-01-10T10:55")
    assert leg.estimated_arrival is None
    assert (leg.departure_terminal, leg.departure_gate) == ("1", "C7")
    assert (leg.arrival_terminal, leg.baggage_belt) == ("2", "10")
    assert (leg.aircraft_type, leg.aircraft_registration) == ("B738", "PHBXB")
    assert leg.codeshares == ("AF3242", "CZ7656", "DL9312", "GA9768", "MH5649")
    assert (leg.operating_carrier, leg.operating_flight_number) == ("KL", 1167)
    assert observation.updated_at == utc("2023-01-10T11:05")


def test_marketing_number_gives_the_operating_flight(adapter: AeroDataBoxAdapter,
                                                     adb_api: Serve) -> None:
    """Asked for BA2107, an answer carrying both schemas (change-over 2023) holds the BA copy
    and the operator EI 277: the operator's values win (Arrived, its gate, belt, runway-backed
    times, registration) and BA2107 is recorded as its codeshare."""
    adb_api("ei277_changeover_both_schemas.json")
    (leg,) = adapter.fetch(FlightQuery.parse("BA2107", "2023-08-01")).legs
    assert (leg.origin, leg.destination) == ("BHX", "DUB")
    assert leg.status is FlightStatus.ARRIVED
    assert (leg.operating_carrier, leg.operating_flight_number) == ("EI", 277)
    assert leg.codeshares == ("BA2107",)
    assert leg.scheduled_departure == utc("2023-08-01T19:45")
    assert leg.actual_departure == utc("2023-08-01T20:05")
    assert leg.actual_arrival == utc("2023-08-01T21:10")
    assert (leg.arrival_terminal, leg.arrival_gate, leg.baggage_belt) == ("2", "416", "2")
    assert (leg.aircraft_type, leg.aircraft_registration) == ("A320", "EIDER")


def test_codeshare_copy_alone_names_no_operator(adapter: AeroDataBoxAdapter,
                                                adb_api: Serve) -> None:
    """With only an IsCodeshared copy in the answer, its own values count, the asked number is
    a codeshare and the operator is left unsaid rather than guessed."""
    adb_api(payload=fixture("ei277_changeover_both_schemas.json")[:1])
    (leg,) = adapter.fetch(FlightQuery.parse("BA2107", "2023-08-01")).legs
    assert leg.status is FlightStatus.DELAYED
    assert leg.codeshares == ("BA2107",)
    assert (leg.operating_carrier, leg.operating_flight_number) == (None, None)


def test_several_legs_in_flying_order_on_the_local_date(adapter: AeroDataBoxAdapter,
                                                        adb_api: Serve) -> None:
    """Several items are several legs, ordered by scheduled departure whatever the answer's
    order; a leg leaving on the next local date is not part of the date's flight."""
    adb_api("kl419_multi_leg.json")
    legs = adapter.fetch(FlightQuery.parse("KL419", "2026-03-02")).legs
    assert [(leg.origin, leg.destination) for leg in legs] == [("AMS", "RUH"), ("RUH", "DXB")]
    # Flying order, not airport order: a first origin that sorts after the second stays first.
    body = fixture("kl419_multi_leg.json")
    body[1]["departure"]["airport"].update(iata="TXL", icao="EDDT", timeZone="Europe/Berlin")
    adb_api(payload=body)
    moved = adapter.fetch(FlightQuery.parse("KL419", "2026-03-02")).legs
    assert [leg.origin for leg in moved] == ["TXL", "RUH"]
    assert legs[0].status is FlightStatus.DELAYED
    assert legs[0].estimated_departure == utc("2026-03-02T11:05")
    assert legs[0].estimated_arrival == utc("2026-03-02T17:10")
    assert legs[0].aircraft_type == "B77W"
    assert legs[1].scheduled_arrival == utc("2026-03-02T20:30")


def test_airport_without_iata_code_via_icao(adapter: AeroDataBoxAdapter,
                                            adb_api: Serve) -> None:
    """An airport given only by ICAO code gets its IATA code from airportsdata (EFHK is HEL)."""
    body = fixture("kl1167_older_schema_codeshares.json")[:1]
    del body[0]["arrival"]["airport"]["iata"]
    adb_api(payload=body)
    (leg,) = adapter.fetch(FlightQuery.parse("KL1167", "2023-01-10")).legs
    assert leg.destination == "HEL"


def test_airport_without_any_known_code(adapter: AeroDataBoxAdapter, adb_api: Serve) -> None:
    """A destination with no code that maps to IATA is left unsaid; an origin like that cannot
    key a leg, so that item is skipped and, nothing else matching, the flight is not found."""
    body = fixture("vj84_newer_schema.json")
    body[0]["arrival"]["airport"] = {"icao": "ZZZZ", "name": "Somewhere"}
    adb_api(payload=body)
    (leg,) = adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16")).legs
    assert leg.destination is None and leg.origin == "BNE"
    body[0]["departure"]["airport"] = {"name": "Nowhere"}
    adb_api(payload=body)
    with capture_logs() as logs, pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    assert any(e["event"] == "provider.flight.skipped" for e in logs)


# --- statuses ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "expected"), [
    ("Expected", FlightStatus.SCHEDULED), ("CheckIn", FlightStatus.SCHEDULED),
    ("Boarding", FlightStatus.BOARDING), ("GateClosed", FlightStatus.BOARDING),
    ("Delayed", FlightStatus.DELAYED), ("Departed", FlightStatus.DEPARTED),
    ("EnRoute", FlightStatus.AIRBORNE), ("Approaching", FlightStatus.AIRBORNE),
    ("Arrived", FlightStatus.ARRIVED), ("Canceled", FlightStatus.CANCELLED),
    ("Diverted", FlightStatus.DIVERTED), ("CanceledUncertain", FlightStatus.UNKNOWN),
    ("Unknown", None),
])
def test_every_documented_status(adapter: AeroDataBoxAdapter, adb_api: Serve, code: str,
                                 expected: FlightStatus | None) -> None:
    """Each value of the spec's FlightStatus enum maps to our vocabulary; ``Unknown`` (status
    not available) leaves it unsaid and ``CanceledUncertain`` is not taken as a cancellation."""
    body = fixture("vj84_newer_schema.json")
    body[0]["status"] = code
    adb_api(payload=body)
    (leg,) = adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16")).legs
    assert leg.status is expected


def test_departed_with_a_take_off_time_is_airborne(adapter: AeroDataBoxAdapter,
                                                   adb_api: Serve) -> None:
    """Departed plus a departure runway time reads as airborne, and the revised departure is
    then the actual one."""
    body = fixture("vj84_newer_schema.json")
    body[0]["status"] = "Departed"
    body[0]["departure"]["runwayTime"] = {"utc": "2025-01-16 13:55Z",
                                          "local": "2025-01-16 23:55+10:00"}
    adb_api(payload=body)
    (leg,) = adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16")).legs
    assert leg.status is FlightStatus.AIRBORNE
    assert (leg.actual_departure, leg.estimated_departure) == (utc("2025-01-16T13:40"), None)


def test_undocumented_status_is_unknown_with_one_warning(adapter: AeroDataBoxAdapter,
                                                         adb_api: Serve) -> None:
    """A status outside the spec's enum becomes unknown with one warning naming the provider
    and the code; the rest of the answer still counts."""
    body = fixture("vj84_newer_schema.json")
    body[0]["status"] = "Taxiing"
    adb_api(payload=body)
    with capture_logs() as logs:
        (leg,) = adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16")).legs
    assert leg.status is FlightStatus.UNKNOWN and leg.departure_gate == "79"
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["provider"] == "aerodatabox" and warnings[0]["code"] == "Taxiing"


@pytest.mark.parametrize(("model", "designator"), [
    ("Airbus A320", "A320"), ("Airbus A320neo", "A20N"), ("Airbus A321 NEO", "A21N"),
    ("Airbus A220-300", "BCS3"), ("Airbus A330-300", "A333"), ("Airbus A350-900", "A359"),
    ("Airbus A380-800", "A388"), ("Boeing 737-800", "B738"), ("Boeing 737 MAX 8", "B38M"),
    ("Boeing 777-300ER", "B77W"), ("Boeing 787-9", "B789"), ("Boeing 787-10", "B78X"),
    ("Boeing 767-300ER", "B763"), ("Embraer 190", "E190"), ("Embraer 195-E2", "E295"),
    ("Airbus A330", "Airbus A330"), ("Embraer 175", "Embraer 175"), ("Cessna 172", "Cessna 172"),
])
def test_aircraft_model_names_become_designators(model: str, designator: str) -> None:
    """A model name naming one type becomes its ICAO designator (what the policy compares the
    airlines' IATA codes by); a family name or an unknown model stays as written."""
    assert aircraft_designator(model) == designator


# --- errors -----------------------------------------------------------------------------------

def test_no_content_is_not_found(adapter: AeroDataBoxAdapter, adb_api: Serve) -> None:
    """204 No Content is how AeroDataBox says it knows no such flight."""
    adb_api(status=204)
    with pytest.raises(FlightNotFound) as caught:
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    assert caught.value.status == 204 and not caught.value.counts_for_breaker


def test_empty_array_and_other_dates_are_not_found(adapter: AeroDataBoxAdapter,
                                                   adb_api: Serve) -> None:
    """An empty array, or only legs of another local date, is no such flight either."""
    adb_api(payload=[])
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    adb_api("vj84_newer_schema.json")
    with pytest.raises(FlightNotFound):
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-17"))


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, {"message": "Flight number is invalid"}, ProviderRequestRejected),
    (401, {"message": "Invalid API key."}, ProviderAuthError),
    (403, {"message": "You are not subscribed to this API."}, ProviderRequestRejected),
    (404, {"message": "Endpoint not found"}, FlightNotFound),
    (451, {"message": "Data is unavailable for legal reasons"}, ProviderRequestRejected),
    (500, {"message": "Internal server error"}, ProviderUnavailable),
    (503, {"message": "Service unavailable"}, ProviderUnavailable),
])
def test_http_status_maps_to_error(adapter: AeroDataBoxAdapter, adb_api: Serve, status: int,
                                   body: dict[str, str], error: type[ProviderError]) -> None:
    """Each documented error status (400/401/451/500/503), a marketplace's 403 refusal of the
    plan and a 404 map to their class; a 403 is the request's fault, not the provider's."""
    adb_api(status=status, payload=body)
    with pytest.raises(error) as caught:
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    if status == 403:
        assert not caught.value.counts_for_breaker and not caught.value.retryable


def test_rate_limit_carries_retry_after(adapter: AeroDataBoxAdapter, adb_api: Serve) -> None:
    """A 429 rate limit is retryable and carries the Retry-After seconds."""
    adb_api(status=429, payload={"message": "Too many requests"}, headers={"Retry-After": "7"})
    with pytest.raises(ProviderRateLimited) as caught:
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    assert caught.value.retry_after == 7 and caught.value.retryable


@pytest.mark.parametrize("message", [
    "You have exceeded the MONTHLY quota for Requests on your current plan, BASIC. Upgrade "
    "your plan at https://rapidapi.com/aedbx-aedbx/api/aerodatabox",
    "Monthly quota exceeded for your plan.",
])
def test_spent_quota_is_quota_exhausted(adapter: AeroDataBoxAdapter, adb_api: Serve,
                                        message: str) -> None:
    """A 429 whose message speaks of the quota is a spent quota: not retryable, unlike a rate
    limit (the marketplaces answer both with 429)."""
    adb_api(status=429, payload={"message": message})
    with pytest.raises(ProviderQuotaExhausted) as caught:
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))
    assert not caught.value.retryable and caught.value.status == 429


@pytest.mark.parametrize(("exc", "error"), [
    (httpx.ReadTimeout("slow"), ProviderTimeout),
    (httpx.ConnectError("refused"), ProviderUnavailable),
])
def test_transport_failure_maps_to_error(adapter: AeroDataBoxAdapter, httpx_mock: HTTPXMock,
                                         exc: Exception, error: type[ProviderError]) -> None:
    """A timeout and a refused connection become ProviderTimeout / ProviderUnavailable."""
    httpx_mock.add_exception(exc)
    with pytest.raises(error):
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))


@pytest.mark.parametrize("content", [
    b'[{"departure": {"airport": ', b'{"flights": []}', b'[42]',
    b'[{"departure": {"airport": {"iata": "BNE"}, "scheduledTime": {"utc": "soon"}}}]',
])
def test_malformed_body_is_bad_response(adapter: AeroDataBoxAdapter, adb_api: Serve,
                                        content: bytes) -> None:
    """Invalid JSON, an object instead of the array, a non-object item and an unreadable time
    are ProviderBadResponse, never a stray KeyError or TypeError."""
    adb_api(content=content)
    with pytest.raises(ProviderBadResponse):
        adapter.fetch(FlightQuery.parse("VJ84", "2025-01-16"))


def test_missing_key_is_config_error() -> None:
    """Without AERODATABOX_API_KEY the adapter refuses to build, naming the variable."""
    client = httpx.Client(base_url=API_MARKET)
    with pytest.raises(ConfigError, match="AERODATABOX_API_KEY"):
        AeroDataBoxAdapter(client, ProviderSettings(credentials={}))


def test_class_attributes_describe_the_provider() -> None:
    """Every carrier, below the airline adapters and FlightAware, one API-key variable, no
    operational suffix."""
    assert AeroDataBoxAdapter.name == "aerodatabox"
    assert AeroDataBoxAdapter.default_carriers is None
    assert AeroDataBoxAdapter.default_priority < 20
    assert AeroDataBoxAdapter.credential_env == ("AERODATABOX_API_KEY",)
    assert AeroDataBoxAdapter.serves_operational_suffix is False
    assert AeroDataBoxAdapter.default_base_url == API_MARKET
