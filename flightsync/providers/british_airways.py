"""British Airways legacy Flight Information v1 (docs/PROVIDERS.md section 5).

``GET {base}/rest-v1/v1/flights;scheduledDepartureDate={date};flightNumber={flight}`` with the
``client-key`` header. The body is ``FlightsResponse`` with ``Flight`` and, inside each flight,
``Sector``; either may be one object instead of a one-element array (XML-to-JSON conversion),
and terminals, aircraft types and flight numbers arrive as numbers or strings.

The time zone of the ``*DateTime`` values and the status vocabulary are undocumented
(docs/PROVIDERS.md section 10). Times with an offset are taken as given; times without one are read
as wall-clock time at the sector's own airport (departure times at the departure airport,
arrival times at the arrival airport), which is how airline timetables are published. Statuses
are matched on words, leniently; an unrecognized one is ``unknown`` and logged.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import ConfigError, FlightNotFound, ProviderBadResponse
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._airports import airport_tz, local_to_utc
from flightsync.providers._http import get_json
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

_NAME = "british_airways"
_PATH = "/rest-v1/v1/flights"

# Undocumented vocabulary: matched on words, most specific first ("NOT DEPARTED" before
# "DEPARTED"), after upper-casing and turning "_"/"-" into spaces.
_STATUS_WORDS: tuple[tuple[str, FlightStatus], ...] = (
    ("CANCEL", FlightStatus.CANCELLED),
    ("DIVERT", FlightStatus.DIVERTED),
    ("NOT DEPARTED", FlightStatus.SCHEDULED),
    ("NOT ARRIVED", FlightStatus.SCHEDULED),
    ("ARRIVED", FlightStatus.ARRIVED),
    ("ON STAND", FlightStatus.ARRIVED),
    ("ON BLOCKS", FlightStatus.ARRIVED),
    ("LANDED", FlightStatus.LANDED),
    ("AIRBORNE", FlightStatus.AIRBORNE),
    ("IN FLIGHT", FlightStatus.AIRBORNE),
    ("EN ROUTE", FlightStatus.AIRBORNE),
    ("TAKEN OFF", FlightStatus.AIRBORNE),
    ("DEPARTED", FlightStatus.DEPARTED),
    ("BOARDING", FlightStatus.BOARDING),
    ("GATE CLOSED", FlightStatus.BOARDING),
    ("FINAL CALL", FlightStatus.BOARDING),
    ("DELAY", FlightStatus.DELAYED),
    ("LATE", FlightStatus.DELAYED),
    ("ON TIME", FlightStatus.SCHEDULED),
    ("SCHEDULED", FlightStatus.SCHEDULED),
    ("EXPECTED", FlightStatus.SCHEDULED),
    ("GATE OPEN", FlightStatus.SCHEDULED),
)

# How far a flight has got; the furthest of departure, arrival and gate status wins.
_PROGRESS: tuple[FlightStatus, ...] = (
    FlightStatus.SCHEDULED, FlightStatus.DELAYED, FlightStatus.BOARDING,
    FlightStatus.DEPARTED, FlightStatus.AIRBORNE, FlightStatus.LANDED, FlightStatus.ARRIVED,
)
_OFF_BLOCK = frozenset({FlightStatus.DEPARTED, FlightStatus.AIRBORNE, FlightStatus.LANDED,
                        FlightStatus.ARRIVED, FlightStatus.DIVERTED})
_DOWN = frozenset({FlightStatus.LANDED, FlightStatus.ARRIVED})


class BritishAirwaysAdapter:
    """BA-operated flights by flight number and scheduled departure date (legacy v1 format)."""

    name: ClassVar[str] = _NAME
    default_base_url: ClassVar[str] = "https://api.ba.com"
    default_priority: ClassVar[int] = 40
    # The API covers "BA operated flights" only (developer.ba.com Flight_Info).
    default_carriers: ClassVar[frozenset[str] | None] = frozenset({"BA"})
    credential_env: ClassVar[tuple[str, ...]] = ("BA_CLIENT_KEY",)
    uses_oauth: ClassVar[bool] = False
    # flightNumber is carrier and number; a suffixed flight would be answered by the
    # unsuffixed one.
    serves_operational_suffix: ClassVar[bool] = False

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        key = settings.credentials.get("api_key")
        if not key:
            raise ConfigError("british_airways: no client key: set BA_CLIENT_KEY")
        self._client = client
        self._key = key

    def fetch(self, query: FlightQuery) -> Observation:
        """The sectors BA reports for ``query``, as legs in flying order."""
        body, response = get_json(
            self._client, _NAME, request_path(query),
            headers={"client-key": self._key, "Accept": "application/json"})
        legs, updated_at = parse_response(body, query)
        return Observation(provider=_NAME, query=query, legs=legs,
                           fetched_at=datetime.now(UTC), updated_at=updated_at,
                           raw=response.text)


def request_path(query: FlightQuery) -> str:
    """The resource path with its matrix parameters, e.g.
    ``/rest-v1/v1/flights;scheduledDepartureDate=2026-07-15;flightNumber=BA117``."""
    return (f"{_PATH};scheduledDepartureDate={query.departure_date.isoformat()}"
            f";flightNumber={query.carrier}{query.number}")


def parse_response(body: Any, query: FlightQuery) -> tuple[tuple[Leg, ...], datetime | None]:
    """Legs of the flights in ``body`` that match ``query`` (carrier, number and the local
    scheduled departure date at the first sector's airport), and ``DataLastUpdated``."""
    if not isinstance(body, dict) or not isinstance(body.get("FlightsResponse"), dict):
        raise _bad("body has no FlightsResponse object")
    envelope: dict[str, Any] = body["FlightsResponse"]
    legs: list[Leg] = []
    for flight in _as_list(envelope.get("Flight"), "Flight"):
        if _matches(flight, query):
            legs.extend(_flight_legs(flight, query))
    if not legs:
        raise FlightNotFound(f"{_NAME}: no such flight {query.key}", provider=_NAME)
    return tuple(legs), _updated_at(envelope.get("DataLastUpdated"))


def _matches(flight: dict[str, Any], query: FlightQuery) -> bool:
    carrier = _text(flight.get("MarketingCarrierCode"), "Flight.MarketingCarrierCode")
    number = _flight_number(flight.get("FlightNumber"), carrier)
    return carrier in (None, query.carrier) and number == query.number


def _flight_legs(flight: dict[str, Any], query: FlightQuery) -> list[Leg]:
    sectors = _as_list(flight.get("Sector"), "Flight.Sector")
    if not sectors:
        raise _bad("Flight without Sector")
    first = sectors[0]
    origin = _airport(first, "DepartureAirport")
    if _local_date(_required(first, "ScheduledDepartureDateTime"), origin) \
            != query.departure_date:
        return []
    carrier = _text(flight.get("MarketingCarrierCode"), "Flight.MarketingCarrierCode")
    number = _flight_number(flight.get("FlightNumber"), carrier)
    legs = [_sector_leg(sector, carrier or query.carrier, number) for sector in sectors]
    return sorted(legs, key=lambda leg: leg.scheduled_departure or datetime.max.replace(tzinfo=UTC))


def _sector_leg(sector: dict[str, Any], carrier: str, number: int | None) -> Leg:
    origin = _airport(sector, "DepartureAirport")
    destination = _optional_airport(sector, "ArrivalAirport")
    status = _status(sector)
    sched_dep = _time(_required(sector, "ScheduledDepartureDateTime"), origin,
                      "ScheduledDepartureDateTime")
    sched_arr = _time(sector.get("ScheduledArrivalDateTime"), destination,
                      "ScheduledArrivalDateTime")
    reported_dep = _time(sector.get("ReportedDepartureDateTime"), origin,
                         "ReportedDepartureDateTime")
    reported_arr = _time(sector.get("ReportedArrivalDateTime"), destination,
                         "ReportedArrivalDateTime")
    if (status is FlightStatus.SCHEDULED and reported_dep is not None
            and sched_dep is not None and reported_dep > sched_dep):
        status = FlightStatus.DELAYED
    # "Reported" is the latest time BA knows: an estimate until the event, then the actual.
    departed = status in _OFF_BLOCK
    down = status in _DOWN
    gate_info = sector.get("DepartureGateInformation")
    if gate_info is not None and not isinstance(gate_info, dict):
        raise _bad("Sector.DepartureGateInformation is not an object")
    operating = _text(sector.get("OperatingCarrierCode"), "Sector.OperatingCarrierCode")
    return Leg(
        origin=origin,
        destination=destination,
        status=status,
        scheduled_departure=sched_dep,
        estimated_departure=None if departed else reported_dep,
        actual_departure=reported_dep if departed else None,
        scheduled_arrival=sched_arr,
        estimated_arrival=None if down else reported_arr,
        actual_arrival=reported_arr if down else None,
        departure_terminal=_text(sector.get("DepartureTerminal"), "Sector.DepartureTerminal"),
        departure_gate=_text((gate_info or {}).get("GateNumber"),
                             "DepartureGateInformation.GateNumber"),
        arrival_terminal=_text(sector.get("ArrivalTerminal"), "Sector.ArrivalTerminal"),
        aircraft_type=_text(sector.get("AircraftTypeCode"), "Sector.AircraftTypeCode"),
        operating_carrier=operating,
        # The operating flight number is only known when BA operates under its own number.
        operating_flight_number=number if operating in (None, carrier) else None,
    )


def _status(sector: dict[str, Any]) -> FlightStatus:
    gate_info = sector.get("DepartureGateInformation")
    raw = {
        "departure": sector.get("DepartureStatus"),
        "arrival": sector.get("ArrivalStatus"),
        "gate": gate_info.get("GateStatus") if isinstance(gate_info, dict) else None,
    }
    found: list[FlightStatus] = []
    for what, value in raw.items():
        text = _text(value, f"Sector {what} status")
        if text is None:
            continue
        # A bare "Open"/"Closed" in the gate field speaks of the gate.
        if what == "gate" and "GATE" not in text.upper():
            text = f"Gate {text}"
        status = _word_status(text)
        if status is None:
            log.info("provider.status.unknown", provider=_NAME, field=what, code=text[:40])
        else:
            found.append(status)
    for exceptional in (FlightStatus.CANCELLED, FlightStatus.DIVERTED):
        if exceptional in found:
            return exceptional
    progress = [s for s in found if s in _PROGRESS]
    if not progress:
        return FlightStatus.UNKNOWN
    return max(progress, key=_PROGRESS.index)


def _word_status(text: str) -> FlightStatus | None:
    words = " ".join(text.upper().replace("_", " ").replace("-", " ").split())
    for needle, status in _STATUS_WORDS:
        if needle in words:
            return status
    return None


def _updated_at(value: Any) -> datetime | None:
    text = _text(value, "DataLastUpdated")
    if text is None:
        return None
    parsed = _parse_iso(text, "DataLastUpdated")
    # No airport to place a local stamp in: an update time in an unknown zone would mislead
    # the policy's most_recent rule by hours, so it is dropped.
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def _time(value: Any, airport: str | None, what: str) -> datetime | None:
    text = _text(value, what)
    if text is None:
        return None
    parsed = _parse_iso(text, what)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    if airport is None:
        raise _bad(f"{what} has no offset and no airport to place it")
    return local_to_utc(parsed, airport, _NAME)


def _local_date(value: Any, airport: str) -> date:
    text = _text(value, "ScheduledDepartureDateTime")
    if text is None:
        raise _bad("ScheduledDepartureDateTime is empty")
    parsed = _parse_iso(text, "ScheduledDepartureDateTime")
    if parsed.tzinfo is None:
        return parsed.date()
    zone = airport_tz(airport)
    return parsed.astimezone(zone).date() if zone is not None else parsed.date()


def _parse_iso(text: str, what: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise _bad(f"bad time in {what}: {text[:40]!r}") from exc


def _flight_number(value: Any, carrier: str | None) -> int | None:
    text = _text(value, "Flight.FlightNumber")
    if text is None:
        return None
    if carrier and text.upper().startswith(carrier):
        text = text[len(carrier):]
    digits = text.strip()
    if not digits.isdigit():
        raise _bad(f"Flight.FlightNumber is not a flight number: {text[:12]!r}")
    return int(digits)


def _airport(sector: dict[str, Any], key: str) -> str:
    code = _optional_airport(sector, key)
    if code is None:
        raise _bad(f"Sector.{key} is missing")
    return code


def _optional_airport(sector: dict[str, Any], key: str) -> str | None:
    code = _text(sector.get(key), f"Sector.{key}")
    if code is not None and (len(code) != 3 or not code.isalnum()):
        raise _bad(f"Sector.{key} is not an IATA airport code: {code[:8]!r}")
    return code.upper() if code is not None else None


def _required(sector: dict[str, Any], key: str) -> Any:
    if sector.get(key) in (None, ""):
        raise _bad(f"Sector.{key} is missing")
    return sector[key]


def _as_list(value: Any, what: str) -> list[dict[str, Any]]:
    """A repeated element: absent, one object (collapsed one-element array) or an array."""
    if value is None:
        return []
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise _bad(f"{what} is neither an object nor an array of objects")
    return items


def _text(value: Any, what: str) -> str | None:
    """A string field that XML-to-JSON conversion may have turned into a number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _bad(f"{what} has type {type(value).__name__}")
    if isinstance(value, float):
        value = int(value) if value.is_integer() else value
    text = str(value).strip()
    return text or None


def _bad(message: str) -> ProviderBadResponse:
    return ProviderBadResponse(f"{_NAME}: {message}", provider=_NAME)


__all__ = ["BritishAirwaysAdapter", "parse_response", "request_path"]
