"""Amadeus On-Demand Flight Status v2 (docs/PROVIDERS.md section 2): OAuth client credentials,
``GET /v2/schedule/flights``, local times with offsets, delays as ISO 8601 durations.

A legacy, optional adapter (Self-Service was decommissioned in 2026): the base URL is
configurable for Enterprise hosts and the adapter can be disabled like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import (
    ConfigError,
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
)
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._http import json_body, parse_aware, raise_for_status, retry_after_seconds
from flightsync.providers._oauth import bearer_get
from flightsync.providers._shape import (
    as_list,
    as_object,
    duration,
    integer,
    required,
    schema_guard,
    text,
)
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

PROVIDER = "amadeus"
_ACCEPT = {"Accept": "application/json, application/vnd.amadeus+json"}
TOKEN_REJECTED_CODES = frozenset({38190, 38192})   # invalid / expired access token
QUOTA_CODE = 38195
ENDPOINT_NOT_FOUND_CODE = 38196


@dataclass(frozen=True, slots=True)
class AmadeusLocation:
    """An airport or city from ``/v1/reference-data/locations/{id}``."""

    id: str
    sub_type: str | None
    iata_code: str | None
    name: str | None
    time_zone_offset: str | None   # the offset on the day of the call, not a zone name
    city_code: str | None
    country_code: str | None
    latitude: float | None
    longitude: float | None


class AmadeusAdapter:
    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://test.api.amadeus.com"
    default_priority: ClassVar[int] = 10
    default_carriers: ClassVar[frozenset[str] | None] = None
    credential_env: ClassVar[tuple[str, ...]] = ("AMADEUS_CLIENT_ID", "AMADEUS_CLIENT_SECRET")
    uses_oauth: ClassVar[bool] = True
    # The published limit of the test environment (the default base URL): 10 transactions
    # per second per user (docs/PROVIDERS.md, Amadeus). Applied only against that host.
    default_limits: ClassVar[str] = "10/second"
    # Sent as the operationalSuffix parameter.
    serves_operational_suffix: ClassVar[bool] = True
    token_path: ClassVar[str] = "/v1/security/oauth2/token"  # noqa: S105 - a URL path

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        if tokens is None:
            raise ConfigError("amadeus needs an OAuth token source")
        self._client = client
        self._settings = settings
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"AmadeusAdapter(base_url={str(self._client.base_url)!r})"

    def fetch(self, query: FlightQuery) -> Observation:
        params = {"carrierCode": query.carrier, "flightNumber": str(query.number),
                  "scheduledDepartureDate": query.departure_date.isoformat()}
        if query.suffix:
            params["operationalSuffix"] = query.suffix
        fetched_at = datetime.now(UTC)
        response = self._get("/v2/schedule/flights", params)
        body = json_body(response, PROVIDER)
        with schema_guard(PROVIDER):
            legs = parse_dated_flights(body, query)
        return Observation(provider=PROVIDER, query=query, legs=legs, fetched_at=fetched_at,
                           raw=response.text)

    def location(self, location_id: str) -> AmadeusLocation:
        """An airport (``A`` + IATA) or city (``C`` + IATA) by id, for operators."""
        response = self._get(f"/v1/reference-data/locations/{location_id}", None)
        body = json_body(response, PROVIDER)
        with schema_guard(PROVIDER):
            return parse_location(body)

    def _get(self, path: str, params: Mapping[str, str] | None) -> httpx.Response:
        response = bearer_get(self._client, self._tokens, PROVIDER, path, params=params,
                              headers=_ACCEPT, rejected=_token_rejected)
        raise_for_amadeus(response)
        return response


def _error_codes(response: httpx.Response) -> list[tuple[int | None, str]]:
    """(code, title) of each ``errors[]`` entry; codes may be strings on the wire."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # deeply nested JSON: no usable error body either
        return []
    entries = body.get("errors") if isinstance(body, Mapping) else None
    if not isinstance(entries, list):
        return []
    out: list[tuple[int | None, str]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        raw = entry.get("code")
        code = int(raw) if isinstance(raw, int | str) and str(raw).isdigit() else None
        title = entry.get("title")
        out.append((code, str(title)[:80] if isinstance(title, str) else ""))
    return out


def _token_rejected(response: httpx.Response) -> bool:
    return response.status_code == 401 and any(
        code in TOKEN_REJECTED_CODES for code, _ in _error_codes(response))


def raise_for_amadeus(response: httpx.Response) -> None:
    """Amadeus-specific error bodies first (quota, bad URL), then the shared mapping."""
    status = response.status_code
    if status < 300:
        return
    errors = _error_codes(response)
    codes = {code for code, _ in errors}
    summary = "; ".join(f"{code} {title}".strip() for code, title in errors) or "no details"
    log.info("provider.fetch.error", provider=PROVIDER, status=status, codes=sorted(
        c for c in codes if c is not None))
    if QUOTA_CODE in codes:
        raise ProviderQuotaExhausted(f"{PROVIDER}: quota exhausted ({summary})",
                                     provider=PROVIDER, status=status)
    if status == 429:
        raise ProviderRateLimited(f"{PROVIDER}: rate limited ({summary})", provider=PROVIDER,
                                  retry_after=retry_after_seconds(response))
    if status == 404 and ENDPOINT_NOT_FOUND_CODE in codes:
        raise ProviderBadResponse(f"{PROVIDER}: endpoint not found ({summary}); check the "
                                  "base URL", provider=PROVIDER, status=status)
    if status in (401, 403):
        raise ProviderAuthError(f"{PROVIDER}: authorization refused ({summary})",
                                provider=PROVIDER, status=status)
    if 400 <= status < 500 and status != 404:
        # e.g. 400 INVALID FORMAT: this request is refused, the provider is fine.
        raise ProviderRequestRejected(f"{PROVIDER}: request rejected ({status}: {summary})",
                                      provider=PROVIDER, status=status)
    raise_for_status(response, PROVIDER)


def parse_dated_flights(body: Any, query: FlightQuery) -> tuple[Leg, ...]:
    """The legs of the first ``DatedFlight`` in a ``datedFlights`` body; FlightNotFound when
    ``data`` is empty."""
    data = as_list(required(as_object(body, PROVIDER, "body"), "data", PROVIDER, "body"),
                   PROVIDER, "data")
    if not data:
        raise FlightNotFound(f"{PROVIDER}: no such flight {query.key}", provider=PROVIDER)
    return parse_dated_flight(as_object(data[0], PROVIDER, "data[0]"))


def _timing(point: Mapping[str, Any] | None, side: str, qualifier: str
            ) -> tuple[datetime | None, datetime | None]:
    """(scheduled, estimated) from the ``qualifier`` timing; estimated = scheduled + delay."""
    if point is None:
        return None, None
    where = f"flightPoints.{side}"
    for entry in as_list(point.get("timings", []), PROVIDER, f"{where}.timings"):
        timing = as_object(entry, PROVIDER, f"{where}.timings[]")
        if timing.get("qualifier") != qualifier:
            continue
        scheduled = parse_aware(required(timing, "value", PROVIDER, where), PROVIDER, where)
        delays = as_list(timing.get("delays", []), PROVIDER, f"{where}.delays")
        if not delays:
            return scheduled, None
        first = as_object(delays[0], PROVIDER, f"{where}.delays[0]")
        delay = duration(required(first, "duration", PROVIDER, f"{where}.delays[0]"),
                         PROVIDER, f"{where}.delays[0].duration")
        return scheduled, scheduled + delay
    return None, None


def _terminal_gate(point: Mapping[str, Any] | None, where: str) -> tuple[str | None, str | None]:
    if point is None:
        return None, None
    terminal = point.get("terminal")
    gate = point.get("gate")
    return (text(as_object(terminal, PROVIDER, where).get("code"), PROVIDER, where)
            if terminal is not None else None,
            text(as_object(gate, PROVIDER, where).get("mainGate"), PROVIDER, where)
            if gate is not None else None)


def _designator(value: Any, where: str) -> str:
    designator = as_object(value, PROVIDER, where)
    carrier = text(required(designator, "carrierCode", PROVIDER, where), PROVIDER, where)
    number = integer(required(designator, "flightNumber", PROVIDER, where), PROVIDER, where)
    suffix = text(designator.get("operationalSuffix"), PROVIDER, where) or ""
    return f"{carrier}{number}{suffix}"


def _find_point(points: list[Mapping[str, Any]], start: int, iata: str, side: str
                ) -> tuple[int, Mapping[str, Any] | None]:
    for index in range(start, len(points)):
        if points[index].get("iataCode") == iata and isinstance(points[index].get(side), Mapping):
            return index, as_object(points[index][side], PROVIDER, f"flightPoints.{side}")
    return start, None


def parse_dated_flight(flight: Mapping[str, Any]) -> tuple[Leg, ...]:
    """One ``DatedFlight`` as legs in flying order. Amadeus has no status field: a positive
    departure delay means DELAYED (docs/PROVIDERS.md section 8); otherwise the status is left
    unreported, because a schedule copy cannot tell a landed flight from one that has not
    left, and claiming "scheduled" would contradict every live source."""
    points = [as_object(p, PROVIDER, "flightPoints[]")
              for p in as_list(required(flight, "flightPoints", PROVIDER, "DatedFlight"),
                               PROVIDER, "flightPoints")]
    raw_legs = [as_object(leg, PROVIDER, "legs[]")
                for leg in as_list(flight.get("legs") or [], PROVIDER, "legs")]
    hops = [(text(required(leg, "boardPointIataCode", PROVIDER, "legs[]"), PROVIDER, "legs[]"),
             text(required(leg, "offPointIataCode", PROVIDER, "legs[]"), PROVIDER, "legs[]"),
             leg) for leg in raw_legs]
    if not hops:
        # No legs[]: pair each departure point with the next arrival point.
        dep = [p for p in points if isinstance(p.get("departure"), Mapping)]
        arr = [p for p in points if isinstance(p.get("arrival"), Mapping)]
        hops = [(text(d.get("iataCode"), PROVIDER, "iataCode"),
                 text(a.get("iataCode"), PROVIDER, "iataCode"), {}) for d, a in zip(dep, arr,
                                                                                  strict=False)]
    if not hops:
        raise ProviderBadResponse(f"{PROVIDER}: flight has no legs", provider=PROVIDER)
    route = [str(hops[0][0]), *(str(off) for _, off, _ in hops)]
    partners = _partners(flight, route)
    legs: list[Leg] = []
    cursor = 0
    for index, (board, off, raw_leg) in enumerate(hops):
        if board is None or off is None:
            raise ProviderBadResponse(f"{PROVIDER}: leg without airports", provider=PROVIDER)
        cursor, departure = _find_point(points, cursor, board, "departure")
        cursor, arrival = _find_point(points, cursor, off, "arrival")
        std, etd = _timing(departure, "departure", "STD")
        sta, eta = _timing(arrival, "arrival", "STA")
        dep_terminal, dep_gate = _terminal_gate(departure, "departure")
        arr_terminal, arr_gate = _terminal_gate(arrival, "arrival")
        equipment = raw_leg.get("aircraftEquipment")
        aircraft = (text(as_object(equipment, PROVIDER, "aircraftEquipment").get("aircraftType"),
                         PROVIDER, "aircraftType") if equipment is not None else None)
        delayed = std is not None and etd is not None and etd - std > timedelta(0)
        legs.append(Leg(
            origin=board, destination=off,
            status=FlightStatus.DELAYED if delayed else None,
            scheduled_departure=std, estimated_departure=etd,
            scheduled_arrival=sta, estimated_arrival=eta,
            departure_terminal=dep_terminal, departure_gate=dep_gate,
            arrival_terminal=arr_terminal, arrival_gate=arr_gate,
            aircraft_type=aircraft,
            codeshares=partners.get(index) or None,
        ))
    return tuple(legs)


def _partners(flight: Mapping[str, Any], route: list[str]) -> dict[int, tuple[str, ...]]:
    """Leg index -> partner designators from ``segments[].partnership.operatingFlight``.

    Which side operates is unclear upstream (docs/PROVIDERS.md §2.3), so these go to
    codeshares only, never to operating_carrier.
    """
    out: dict[int, list[str]] = {}
    for entry in as_list(flight.get("segments") or [], PROVIDER, "segments"):
        segment = as_object(entry, PROVIDER, "segments[]")
        partnership = segment.get("partnership")
        if partnership is None:
            continue
        operating = as_object(partnership, PROVIDER, "partnership").get("operatingFlight")
        if operating is None:
            continue
        designator = _designator(operating, "partnership.operatingFlight")
        board, off = segment.get("boardPointIataCode"), segment.get("offPointIataCode")
        first = route.index(board) if board in route else 0
        last = route.index(off, first + 1) if off in route[first + 1:] else len(route) - 1
        for leg_index in range(first, max(last, first + 1)):
            if designator not in out.setdefault(leg_index, []):
                out[leg_index].append(designator)
    return {index: tuple(values) for index, values in out.items()}


def parse_location(body: Any) -> AmadeusLocation:
    data = as_object(required(as_object(body, PROVIDER, "body"), "data", PROVIDER, "body"),
                     PROVIDER, "data")
    address = as_object(data.get("address") or {}, PROVIDER, "data.address")
    geo = as_object(data.get("geoCode") or {}, PROVIDER, "data.geoCode")
    lat, lon = geo.get("latitude"), geo.get("longitude")
    return AmadeusLocation(
        id=text(required(data, "id", PROVIDER, "data"), PROVIDER, "data.id") or "",
        sub_type=text(data.get("subType"), PROVIDER, "data.subType"),
        iata_code=text(data.get("iataCode"), PROVIDER, "data.iataCode"),
        name=text(data.get("name"), PROVIDER, "data.name"),
        time_zone_offset=text(data.get("timeZoneOffset"), PROVIDER, "data.timeZoneOffset"),
        city_code=text(address.get("cityCode"), PROVIDER, "address.cityCode"),
        country_code=text(address.get("countryCode"), PROVIDER, "address.countryCode"),
        latitude=float(lat) if isinstance(lat, int | float) else None,
        longitude=float(lon) if isinstance(lon, int | float) else None,
    )
