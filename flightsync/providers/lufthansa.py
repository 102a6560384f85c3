"""Lufthansa Open API flight status (docs/PROVIDERS.md section 3): OAuth client credentials,
``GET /v1/operations/flightstatus/{flight}/{date}``, XML-to-JSON quirks (lone objects for
one-element lists, numbers for numeric strings), ``...Local`` times without an offset and only
one of Estimated/Actual per side."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import ConfigError, FlightNotFound, ProviderRateLimited, ProviderUnavailable
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._airports import local_to_utc
from flightsync.providers._http import json_body, parse_aware, raise_for_status, retry_after_seconds
from flightsync.providers._oauth import bearer_get
from flightsync.providers._shape import (
    as_list,
    as_object,
    bad,
    integer,
    mapped_status,
    required,
    schema_guard,
    text,
)
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

PROVIDER = "lufthansa"

# FlightStatus.Code (whole flight); NA defers to the departure TimeStatus below.
FLIGHT_STATUS: dict[str, FlightStatus] = {
    "CD": FlightStatus.CANCELLED,
    "DP": FlightStatus.DEPARTED,
    "LD": FlightStatus.LANDED,
    "RT": FlightStatus.DIVERTED,   # rerouted: the API's only sign of a diversion
}
TIME_STATUS: dict[str, FlightStatus] = {
    "OT": FlightStatus.SCHEDULED,
    "FE": FlightStatus.SCHEDULED,
    "NI": FlightStatus.SCHEDULED,
    "NO": FlightStatus.SCHEDULED,
    "DL": FlightStatus.DELAYED,
    "DP": FlightStatus.DEPARTED,
}


class LufthansaAdapter:
    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://api.lufthansa.com"
    default_priority: ClassVar[int] = 40
    default_carriers: ClassVar[frozenset[str] | None] = frozenset(
        {"LH", "LX", "OS", "SN", "EW", "EN", "4Y"})
    credential_env: ClassVar[tuple[str, ...]] = ("LUFTHANSA_CLIENT_ID", "LUFTHANSA_CLIENT_SECRET")
    uses_oauth: ClassVar[bool] = True
    # flightNumber is "2 letter IATA airline code + flight number" (docs/PROVIDERS.md section 3.2):
    # LH400A is refused with a 400.
    serves_operational_suffix: ClassVar[bool] = False
    token_path: ClassVar[str] = "/v1/oauth/token"  # noqa: S105 - a URL path

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        if tokens is None:
            raise ConfigError("lufthansa needs an OAuth token source")
        self._client = client
        self._settings = settings
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"LufthansaAdapter(base_url={str(self._client.base_url)!r})"

    def fetch(self, query: FlightQuery) -> Observation:
        path = (f"/v1/operations/flightstatus/{query.designator}/"
                f"{query.departure_date.isoformat()}")
        fetched_at = datetime.now(UTC)
        response = bearer_get(self._client, self._tokens, PROVIDER, path,
                              headers={"Accept": "application/json"})
        raise_for_lufthansa(response)
        body = json_body(response, PROVIDER)
        with schema_guard(PROVIDER):
            legs = parse_flight_status(body, query)
        return Observation(provider=PROVIDER, query=query, legs=legs, fetched_at=fetched_at,
                           raw=response.text)


def _processing_error(response: httpx.Response) -> tuple[bool, str]:
    """(RetryIndicator, Type) of a ``ProcessingErrors`` body, or (False, "")."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # deeply nested JSON: no usable error body either
        return False, ""
    errors = body.get("ProcessingErrors") if isinstance(body, Mapping) else None
    entry = errors.get("ProcessingError") if isinstance(errors, Mapping) else None
    if isinstance(entry, list):
        entry = entry[0] if entry else None
    if not isinstance(entry, Mapping):
        return False, ""
    retry = entry.get("@RetryIndicator", entry.get("RetryIndicator"))
    kind = entry.get("Type")
    return retry in (True, "true"), str(kind)[:40] if isinstance(kind, str) else ""


def raise_for_lufthansa(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    retry, kind = _processing_error(response)
    log.info("provider.fetch.error", provider=PROVIDER, status=status, type=kind)
    if status == 403 and "over qps" in response.text[:300].lower():
        # Mashery's throttle answer is a 403, not a 429.
        raise ProviderRateLimited(f"{PROVIDER}: rate limited (Developer Over Qps/Rate)",
                                  provider=PROVIDER, retry_after=retry_after_seconds(response),
                                  status=status)
    if status != 404 and 400 <= status < 500 and retry:
        raise ProviderUnavailable(f"{PROVIDER}: {kind or 'processing error'} (retry indicated)",
                                  provider=PROVIDER, status=status)
    raise_for_status(response, PROVIDER)


def parse_flight_status(body: Any, query: FlightQuery) -> tuple[Leg, ...]:
    """Every ``Flight`` of a FlightStatusResource as one leg, ordered by scheduled departure."""
    resource = as_object(required(as_object(body, PROVIDER, "body"), "FlightStatusResource",
                                  PROVIDER, "body"), PROVIDER, "FlightStatusResource")
    flights_obj = resource.get("Flights")
    flights = [] if flights_obj is None else as_list(
        as_object(flights_obj, PROVIDER, "Flights").get("Flight"), PROVIDER, "Flight",
        collapse=True)
    if not flights:
        raise FlightNotFound(f"{PROVIDER}: no such flight {query.key}", provider=PROVIDER)
    legs = [parse_flight(as_object(f, PROVIDER, "Flight")) for f in flights]
    return tuple(sorted(legs, key=lambda leg: (leg.scheduled_departure is None,
                                               leg.scheduled_departure or datetime.max)))


def _time(side: Mapping[str, Any], kind: str, airport: str, where: str) -> datetime | None:
    """``{kind}TimeUTC`` (ends in Z), else ``{kind}TimeLocal`` placed in the airport's zone."""
    utc = side.get(f"{kind}TimeUTC")
    if utc is not None:
        value = required(as_object(utc, PROVIDER, where), "DateTime", PROVIDER, where)
        return parse_aware(value, PROVIDER, f"{where}.{kind}TimeUTC")
    local = side.get(f"{kind}TimeLocal")
    if local is None:
        return None
    value = required(as_object(local, PROVIDER, where), "DateTime", PROVIDER, where)
    try:
        naive = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise bad(PROVIDER, f"bad time in {where}.{kind}TimeLocal") from exc
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return local_to_utc(naive, airport, PROVIDER)


def _side(flight: Mapping[str, Any], key: str) -> dict[str, Any]:
    side = as_object(required(flight, key, PROVIDER, "Flight"), PROVIDER, key)
    airport = text(required(side, "AirportCode", PROVIDER, key), PROVIDER, f"{key}.AirportCode")
    if airport is None:
        raise bad(PROVIDER, f"empty {key}.AirportCode")
    terminal = side.get("Terminal")
    terminal_obj = as_object(terminal, PROVIDER, f"{key}.Terminal") if terminal else {}
    time_status = side.get("TimeStatus")
    code = (text(as_object(time_status, PROVIDER, f"{key}.TimeStatus").get("Code"), PROVIDER,
                 f"{key}.TimeStatus.Code") if time_status else None)
    return {
        "airport": airport,
        "scheduled": _time(side, "Scheduled", airport, key),
        "estimated": _time(side, "Estimated", airport, key),
        "actual": _time(side, "Actual", airport, key),
        "terminal": text(terminal_obj.get("Name"), PROVIDER, f"{key}.Terminal.Name"),
        "gate": text(terminal_obj.get("Gate"), PROVIDER, f"{key}.Terminal.Gate"),
        "time_status": code,
    }


def _carriers(value: Any, where: str) -> list[tuple[str, int]]:
    out = []
    for entry in as_list(value, PROVIDER, where, collapse=True):
        carrier = as_object(entry, PROVIDER, where)
        airline = text(required(carrier, "AirlineID", PROVIDER, where), PROVIDER, where)
        number = integer(text(required(carrier, "FlightNumber", PROVIDER, where), PROVIDER,
                              where), PROVIDER, f"{where}.FlightNumber")
        if airline is not None:
            out.append((airline, number))
    return out


def _status(flight: Mapping[str, Any], departure_time_status: str | None) -> FlightStatus | None:
    flight_status = flight.get("FlightStatus")
    code = (text(as_object(flight_status, PROVIDER, "FlightStatus").get("Code"), PROVIDER,
                 "FlightStatus.Code") if flight_status else None)
    if code is not None and code.upper() != "NA":
        return mapped_status(FLIGHT_STATUS, code, PROVIDER, "FlightStatus.Code")
    if departure_time_status is not None:
        return mapped_status(TIME_STATUS, departure_time_status, PROVIDER, "TimeStatus.Code")
    return FlightStatus.SCHEDULED if code is not None else None


def parse_flight(flight: Mapping[str, Any]) -> Leg:
    """One Lufthansa ``Flight`` object as a normalized leg."""
    dep = _side(flight, "Departure")
    arr = _side(flight, "Arrival")
    operating = _carriers(flight.get("OperatingCarrier"), "OperatingCarrier")
    marketing = _carriers(flight.get("MarketingCarrier"), "MarketingCarrier")
    operator = operating[0] if operating else None
    codeshares = tuple(f"{c}{n}" for c, n in marketing if (c, n) != operator)
    equipment = flight.get("Equipment")
    equipment_obj = as_object(equipment, PROVIDER, "Equipment") if equipment else {}
    return Leg(
        origin=dep["airport"], destination=arr["airport"],
        status=_status(flight, dep["time_status"]),
        scheduled_departure=dep["scheduled"], estimated_departure=dep["estimated"],
        actual_departure=dep["actual"],
        scheduled_arrival=arr["scheduled"], estimated_arrival=arr["estimated"],
        actual_arrival=arr["actual"],
        departure_terminal=dep["terminal"], departure_gate=dep["gate"],
        arrival_terminal=arr["terminal"], arrival_gate=arr["gate"],
        aircraft_type=text(equipment_obj.get("AircraftCode"), PROVIDER, "AircraftCode"),
        aircraft_registration=text(equipment_obj.get("AircraftRegistration"), PROVIDER,
                                   "AircraftRegistration"),
        codeshares=codeshares or None,
        operating_carrier=operator[0] if operator else None,
        operating_flight_number=operator[1] if operator else None,
    )
