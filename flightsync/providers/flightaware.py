"""FlightAware AeroAPI v4 (docs/PROVIDERS.md section 6.1): ``GET {base}/flights/{ident}``, header
``x-apikey``, times in UTC (``YYYY-MM-DDTHH:MM:SSZ``).

The ident sent is the designator as the user gave it (``BA117``, or ``BAW117`` for an ICAO
carrier). AeroAPI prefers ICAO idents but resolves IATA ones itself; turning an IATA airline
code into its ICAO code would need an airline table that flightsync does not ship, and a wrong
guess would fetch another airline's flight. ``ident_type=designator`` keeps an ident from being
read as a registration.

AeroAPI answers with every flight of that ident in a window of days. Flights are chained into
journeys (a flight continues one when it leaves from the airport that journey landed at last,
after a stop of at most eight scheduled hours, from an airport the journey has not left from
before), and the journeys whose first scheduled departure falls on the queried date in the
origin's local time (``scheduled_out`` + ``origin.timezone``) become the legs, in order.
Chaining keeps a leg that leaves after local midnight with its journey (docs/CONTRACTS.md section 3:
one date for every leg); a flight that chains to nothing is selected by its own date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import ConfigError, FlightNotFound, ProviderBadResponse
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._airports import airport_tz
from flightsync.providers._http import get_json, parse_aware
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

_NAME = "flightaware"
_ISO_TIME = "%Y-%m-%dT%H:%M:%SZ"
# A local date spans UTC-12 to UTC+14; the window also reaches a day further back so that a
# journey which began the day before is seen whole, not mistaken for one starting on the date.
_EARLIEST_OFFSET = timedelta(hours=14 + 24)
# ...and a day further forward, for the later legs of a long multi-leg journey.
_LATEST_OFFSET = timedelta(hours=12 + 24)
# Longest scheduled stop between two legs of one journey; an overnight stop at a hub, where
# the next day's journey may start, is longer.
_MAX_STOP = timedelta(hours=8)

# The free-text ``status`` is a fallback only (its vocabulary is undocumented, section 8 says to
# rely on the booleans and actual_* times); most advanced first, "en route" before "delayed"
# so that "En Route / Delayed" reads as airborne.
_STATUS_TEXT: tuple[tuple[str, FlightStatus], ...] = (
    ("cancel", FlightStatus.CANCELLED),
    ("divert", FlightStatus.DIVERTED),
    ("arrived", FlightStatus.ARRIVED),
    ("landed", FlightStatus.LANDED),
    ("en route", FlightStatus.AIRBORNE),
    ("departed", FlightStatus.DEPARTED),
    ("taxiing", FlightStatus.DEPARTED),
    ("delayed", FlightStatus.DELAYED),
    ("scheduled", FlightStatus.SCHEDULED),
    ("on time", FlightStatus.SCHEDULED),
)


class FlightAwareAdapter:
    """Any carrier's flights from AeroAPI v4, by designator and local departure date."""

    name: ClassVar[str] = _NAME
    default_base_url: ClassVar[str] = "https://aeroapi.flightaware.com/aeroapi"
    default_priority: ClassVar[int] = 20
    default_carriers: ClassVar[frozenset[str] | None] = None
    credential_env: ClassVar[tuple[str, ...]] = ("FLIGHTAWARE_API_KEY",)
    uses_oauth: ClassVar[bool] = False
    # Idents carry no suffix: asked for LH400A it would send LH400 and answer for the
    # unsuffixed flight.
    serves_operational_suffix: ClassVar[bool] = False

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        key = settings.credentials.get("api_key")
        if not key:
            raise ConfigError("flightaware: no API key: set FLIGHTAWARE_API_KEY")
        self._client = client
        self._key = key

    def fetch(self, query: FlightQuery) -> Observation:
        """The flights AeroAPI reports for ``query``'s designator on its date, as legs."""
        body, response = get_json(
            self._client, _NAME, f"/flights/{ident(query)}", params=request_params(query),
            headers={"x-apikey": self._key, "Accept": "application/json"})
        legs, updated_at = parse_response(body, query)
        return Observation(provider=_NAME, query=query, legs=legs,
                           fetched_at=datetime.now(UTC), updated_at=updated_at,
                           raw=response.text)


def ident(query: FlightQuery) -> str:
    """The designator sent as ident: carrier as given (IATA or ICAO) and the bare number.
    AeroAPI idents carry no operational suffix."""
    return f"{query.carrier}{query.number}"


def request_params(query: FlightQuery) -> dict[str, str]:
    """``ident_type`` and the ``start``/``end`` window: every departure that is on the query's
    date in some time zone (UTC-12 to UTC+14), and a day either side of that."""
    midnight = datetime.combine(query.departure_date, time(), tzinfo=UTC)
    start = midnight - _EARLIEST_OFFSET
    end = midnight + timedelta(days=1) + _LATEST_OFFSET
    return {"ident_type": "designator", "start": start.strftime(_ISO_TIME),
            "end": end.strftime(_ISO_TIME)}


def parse_response(body: Any, query: FlightQuery) -> tuple[tuple[Leg, ...], datetime | None]:
    """Legs of the journeys in ``body`` that start on ``query``'s date at their first origin,
    in flying order, and the latest ``last_position.timestamp`` among them, if any."""
    if not isinstance(body, dict) or not isinstance(body.get("flights"), list):
        raise _bad("body has no flights array")
    parsed: list[tuple[Leg, date, datetime | None]] = []
    for flight in body["flights"]:
        if not isinstance(flight, dict):
            raise _bad("flights[] holds a non-object")
        item = _parse_flight(flight)
        if item is not None:
            parsed.append(item)
    parsed.sort(key=lambda item: item[0].scheduled_departure or datetime.min.replace(tzinfo=UTC))
    chosen = [item for journey in _journeys(parsed)
              if journey[0][1] == query.departure_date for item in journey]
    if not chosen:
        raise FlightNotFound(f"{_NAME}: no such flight {query.key}", provider=_NAME)
    stamps = [stamp for _, _, stamp in chosen if stamp is not None]
    return tuple(leg for leg, _, _ in chosen), max(stamps, default=None)


def _journeys(parsed: list[tuple[Leg, date, datetime | None]],
              ) -> list[list[tuple[Leg, date, datetime | None]]]:
    journeys: list[list[tuple[Leg, date, datetime | None]]] = []
    for item in parsed:
        # Journeys of adjacent days can overlap in time, so any open one may be continued.
        journey = next((j for j in reversed(journeys) if _continues(j, item[0])), None)
        if journey is None:
            journeys.append([item])
        else:
            journey.append(item)
    return journeys


def _continues(journey: list[tuple[Leg, date, datetime | None]], leg: Leg) -> bool:
    last = journey[-1][0]
    # One journey never leaves the same airport twice: coming back to where it left from
    # (its hub, or where the window cut in) ends it, and the next departure starts a new one.
    if leg.origin != last.destination or any(leg.origin == j[0].origin for j in journey):
        return False
    if leg.scheduled_departure is None or last.scheduled_arrival is None:
        return False
    return timedelta(0) <= leg.scheduled_departure - last.scheduled_arrival <= _MAX_STOP


def _parse_flight(flight: dict[str, Any]) -> tuple[Leg, date, datetime | None] | None:
    """One flight as (leg, local scheduled departure date, update time); None when it cannot
    be placed (no IATA origin or no scheduled departure, e.g. position-only tracks)."""
    origin = _place(flight, "origin")
    destination = _place(flight, "destination")
    origin_code = _text(origin.get("code_iata"), "origin.code_iata")
    scheduled_out = _time(flight, "scheduled_out") or _time(flight, "scheduled_off")
    if origin_code is None or scheduled_out is None:
        log.info("provider.flight.skipped", provider=_NAME,
                 reason="no IATA origin" if origin_code is None else "no scheduled departure")
        return None
    zone = _zone(origin, origin_code)
    if zone is None:
        log.info("provider.flight.skipped", provider=_NAME, reason="origin time zone unknown",
                 origin=origin_code)
        return None
    operator = _text(flight.get("operator_iata"), "operator_iata")
    number = _text(flight.get("flight_number"), "flight_number")
    codeshares = flight.get("codeshares_iata")
    if codeshares is not None and not (
            isinstance(codeshares, list) and all(isinstance(c, str) for c in codeshares)):
        raise _bad("codeshares_iata is not an array of strings")
    status = _status(flight, scheduled_out)
    leg = Leg(
        origin=origin_code.upper(),
        destination=_upper(_text(destination.get("code_iata"), "destination.code_iata")),
        status=status,
        scheduled_departure=scheduled_out,
        estimated_departure=_time(flight, "estimated_out") or _time(flight, "estimated_off"),
        # Radar-only tracks often lack gate times; the runway time is the closest known.
        actual_departure=_time(flight, "actual_out") or _time(flight, "actual_off"),
        scheduled_arrival=_time(flight, "scheduled_in") or _time(flight, "scheduled_on"),
        estimated_arrival=_time(flight, "estimated_in") or _time(flight, "estimated_on"),
        actual_arrival=_time(flight, "actual_in") or _time(flight, "actual_on"),
        departure_terminal=_text(flight.get("terminal_origin"), "terminal_origin"),
        departure_gate=_text(flight.get("gate_origin"), "gate_origin"),
        arrival_terminal=_text(flight.get("terminal_destination"), "terminal_destination"),
        arrival_gate=_text(flight.get("gate_destination"), "gate_destination"),
        baggage_belt=_text(flight.get("baggage_claim"), "baggage_claim"),
        aircraft_type=_text(flight.get("aircraft_type"), "aircraft_type"),
        aircraft_registration=_text(flight.get("registration"), "registration"),
        codeshares=tuple(c.strip().upper() for c in codeshares if c.strip())
        if codeshares is not None else None,
        operating_carrier=_upper(operator),
        operating_flight_number=int(number) if number is not None and number.isdigit() else None,
    )
    local_date = scheduled_out.astimezone(zone).date()
    return leg, local_date, _last_position_time(flight)


def _status(flight: dict[str, Any], scheduled_out: datetime) -> FlightStatus:
    """docs/PROVIDERS.md section 8: booleans first, then actual_* times, then the text, then the
    departure delay; a flight with none of these is scheduled."""
    if _flag(flight, "cancelled"):
        return FlightStatus.CANCELLED
    if _flag(flight, "diverted"):
        return FlightStatus.DIVERTED
    for key, status in (("actual_in", FlightStatus.ARRIVED), ("actual_on", FlightStatus.LANDED),
                        ("actual_off", FlightStatus.AIRBORNE),
                        ("actual_out", FlightStatus.DEPARTED)):
        if _time(flight, key) is not None:
            return status
    text = _text(flight.get("status"), "status")
    if text is not None:
        lowered = text.lower()
        for needle, status in _STATUS_TEXT:
            if needle in lowered:
                if status is not FlightStatus.SCHEDULED:
                    return status
                break
        else:
            log.info("provider.status.unknown", provider=_NAME, code=text[:40])
    delay = flight.get("departure_delay")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)):
        raise _bad("departure_delay is not a number")
    estimated = _time(flight, "estimated_out")
    if (delay is not None and delay > 0) or (estimated is not None and estimated > scheduled_out):
        return FlightStatus.DELAYED
    return FlightStatus.SCHEDULED


def _zone(origin: dict[str, Any], code: str) -> ZoneInfo | None:
    name = _text(origin.get("timezone"), "origin.timezone")
    if name is not None:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.info("provider.timezone.unknown", provider=_NAME, timezone=name[:40])
    return airport_tz(code)


def _last_position_time(flight: dict[str, Any]) -> datetime | None:
    position = flight.get("last_position")
    if position is None:
        return None
    if not isinstance(position, dict):
        raise _bad("last_position is not an object")
    return _time(position, "timestamp")


def _place(flight: dict[str, Any], key: str) -> dict[str, Any]:
    value = flight.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"{key} is not an object")
    return value


def _time(obj: dict[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{key} is not a time string")
    return parse_aware(value, _NAME, key)


def _flag(flight: dict[str, Any], key: str) -> bool:
    value = flight.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"{key} is not a boolean")
    return value


def _text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _bad(f"{what} has type {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _upper(text: str | None) -> str | None:
    return text.upper() if text is not None else None


def _bad(message: str) -> ProviderBadResponse:
    return ProviderBadResponse(f"{_NAME}: {message}", provider=_NAME)


__all__ = ["FlightAwareAdapter", "ident", "parse_response", "request_params"]
