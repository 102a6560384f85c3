"""AeroDataBox (docs/PROVIDERS.md section 6.2), sold through API.market and RapidAPI:
``GET {base}/flights/number/{designator}/{local date}``, a JSON array of ``FlightContract``
(200), or no content (204) when nothing is found.

The key travels in the marketplace's header: ``x-magicapi-key`` on API.market (the
``securitySchemes`` of the provider's own OpenAPI file), ``X-RapidAPI-Key`` and
``X-RapidAPI-Host`` when the base URL is RapidAPI's host.

Quirks this module absorbs:

* Two schemas: newer answers give each time as ``scheduledTime: {utc, local}`` with
  ``revisedTime``, ``predictedTime`` and ``runwayTime``; older ones (2022 to early 2023) give
  flat ``scheduledTimeUtc``/``actualTimeUtc``/``runwayTimeUtc`` strings. ``actualTimeUtc`` is
  the older name of ``revisedTime`` (answers of the change-over carry both with equal values):
  an estimate until the movement happens, then the actual gate time.
* Minute times with a space, ``2024-05-27 08:30Z`` / ``2024-05-27 10:30+02:00``.
* Codeshare copies: one array item per flight number of one physical flight. Items with the
  same origin and scheduled departure are one leg; the ``IsOperator`` item is kept and the
  other numbers become the leg's codeshares.
* Several legs come as several items, ordered here by scheduled departure.
* An airport may lack an IATA code: its ICAO code is looked up in ``airportsdata``; an item
  whose origin has neither cannot be keyed and is skipped (logged), a destination without
  one is left unsaid.

``dateLocalRole=Departure`` asks for the legs that leave on the date in their origin's local
time. A multi-leg journey whose later legs leave after local midnight is therefore cut there:
AeroDataBox files those legs under the next date, and one request per flight cannot see both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import (
    ConfigError,
    FlightNotFound,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
)
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._aircraft_names import aircraft_designator
from flightsync.providers._airports import airport_tz, iata_for_icao
from flightsync.providers._http import (
    json_body,
    mapped_transport_errors,
    parse_aware,
    raise_for_status,
    retry_after_seconds,
)
from flightsync.providers._shape import as_list, as_object, mapped_status, schema_guard, text
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

PROVIDER = "aerodatabox"
RAPIDAPI_HOST = "aerodatabox.p.rapidapi.com"

# The FlightStatus enum of the OpenAPI spec. Its ``Unknown`` ("status is not available") is not
# here: it leaves the status unsaid (None). ``CanceledUncertain`` ("may be cancelled") is not a
# cancellation: the policy lets the most severe status win, so a guess must not outrank the
# other sources.
STATUS: dict[str, FlightStatus] = {
    "EXPECTED": FlightStatus.SCHEDULED,
    "CHECKIN": FlightStatus.SCHEDULED,
    "BOARDING": FlightStatus.BOARDING,
    "GATECLOSED": FlightStatus.BOARDING,
    "DELAYED": FlightStatus.DELAYED,
    "DEPARTED": FlightStatus.DEPARTED,
    "ENROUTE": FlightStatus.AIRBORNE,
    "APPROACHING": FlightStatus.AIRBORNE,
    "ARRIVED": FlightStatus.ARRIVED,
    "CANCELED": FlightStatus.CANCELLED,
    "DIVERTED": FlightStatus.DIVERTED,
    "CANCELEDUNCERTAIN": FlightStatus.UNKNOWN,
}
# Statuses after which the departure's revised time is the actual one.
_GONE = frozenset({"DEPARTED", "ENROUTE", "APPROACHING", "ARRIVED", "DIVERTED"})
_NUMBER = re.compile(r"^\s*([A-Z0-9]{2,3}?)\s*(\d{1,5})\s*$")


class AeroDataBoxAdapter:
    """Any carrier's flight from AeroDataBox, by designator and local departure date."""

    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://prod.api.market/api/v1/aedbx/aerodatabox"
    # Below the airlines' own adapters and FlightAware, above the closed Amadeus.
    default_priority: ClassVar[int] = 15
    default_carriers: ClassVar[frozenset[str] | None] = None
    credential_env: ClassVar[tuple[str, ...]] = ("AERODATABOX_API_KEY",)
    uses_oauth: ClassVar[bool] = False
    # The flight-number search takes a carrier and digits; an operational suffix has no place.
    serves_operational_suffix: ClassVar[bool] = False

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        key = settings.credentials.get("api_key")
        if not key:
            raise ConfigError("aerodatabox: no API key: set AERODATABOX_API_KEY")
        self._client = client
        self._headers = auth_headers(client.base_url.host, key)

    def __repr__(self) -> str:
        return f"AeroDataBoxAdapter(base_url={str(self._client.base_url)!r})"

    def fetch(self, query: FlightQuery) -> Observation:
        """The legs AeroDataBox reports for ``query``'s designator leaving on its date."""
        fetched_at = datetime.now(UTC)
        with mapped_transport_errors(PROVIDER):
            response = self._client.get(path(query), params={"dateLocalRole": "Departure"},
                                        headers=self._headers)
        raise_for_aerodatabox(response)
        if response.status_code == 204 or not response.content.strip():
            raise FlightNotFound(f"{PROVIDER}: no such flight {query.key}", provider=PROVIDER,
                                 status=response.status_code)
        body = json_body(response, PROVIDER)
        with schema_guard(PROVIDER):
            legs, updated_at = parse_flights(body, query)
        return Observation(provider=PROVIDER, query=query, legs=legs, fetched_at=fetched_at,
                           updated_at=updated_at, raw=response.text)


def auth_headers(host: str, key: str) -> dict[str, str]:
    """RapidAPI's two headers on its host; API.market's ``x-magicapi-key`` everywhere else."""
    if host.lower() == RAPIDAPI_HOST:
        return {"X-RapidAPI-Key": key, "X-RapidAPI-Host": RAPIDAPI_HOST,
                "Accept": "application/json"}
    return {"x-magicapi-key": key, "Accept": "application/json"}


def path(query: FlightQuery) -> str:
    return f"/flights/number/{query.carrier}{query.number}/{query.departure_date.isoformat()}"


def _message(response: httpx.Response) -> str:
    """The ``message`` of an error body (both marketplaces and AeroDataBox use it), or ""."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # deeply nested JSON: no usable message either
        return ""
    message = body.get("message") if isinstance(body, Mapping) else None
    return message[:200] if isinstance(message, str) else ""


def raise_for_aerodatabox(response: httpx.Response) -> None:
    """Marketplace answers first, then the shared mapping. Both marketplaces answer a spent
    quota and a rate limit with 429; only the message tells them apart. A 403 is the
    marketplace refusing the plan (not subscribed, endpoint outside the plan): the request,
    not the provider's health, is at fault."""
    status = response.status_code
    if status < 300:
        return
    message = _message(response)
    log.info("provider.fetch.error", provider=PROVIDER, status=status)
    if status == 429 and "quota" in message.lower():
        raise ProviderQuotaExhausted(f"{PROVIDER}: quota exhausted: {message}",
                                     provider=PROVIDER, status=status)
    if status == 429:
        raise ProviderRateLimited(f"{PROVIDER}: rate limited", provider=PROVIDER,
                                  retry_after=retry_after_seconds(response))
    if status == 403:
        raise ProviderRequestRejected(f"{PROVIDER}: refused by the plan (403): {message}",
                                      provider=PROVIDER, status=status)
    raise_for_status(response, PROVIDER)


@dataclass(frozen=True, slots=True)
class _Copy:
    """One FlightContract item: its leg and what merging the copies of a flight needs."""

    leg: Leg
    local_date: date                         # scheduled departure date at the origin
    designator: str | None                   # the item's number without the space, "KL1167"
    operating: tuple[str | None, int | None]  # (carrier, number) should it be the operator
    codeshare: str                           # codeshareStatus upper-cased, "UNKNOWN" if absent
    updated: datetime | None                 # lastUpdatedUtc


def parse_flights(body: Any, query: FlightQuery) -> tuple[tuple[Leg, ...], datetime | None]:
    """The legs of ``body`` (a FlightContract array) that leave on ``query``'s local date,
    codeshare copies merged, in flying order, and the latest ``lastUpdatedUtc`` among them."""
    items = [_item(as_object(entry, PROVIDER, "flight"))
             for entry in as_list(body, PROVIDER, "body")]
    groups: dict[tuple[str, datetime | None], list[_Copy]] = {}
    for item in items:
        if item is not None and item.local_date == query.departure_date:
            groups.setdefault((item.leg.origin, item.leg.scheduled_departure), []).append(item)
    if not groups:
        raise FlightNotFound(f"{PROVIDER}: no such flight {query.key}", provider=PROVIDER)
    # Flying order: by scheduled departure (the key's second part), not by airport code.
    ordered = sorted(groups.items(), key=lambda pair: (pair[0][1], pair[0][0]))
    legs = [_merge(copies, query) for _, copies in ordered]
    stamps = [item.updated for copies in groups.values() for item in copies
              if item.updated is not None]
    return tuple(legs), max(stamps, default=None)


def _merge(copies: list[_Copy], query: FlightQuery) -> Leg:
    """One leg from the copies of one flight: the operator's, else the asked number's."""
    operator = next((c for c in copies if c.codeshare == "ISOPERATOR"), None)
    asked = f"{query.carrier}{query.number}"
    chosen = operator or next((c for c in copies if c.designator == asked), copies[0])
    if operator is not None:
        marketing = {c.designator for c in copies} - {operator.designator}
    else:  # nobody says who operates it: only the copies marked as codeshares are known to be
        marketing = {c.designator for c in copies if c.codeshare == "ISCODESHARED"}
    carrier, number = operator.operating if operator is not None else (None, None)
    # No copies is silence, not "no codeshares": a number search need not list them.
    codeshares = tuple(sorted(d for d in marketing if d)) or None
    return replace(chosen.leg, codeshares=codeshares, operating_carrier=carrier,
                   operating_flight_number=number)


def _item(flight: Mapping[str, Any]) -> _Copy | None:
    """One FlightContract as a leg plus what merging needs; None when it cannot be placed."""
    dep = as_object(flight.get("departure") or {}, PROVIDER, "departure")
    arr = as_object(flight.get("arrival") or {}, PROVIDER, "arrival")
    origin, origin_zone_name = _airport(dep, "departure")
    scheduled = _time(dep, "scheduled", "departure")
    if origin is None or scheduled is None:
        log.info("provider.flight.skipped", provider=PROVIDER,
                 reason="no IATA origin" if origin is None else "no scheduled departure")
        return None
    local_date = _local_date(dep, scheduled, origin, origin_zone_name)
    if local_date is None:
        log.info("provider.flight.skipped", provider=PROVIDER,
                 reason="origin time zone unknown", origin=origin)
        return None
    code = text(flight.get("status"), PROVIDER, "status")
    key = code.upper() if code is not None else None
    status = mapped_status(STATUS, code, PROVIDER, "status") if key != "UNKNOWN" else None
    dep_times = _movement_times(dep, "departure", happened=key in _GONE)
    arr_times = _movement_times(arr, "arrival", happened=key == "ARRIVED")
    if status is FlightStatus.DEPARTED and _time(dep, "runway", "departure") is not None:
        status = FlightStatus.AIRBORNE  # a take-off time means it is in the air
    designator, operating = _number(flight)
    aircraft = as_object(flight.get("aircraft") or {}, PROVIDER, "aircraft")
    model = text(aircraft.get("model"), PROVIDER, "aircraft.model")
    codeshare = text(flight.get("codeshareStatus"), PROVIDER, "codeshareStatus")
    leg = Leg(
        origin=origin, destination=_airport(arr, "arrival")[0], status=status,
        scheduled_departure=scheduled, estimated_departure=dep_times[0],
        actual_departure=dep_times[1],
        scheduled_arrival=_time(arr, "scheduled", "arrival"),
        estimated_arrival=arr_times[0], actual_arrival=arr_times[1],
        departure_terminal=text(dep.get("terminal"), PROVIDER, "departure.terminal"),
        departure_gate=text(dep.get("gate"), PROVIDER, "departure.gate"),
        arrival_terminal=text(arr.get("terminal"), PROVIDER, "arrival.terminal"),
        arrival_gate=text(arr.get("gate"), PROVIDER, "arrival.gate"),
        baggage_belt=text(arr.get("baggageBelt"), PROVIDER, "arrival.baggageBelt"),
        aircraft_type=aircraft_designator(model) if model is not None else None,
        aircraft_registration=text(aircraft.get("reg"), PROVIDER, "aircraft.reg"),
    )
    updated = text(flight.get("lastUpdatedUtc"), PROVIDER, "lastUpdatedUtc")
    return _Copy(leg=leg, local_date=local_date, designator=designator, operating=operating,
                 codeshare=(codeshare or "UNKNOWN").upper(),
                 updated=parse_aware(updated, PROVIDER, "lastUpdatedUtc") if updated else None)


def _number(flight: Mapping[str, Any]) -> tuple[str | None, tuple[str | None, int | None]]:
    """(designator without the space, (carrier, number)) of ``number`` ("KL 1164"); the
    carrier is ``airline.iata`` when given (the number may carry the ICAO code)."""
    raw = text(flight.get("number"), PROVIDER, "number")
    match = _NUMBER.match(raw.upper()) if raw is not None else None
    if match is None:
        return None, (None, None)
    airline = as_object(flight.get("airline") or {}, PROVIDER, "airline")
    iata = text(airline.get("iata"), PROVIDER, "airline.iata")
    carrier = iata.upper() if iata is not None and len(match[1]) == 3 else match[1]
    return f"{carrier}{int(match[2])}", (carrier, int(match[2]))


def _airport(movement: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    """(IATA code, time zone name) of a movement's airport; the IATA code from the ICAO code
    when the answer lacks it."""
    airport = as_object(movement.get("airport") or {}, PROVIDER, f"{where}.airport")
    zone = text(airport.get("timeZone"), PROVIDER, f"{where}.airport.timeZone")
    iata = text(airport.get("iata"), PROVIDER, f"{where}.airport.iata")
    if iata is not None:
        return iata.upper(), zone
    icao = text(airport.get("icao"), PROVIDER, f"{where}.airport.icao")
    found = iata_for_icao(icao) if icao is not None else None
    if found is None:
        log.info("provider.airport.no_iata", provider=PROVIDER, where=where,
                 icao=(icao or "")[:8])
    return found, zone


def _time(movement: Mapping[str, Any], kind: str, where: str) -> datetime | None:
    """``{kind}Time.utc`` (newer schema), else ``{kind}TimeUtc`` (older), else the local
    forms, which carry an offset; ``actualTimeUtc`` answers for ``revised``."""
    names = [kind] + (["actual"] if kind == "revised" else [])
    for name in names:
        nested = movement.get(f"{name}Time")
        if nested is not None:
            pair = as_object(nested, PROVIDER, f"{where}.{name}Time")
            for part in ("utc", "local"):
                value = text(pair.get(part), PROVIDER, f"{where}.{name}Time.{part}")
                if value is not None:
                    return parse_aware(value, PROVIDER, f"{where}.{name}Time.{part}")
        for suffix in ("Utc", "Local"):
            value = text(movement.get(f"{name}Time{suffix}"), PROVIDER,
                         f"{where}.{name}Time{suffix}")
            if value is not None:
                return parse_aware(value, PROVIDER, f"{where}.{name}Time{suffix}")
    return None


def _movement_times(movement: Mapping[str, Any], where: str, *,
                    happened: bool) -> tuple[datetime | None, datetime | None]:
    """(estimated, actual): the revised time is the actual one once the movement happened
    (the runway time standing in when it is missing), an estimate before (the predicted time
    standing in)."""
    revised = _time(movement, "revised", where)
    if happened:
        return None, revised or _time(movement, "runway", where)
    return revised or _time(movement, "predicted", where), None


def _local_date(movement: Mapping[str, Any], scheduled: datetime, origin: str,
                zone_name: str | None) -> date | None:
    """The scheduled departure's date at the origin: the local form's own date when given,
    else the UTC time placed in the airport's zone."""
    nested = movement.get("scheduledTime")
    local = (as_object(nested, PROVIDER, "departure.scheduledTime").get("local")
             if nested is not None else movement.get("scheduledTimeLocal"))
    local_text = text(local, PROVIDER, "departure.scheduledTime.local")
    if local_text is not None:
        parse_aware(local_text, PROVIDER, "departure.scheduledTime.local")  # checks the form
        return datetime.fromisoformat(local_text).date()
    if zone_name is not None:
        try:
            return scheduled.astimezone(ZoneInfo(zone_name)).date()
        except (ZoneInfoNotFoundError, ValueError):
            pass
    zone = airport_tz(origin)
    return scheduled.astimezone(zone).date() if zone is not None else None


__all__ = ["AeroDataBoxAdapter", "aircraft_designator", "auth_headers", "parse_flights", "path",
           "raise_for_aerodatabox"]
