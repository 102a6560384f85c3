"""Air France-KLM Open Data flight status (docs/PROVIDERS.md section 4): ``API-Key`` header,
``GET /opendata/flightstatus`` over a UTC time range, times with offsets and milliseconds,
several legs per flight.

``flightScheduleDate`` is a UTC date, so the query asks for the three UTC days around the
local departure date and keeps the flight whose first leg departs on that local date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import ConfigError, FlightNotFound, ProviderBadResponse
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._http import get_json, parse_aware
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

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

PROVIDER = "airfrance_klm"

# airline.code may be ICAO; the group's own airlines, so designators compare in IATA.
ICAO_TO_IATA: dict[str, str] = {"AFR": "AF", "KLM": "KL", "HOP": "A5", "TVF": "TO",
                                "TRA": "HV", "KLC": "WA"}

LEG_STATUS: dict[str, FlightStatus] = {
    "SCHEDULED": FlightStatus.SCHEDULED,
    "ONTIME": FlightStatus.SCHEDULED,
    "ON_TIME": FlightStatus.SCHEDULED,
    "NEW_DEPARTURE_TIME": FlightStatus.SCHEDULED,
    "NEW_EARLY_DEPARTURE_TIME": FlightStatus.SCHEDULED,
    "EARLY_DEPARTURE": FlightStatus.SCHEDULED,
    "DELAYED_DEPARTURE": FlightStatus.DELAYED,
    "DEPARTED": FlightStatus.DEPARTED,
    "IN_FLIGHT": FlightStatus.AIRBORNE,
    "DELAYED_ARRIVAL": FlightStatus.DELAYED,
    "EARLY_ARRIVAL": FlightStatus.SCHEDULED,
    "LANDED": FlightStatus.LANDED,
    "ARRIVED": FlightStatus.ARRIVED,
    "IS_ARRIVED": FlightStatus.ARRIVED,
    "CANCELLED": FlightStatus.CANCELLED,
    "DIVERTED": FlightStatus.DIVERTED,
}
_ARRIVAL_ESTIMATE_CODES = frozenset({"DELAYED_ARRIVAL", "EARLY_ARRIVAL"})


class AirFranceKlmAdapter:
    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://api.airfranceklm.com"
    default_priority: ClassVar[int] = 40
    default_carriers: ClassVar[frozenset[str] | None] = frozenset({"AF", "KL"})
    credential_env: ClassVar[tuple[str, ...]] = ("AFKLM_API_KEY",)
    uses_oauth: ClassVar[bool] = False
    # Each flight carries operationalSuffix, matched against the query.
    serves_operational_suffix: ClassVar[bool] = True

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: object | None = None) -> None:
        api_key = settings.credentials.get("api_key")
        if not api_key:
            raise ConfigError("airfrance_klm needs AFKLM_API_KEY")
        self._client = client
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"AirFranceKlmAdapter(base_url={str(self._client.base_url)!r})"

    def fetch(self, query: FlightQuery) -> Observation:
        day = query.departure_date
        params = {
            "startRange": f"{(day - timedelta(days=1)).isoformat()}T00:00:00Z",
            "endRange": f"{(day + timedelta(days=1)).isoformat()}T23:59:59Z",
            "carrierCode": query.carrier,
            "flightNumber": str(query.number),
        }
        headers = {"API-Key": self._api_key, "Accept": "application/hal+json",
                   "Accept-Language": "en-GB"}
        fetched_at = datetime.now(UTC)
        body, response = get_json(self._client, PROVIDER, "/opendata/flightstatus",
                                  params=params, headers=headers)
        with schema_guard(PROVIDER):
            legs = parse_flight_status(body, query)
        return Observation(provider=PROVIDER, query=query, legs=legs, fetched_at=fetched_at,
                           raw=response.text)


def iata_airline(code: str) -> str:
    return ICAO_TO_IATA.get(code.upper(), code.upper())


def _matches(flight: Mapping[str, Any], query: FlightQuery) -> bool:
    """The operating designator, or one of its codeshares, is the queried one."""
    suffix = text(flight.get("operationalSuffix"), PROVIDER, "operationalSuffix") or ""
    if suffix != query.suffix:
        return False
    airline = as_object(flight.get("airline") or {}, PROVIDER, "airline")
    code = text(airline.get("code"), PROVIDER, "airline.code")
    number = flight.get("flightNumber")
    if code is not None and number is not None and iata_airline(code) == query.carrier and \
            integer(number, PROVIDER, "flightNumber") == query.number:
        return True
    return any(designator == f"{query.carrier}{query.number}" for designator in _codeshares(flight))


def _first_local_date(flight: Mapping[str, Any]) -> date | None:
    """Date of the first leg's scheduled departure as written (local, with its offset)."""
    legs = as_list(flight.get("flightLegs") or [], PROVIDER, "flightLegs")
    if not legs:
        return None
    times = as_object(as_object(as_object(legs[0], PROVIDER, "flightLegs[0]").get(
        "departureInformation") or {}, PROVIDER, "departureInformation").get("times") or {},
        PROVIDER, "times")
    scheduled = times.get("scheduled")
    if not isinstance(scheduled, str):
        return None
    try:
        return datetime.fromisoformat(scheduled).date()
    except ValueError as exc:
        raise bad(PROVIDER, "bad time in flightLegs[0].departureInformation.times."
                            "scheduled") from exc


def parse_flight_status(body: Any, query: FlightQuery) -> tuple[Leg, ...]:
    """The legs of the flight in ``operationalFlights`` that matches ``query`` and whose first
    leg leaves on the queried local date; FlightNotFound when none does."""
    flights = as_list(as_object(body, PROVIDER, "body").get("operationalFlights") or [],
                      PROVIDER, "operationalFlights")
    for entry in flights:
        flight = as_object(entry, PROVIDER, "operationalFlights[]")
        if _matches(flight, query) and _first_local_date(flight) == query.departure_date:
            return parse_flight(flight)
    raise FlightNotFound(f"{PROVIDER}: no such flight {query.key}", provider=PROVIDER)


def _codeshares(flight: Mapping[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for entry in as_list(flight.get("codeShareRelations") or [], PROVIDER, "codeShareRelations"):
        relation = as_object(entry, PROVIDER, "codeShareRelations[]")
        airline = as_object(relation.get("airline") or {}, PROVIDER, "codeShareRelations.airline")
        code = text(airline.get("code"), PROVIDER, "codeShareRelations.airline.code")
        number = relation.get("marketingFlightNumber")
        if code is None or number is None:
            continue
        suffix = text(relation.get("operationalSuffix"), PROVIDER, "operationalSuffix") or ""
        designator = f"{iata_airline(code)}{integer(number, PROVIDER, 'marketingFlightNumber')}"
        if designator + suffix not in out:
            out.append(designator + suffix)
    return tuple(out)


def _time(times: Mapping[str, Any], key: str, where: str) -> datetime | None:
    value = times.get(key)
    if isinstance(value, Mapping):   # ``estimated`` is an object, ``estimatedPublic`` a string
        value = value.get("value")
    if value is None or value == "":
        return None
    return parse_aware(value, PROVIDER, f"{where}.times.{key}")


def _first_time(times: Mapping[str, Any], keys: tuple[str, ...], where: str) -> datetime | None:
    for key in keys:
        found = _time(times, key, where)
        if found is not None:
            return found
    return None


def _first_text(places: Mapping[str, Any], keys: tuple[str, ...], where: str) -> str | None:
    for key in keys:
        value = places.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        found = text(value, PROVIDER, f"{where}.places.{key}")
        if found is not None:
            return found
    return None


def _side(leg: Mapping[str, Any], key: str) -> tuple[str, Mapping[str, Any], Mapping[str, Any]]:
    info = as_object(required(leg, key, PROVIDER, "flightLegs[]"), PROVIDER, key)
    airport = as_object(required(info, "airport", PROVIDER, key), PROVIDER, f"{key}.airport")
    code = text(required(airport, "code", PROVIDER, f"{key}.airport"), PROVIDER,
                f"{key}.airport.code")
    if code is None:
        raise bad(PROVIDER, f"empty {key}.airport.code")
    places = as_object(airport.get("places") or {}, PROVIDER, f"{key}.airport.places")
    times = as_object(info.get("times") or {}, PROVIDER, f"{key}.times")
    return code, places, times


_ESTIMATE_KEYS = ("estimatedPublic", "estimated", "latestPublished")


def _leg_status(leg: Mapping[str, Any], flight_status: str | None, took_off: bool,
                departed: bool) -> FlightStatus | None:
    irregularity = leg.get("irregularity")
    if isinstance(irregularity, Mapping) and irregularity.get("cancelled") == "Y":
        return FlightStatus.CANCELLED
    code = text(leg.get("legStatusPublic"), PROVIDER, "legStatusPublic")
    if code is None and flight_status not in (None, "PARTIALLY_CANCELLED"):
        code = flight_status
    if code is None:
        return None
    status = mapped_status(LEG_STATUS, code, PROVIDER, "legStatusPublic")
    # Arrival-estimate codes are computed before and during the flight alike; the movement
    # times tell which (docs/PROVIDERS.md section 8, DEPARTED / EN_ROUTE row).
    if code.upper() in _ARRIVAL_ESTIMATE_CODES or status is FlightStatus.DEPARTED:
        if took_off:
            return FlightStatus.AIRBORNE
        if departed:
            return FlightStatus.DEPARTED
    return status


def parse_flight(flight: Mapping[str, Any]) -> tuple[Leg, ...]:
    """One ``operationalFlights[]`` entry (or a ``/flightstatus/{id}`` body) as its legs."""
    raw_legs = as_list(required(flight, "flightLegs", PROVIDER, "flight"), PROVIDER, "flightLegs")
    if not raw_legs:
        raise ProviderBadResponse(f"{PROVIDER}: flight has no legs", provider=PROVIDER)
    airline = as_object(flight.get("airline") or {}, PROVIDER, "airline")
    carrier = text(airline.get("code"), PROVIDER, "airline.code")
    number = flight.get("flightNumber")
    flight_status = text(flight.get("flightStatusPublic"), PROVIDER, "flightStatusPublic")
    codeshares = _codeshares(flight) or None
    legs: list[Leg] = []
    for entry in raw_legs:
        leg = as_object(entry, PROVIDER, "flightLegs[]")
        origin, dep_places, dep_times = _side(leg, "departureInformation")
        destination, arr_places, arr_times = _side(leg, "arrivalInformation")
        took_off = _time(dep_times, "actualTakeOffTime", "departure") is not None
        actual_dep = _time(dep_times, "actual", "departure")
        aircraft = as_object(leg.get("aircraft") or {}, PROVIDER, "aircraft")
        legs.append(Leg(
            origin=origin, destination=destination,
            status=_leg_status(leg, flight_status, took_off, actual_dep is not None),
            scheduled_departure=_time(dep_times, "scheduled", "departure"),
            estimated_departure=_first_time(dep_times, _ESTIMATE_KEYS, "departure"),
            actual_departure=actual_dep,
            scheduled_arrival=_time(arr_times, "scheduled", "arrival"),
            estimated_arrival=_first_time(arr_times, _ESTIMATE_KEYS, "arrival"),
            actual_arrival=_first_time(arr_times, ("actual", "actualTouchDownTime"), "arrival"),
            departure_terminal=_first_text(dep_places, ("terminalCode", "boardingTerminal"),
                                           "departure"),
            departure_gate=_first_text(dep_places, ("gateNumber", "paxDepartureGate"),
                                       "departure"),
            arrival_terminal=_first_text(arr_places, ("arrivalPositionTerminal", "terminalCode"),
                                         "arrival"),
            arrival_gate=_first_text(arr_places, ("gateNumber",), "arrival"),
            aircraft_type=text(aircraft.get("typeCode"), PROVIDER, "aircraft.typeCode"),
            aircraft_registration=text(aircraft.get("registration"), PROVIDER,
                                       "aircraft.registration"),
            codeshares=codeshares,
            operating_carrier=iata_airline(carrier) if carrier else None,
            operating_flight_number=(integer(number, PROVIDER, "flightNumber")
                                     if number is not None else None),
        ))
    return tuple(legs)
