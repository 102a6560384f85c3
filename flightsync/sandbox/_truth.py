"""One deterministic "truth" per flight (carrier, number, date) that every provider renders.

The same flight asked of two providers must describe the same route, times and gates, so the
truth is derived only from a hash of the designator and date; "now" only decides which of the
scheduled events have already happened.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from typing import Any, cast
from zoneinfo import ZoneInfo

import airportsdata

from flightsync.models import FlightStatus

# Hubs the synthetic flights of a carrier start from; unknown carriers start from a generic hub.
_HUBS: dict[str, tuple[str, ...]] = {
    "LH": ("FRA", "MUC"), "LX": ("ZRH",), "OS": ("VIE",), "SN": ("BRU",), "EW": ("DUS", "CGN"),
    "EN": ("MUC",), "4Y": ("FRA",), "AF": ("CDG",), "KL": ("AMS",), "BA": ("LHR",),
}
_GENERIC_HUBS = ("JFK", "ATL", "DXB", "SIN", "MAD")
_DESTINATIONS = (
    "JFK", "ORD", "BOS", "IAD", "SFO", "YYZ", "GRU", "SIN", "DXB", "RUH", "NRT", "ICN", "HKG",
    "DEL", "BKK", "JNB", "BCN", "LIS", "NCE", "MAD", "FCO", "ATH", "HEL", "CPH", "OSL", "ARN",
    "WAW", "PRG", "BUD", "DUB", "EDI", "MAN", "LYS", "MXP", "IST", "CAI", "TLV",
)
_AIRLINE_NAMES: dict[str, tuple[str, str]] = {   # IATA -> (ICAO, name)
    "LH": ("DLH", "LUFTHANSA"), "LX": ("SWR", "SWISS"), "OS": ("AUA", "AUSTRIAN"),
    "SN": ("BEL", "BRUSSELS AIRLINES"), "EW": ("EWG", "EUROWINGS"), "EN": ("DLA", "AIR DOLOMITI"),
    "4Y": ("OCN", "DISCOVER AIRLINES"), "AF": ("AFR", "AIR FRANCE"), "KL": ("KLM", "KLM"),
    "BA": ("BAW", "BRITISH AIRWAYS"), "UA": ("UAL", "UNITED AIRLINES"),
    "DL": ("DAL", "DELTA AIR LINES"), "AA": ("AAL", "AMERICAN AIRLINES"),
    "AC": ("ACA", "AIR CANADA"), "IB": ("IBE", "IBERIA"), "KE": ("KAL", "KOREAN AIR"),
    "SQ": ("SIA", "SINGAPORE AIRLINES"), "QR": ("QTR", "QATAR AIRWAYS"),
}
_PARTNERS: dict[str, tuple[str, ...]] = {
    "LH": ("UA", "AC", "SQ"), "LX": ("UA", "AC"), "OS": ("UA", "LH"), "SN": ("LH", "UA"),
    "AF": ("DL", "KL", "KE"), "KL": ("DL", "AF", "KE"), "BA": ("AA", "IB", "QR"),
}
_REGISTRATION_PREFIX: dict[str, str] = {
    "LH": "D-A", "EW": "D-A", "4Y": "D-A", "EN": "I-AD", "LX": "HB-J", "OS": "OE-L",
    "SN": "OO-S", "AF": "F-G", "KL": "PH-", "BA": "G-",
}
# (IATA code, ICAO code, name); narrow bodies first.
_NARROW = (("320", "A320", "AIRBUS A320"), ("32N", "A20N", "AIRBUS A320NEO"),
           ("E90", "E190", "EMBRAER 190"), ("738", "B738", "BOEING 737-800"))
_WIDE = (("359", "A359", "AIRBUS A350-900"), ("77W", "B77W", "BOEING 777-300ER"),
         ("744", "B744", "BOEING 747-400"), ("789", "B789", "BOEING 787-9"))
BOARDING_MINUTES = 40


@cache
def _airports() -> dict[str, dict[str, Any]]:
    # Parsing the table takes a moment; once per process is enough.
    return cast(dict[str, dict[str, Any]], airportsdata.load("IATA"))


def warm_up() -> None:
    """Load the airport table now (it takes a moment) rather than on the first request."""
    _airports()


def airport(iata: str) -> dict[str, Any] | None:
    """The airportsdata row of ``iata`` (name, city, country, lat, lon, tz, icao), or None."""
    return _airports().get(iata.upper())


def airline(carrier: str) -> tuple[str | None, str]:
    """(ICAO code or None, display name) of an IATA carrier code."""
    icao, name = _AIRLINE_NAMES.get(carrier, (None, f"AIRLINE {carrier}"))
    return icao, name


def carrier_from_icao(icao: str) -> str | None:
    """The IATA code of an ICAO airline designator we know, else None."""
    for iata, (code, _name) in _AIRLINE_NAMES.items():
        if code == icao:
            return iata
    return None


@dataclass(frozen=True, slots=True)
class AircraftTruth:
    iata: str
    icao: str
    name: str
    registration: str


@dataclass(frozen=True, slots=True)
class LegTruth:
    """One leg as it really is; providers render (and scenarios may distort) it."""

    origin: str
    destination: str
    scheduled_departure: datetime      # aware, in the origin's zone
    scheduled_arrival: datetime        # aware, in the destination's zone
    departure_delay_minutes: int
    arrival_delay_minutes: int
    departure_terminal: str
    departure_gate: str
    arrival_terminal: str
    arrival_gate: str
    baggage_belt: str
    aircraft: AircraftTruth
    cancelled: bool = False

    @property
    def estimated_departure(self) -> datetime:
        return self.scheduled_departure + timedelta(minutes=self.departure_delay_minutes)

    @property
    def estimated_arrival(self) -> datetime:
        return self.scheduled_arrival + timedelta(minutes=self.arrival_delay_minutes)

    def departed(self, now: datetime) -> bool:
        return not self.cancelled and now >= self.estimated_departure

    def arrived(self, now: datetime) -> bool:
        return not self.cancelled and now >= self.estimated_arrival

    def status(self, now: datetime) -> FlightStatus:
        """The leg's status at ``now`` in flightsync's vocabulary."""
        if self.cancelled:
            return FlightStatus.CANCELLED
        if self.arrived(now):
            return FlightStatus.ARRIVED
        if self.departed(now):
            return FlightStatus.AIRBORNE
        if now >= self.estimated_departure - timedelta(minutes=BOARDING_MINUTES):
            return FlightStatus.BOARDING
        return FlightStatus.DELAYED if self.departure_delay_minutes >= 15 else (
            FlightStatus.SCHEDULED)


@dataclass(frozen=True, slots=True)
class FlightTruth:
    carrier: str
    number: int
    day: date
    legs: tuple[LegTruth, ...]
    codeshares: tuple[str, ...]     # marketing designators such as "UA9050"

    @property
    def designator(self) -> str:
        return f"{self.carrier}{self.number}"


# Fields a scenario override may set on a leg, and the type each takes.
OVERRIDABLE: dict[str, type] = {
    "departure_gate": str, "arrival_gate": str, "departure_terminal": str,
    "arrival_terminal": str, "baggage_belt": str, "departure_delay_minutes": int,
    "arrival_delay_minutes": int, "delay_minutes": int, "cancelled": bool,
}


def with_overrides(leg: LegTruth, fields: dict[str, Any]) -> LegTruth:
    """``leg`` with scenario field overrides applied; ``delay_minutes`` shifts both ends."""
    changes = {k: v for k, v in fields.items() if k != "delay_minutes"}
    if "delay_minutes" in fields:
        changes.setdefault("departure_delay_minutes", fields["delay_minutes"])
        changes.setdefault("arrival_delay_minutes", fields["delay_minutes"])
    return replace(leg, **changes)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - test data


def _distance_km(a: dict[str, Any], b: dict[str, Any]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a["lat"], a["lon"], b["lat"], b["lon"]))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6371 * math.asin(math.sqrt(h))


def _gate(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGHZ')}{rng.randint(1, 60)}"


def _aircraft(rng: random.Random, carrier: str, long_haul: bool) -> AircraftTruth:
    iata, icao, name = rng.choice(_WIDE if long_haul else _NARROW)
    prefix = _REGISTRATION_PREFIX.get(carrier, "N")
    letters = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWXYZ") for _ in range(6 - len(prefix)))
    return AircraftTruth(iata=iata, icao=icao, name=name, registration=prefix + letters)


def _leg(rng: random.Random, carrier: str, origin: str, destination: str,
         departure: datetime) -> LegTruth:
    a, b = airport(origin), airport(destination)
    assert a is not None and b is not None  # every code in our lists is in airportsdata
    distance = _distance_km(a, b)
    minutes = 5 * round((30 + distance / 800 * 60) / 5)
    arrival = (departure + timedelta(minutes=minutes)).astimezone(ZoneInfo(b["tz"]))
    delay = rng.choice((0, 0, 0, 0, 0, 0, -5, 5, 10, 20, 35, 50, 90))
    return LegTruth(
        origin=origin, destination=destination,
        scheduled_departure=departure, scheduled_arrival=arrival,
        departure_delay_minutes=delay, arrival_delay_minutes=max(delay - 5, 0) if delay else 0,
        departure_terminal=str(rng.randint(1, 3)), departure_gate=_gate(rng),
        arrival_terminal=str(rng.randint(1, 3)), arrival_gate=_gate(rng),
        baggage_belt=str(rng.randint(1, 12)),
        aircraft=_aircraft(rng, carrier, long_haul=distance > 3000),
    )


def is_multi_leg(carrier: str, number: int) -> bool:
    """KL flight numbers ending in 9 fly a triangle of three legs (like KL419 AMS-RUH-DXB-AMS)."""
    return carrier == "KL" and number % 10 == 9


@lru_cache(maxsize=8192)  # benchmarks ask for the same flights many times
def flight_truth(carrier: str, number: int, day: date) -> FlightTruth:
    """The one truth of flight ``carrier number`` on local departure date ``day``."""
    rng = _rng(carrier, number, day.isoformat())
    origin = rng.choice(_HUBS.get(carrier, _GENERIC_HUBS))
    stops = [d for d in _DESTINATIONS if d != origin]
    route = [origin, *rng.sample(stops, 2), origin] if is_multi_leg(carrier, number) else [
        origin, rng.choice(stops)]
    zone = ZoneInfo(airport(origin)["tz"])  # type: ignore[index]
    departure = datetime.combine(day, time(rng.randint(6, 21), 5 * rng.randint(0, 11)),
                                 tzinfo=zone)
    legs: list[LegTruth] = []
    for here, there in itertools.pairwise(route):
        leg = _leg(rng, carrier, here, there, departure)
        legs.append(leg)
        departure = (leg.scheduled_arrival + timedelta(minutes=rng.choice((60, 75, 90)))
                     ).astimezone(ZoneInfo(airport(there)["tz"]))  # type: ignore[index]
    partners = _PARTNERS.get(carrier, ("UA", "DL", "AA"))
    codeshares = tuple(f"{p}{rng.randint(1000, 9899)}"
                       for p in rng.sample(partners, rng.randint(0, min(2, len(partners)))))
    return FlightTruth(carrier=carrier, number=number, day=day, legs=tuple(legs),
                       codeshares=codeshares)
