"""Immutable domain values that cross layers (docs/ARCHITECTURE.md, shared foundations).

SQLModel rows stay inside ``flightsync.store``; everything else passes these around.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import UTC as UTC_TZ
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from flightsync.errors import InputError


class FlightStatus(StrEnum):
    SCHEDULED = "scheduled"
    DELAYED = "delayed"
    BOARDING = "boarding"
    DEPARTED = "departed"
    AIRBORNE = "airborne"
    LANDED = "landed"
    ARRIVED = "arrived"
    CANCELLED = "cancelled"
    DIVERTED = "diverted"
    UNKNOWN = "unknown"


class SyncStatus(StrEnum):
    SYNCED = "synced"
    PARTIAL = "partial"
    CONFLICT = "conflict"
    FAILED = "failed"


PROVIDER_NAMES: tuple[str, ...] = (
    "amadeus", "lufthansa", "airfrance_klm", "british_airways", "flightaware",
    "cirium",
    "aviationstack",
    "aerodatabox",
)

# Fields a provider observes for one leg and the policy resolves, in output order.
TIME_FIELDS: tuple[str, ...] = (
    "scheduled_departure", "estimated_departure", "actual_departure",
    "scheduled_arrival", "estimated_arrival", "actual_arrival",
)
OBSERVED_FIELDS: tuple[str, ...] = (
    "destination", "status", *TIME_FIELDS,
    "departure_terminal", "departure_gate", "arrival_terminal", "arrival_gate",
    "baggage_belt", "aircraft_type", "aircraft_registration", "codeshares",
    "operating_carrier", "operating_flight_number", "diverted_to",
)

_DESIGNATOR = re.compile(
    r"^\s*(?P<carrier>[A-Z0-9]{2}(?<![0-9]{2})|[A-Z]{3})\s*(?P<number>[0-9]{1,4})(?P<suffix>[A-Z]?)\s*$"
)


# ICAO codes of the airlines whose own APIs flightsync speaks (Lufthansa group, Air France-KLM,
# British Airways): a flight given as DLH400 is LH400, one row and the airline's adapter asked.
# Other ICAO designators are kept as given (FlightAware takes them; no maintained package maps
# every airline, and a partial guess would split a flight's rows).
ICAO_AIRLINES: dict[str, str] = {
    "DLH": "LH", "SWR": "LX", "AUA": "OS", "BEL": "SN", "EWG": "EW", "DLA": "EN",
    "OCN": "4Y", "AFR": "AF", "KLM": "KL", "BAW": "BA",
}


def parse_designator(text: str) -> tuple[str, int, str]:
    """Split ``LH001``, ``LH1``, ``lh 1`` or ``LH001A`` into (carrier, number, suffix).

    Carrier: two IATA characters (letters or digits, not two digits) or three ICAO letters
    (``ICAO_AIRLINES`` become their IATA code); 1-4 digits; an optional one-letter
    operational suffix. Anything else (non-ASCII characters included) is an InputError.
    """
    if not text.isascii():
        # str.upper() folds some non-ASCII letters into ASCII ones ("ß" -> "SS", "ﬁ" -> "FI"),
        # so ßA400 would become the real flight SSA400: airline codes are ASCII, refuse others.
        raise InputError(f"invalid flight designator {text[:40]!r}: only ASCII letters, digits "
                         "and spaces, like LH400 or LH400A", code="invalid_flight")
    match = _DESIGNATOR.match(text.upper()) if len(text) <= 16 else None
    if match is None or int(match["number"]) == 0:
        raise InputError(
            f"invalid flight designator {text[:40]!r}: expected a carrier code (2 IATA or "
            "3 ICAO characters), a number from 1 to 9999 and an optional letter, like LH400 "
            "or LH400A",
            code="invalid_flight",
        )
    carrier = ICAO_AIRLINES.get(match["carrier"], match["carrier"])
    return carrier, int(match["number"]), match["suffix"]


# Flight dates outside these are mistakes, and some break what is derived from them: a year
# below 1000 has no four-digit ISO form, a day near 9999-12-31 overflows once hours are added.
FIRST_FLIGHT_DATE = date(1970, 1, 1)
LAST_FLIGHT_DATE = date(2099, 12, 31)


def parse_date(text: str) -> date:
    """Parse a strict ``YYYY-MM-DD`` flight date (1970 to 2099) or raise InputError."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        raise InputError(f"invalid date {text[:40]!r}: expected YYYY-MM-DD", code="invalid_date")
    try:
        return check_flight_date(date.fromisoformat(text.strip()))
    except ValueError as exc:
        raise InputError(f"invalid date {text[:40]!r}: {exc}", code="invalid_date") from exc


def check_flight_date(day: date) -> date:
    """``day``, or InputError when it lies outside the flight dates flightsync accepts."""
    if not FIRST_FLIGHT_DATE <= day <= LAST_FLIGHT_DATE:
        raise InputError(f"invalid date {day.isoformat()}: expected a flight date from "
                         f"{FIRST_FLIGHT_DATE.isoformat()} to {LAST_FLIGHT_DATE.isoformat()}",
                         code="invalid_date")
    return day


@dataclass(frozen=True, slots=True)
class FlightQuery:
    """What the user asked for: one designator on one date (the local date at first origin)."""

    carrier: str
    number: int
    departure_date: date
    suffix: str = ""

    @classmethod
    def parse(cls, designator: str, day: str | date) -> FlightQuery:
        carrier, number, suffix = parse_designator(designator)
        parsed = check_flight_date(day) if isinstance(day, date) else parse_date(day)
        return cls(carrier=carrier, number=number, departure_date=parsed, suffix=suffix)

    @property
    def designator(self) -> str:
        """Canonical form without zero padding, e.g. ``LH400``, ``LH1A``."""
        return f"{self.carrier}{self.number}{self.suffix}"

    @property
    def key(self) -> str:
        """Stable text key, e.g. ``LH400/2026-02-25``, for caches and logs."""
        return f"{self.designator}/{self.departure_date.isoformat()}"


@dataclass(frozen=True, slots=True)
class Leg:
    """One provider's normalized view of one leg. ``None`` means "the provider did not say"."""

    origin: str
    destination: str | None = None
    status: FlightStatus | None = None
    scheduled_departure: datetime | None = None
    estimated_departure: datetime | None = None
    actual_departure: datetime | None = None
    scheduled_arrival: datetime | None = None
    estimated_arrival: datetime | None = None
    actual_arrival: datetime | None = None
    departure_terminal: str | None = None
    departure_gate: str | None = None
    arrival_terminal: str | None = None
    arrival_gate: str | None = None
    baggage_belt: str | None = None
    aircraft_type: str | None = None
    aircraft_registration: str | None = None
    codeshares: tuple[str, ...] | None = None
    operating_carrier: str | None = None
    operating_flight_number: int | None = None
    diverted_to: str | None = None

    def __post_init__(self) -> None:
        # Providers write one registration three ways (D-ABYA, DABYA, d-abya); without a
        # table of national prefixes the separator cannot be put back, so the canonical form
        # has none. Otherwise every flight would carry a false conflict.
        reg = self.aircraft_registration
        if reg is not None:
            canonical = reg.replace("-", "").replace(" ", "").upper()
            object.__setattr__(self, "aircraft_registration", canonical or None)

    def values(self) -> dict[str, Any]:
        """The observed fields that the provider gave (non-None), keyed by field name."""
        return {name: getattr(self, name) for name in OBSERVED_FIELDS
                if getattr(self, name) is not None}


@dataclass(frozen=True, slots=True)
class Rejection:
    """A value one provider reported that cannot be true, dropped before it counted
    (``flightsync.plausibility``)."""

    provider: str
    flight: str        # the query's key, e.g. ``LH400/2026-02-25``
    origin: str        # the leg, by its origin
    field: str         # one of OBSERVED_FIELDS
    value: Any         # the value as the provider gave it (normalized)
    reason: str        # a stable code, e.g. ``arrival_not_after_departure``
    detail: str = ""   # one line with the figures behind the reason


@dataclass(frozen=True, slots=True)
class Observation:
    """One provider's normalized answer for a query: its legs in flying order."""

    provider: str
    query: FlightQuery
    legs: tuple[Leg, ...]
    fetched_at: datetime
    updated_at: datetime | None = None  # the provider's own last-update time, if it gives one
    raw: str = ""                        # the payload as received, for the audit trail
    # Values the plausibility checks dropped from ``legs``: kept so that the audit trail,
    # ``explain`` and learned trust see them, also when the observation comes from the cache.
    rejections: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class FlightRecord:
    """A stored leg as the engine and the CLI see it (docs/CONTRACTS.md section 3 ``flight``)."""

    carrier: str
    flight_number: int
    suffix: str
    departure_date: date
    leg_index: int
    origin: str
    destination: str | None = None
    status: FlightStatus = FlightStatus.UNKNOWN
    scheduled_departure: datetime | None = None
    estimated_departure: datetime | None = None
    actual_departure: datetime | None = None
    scheduled_arrival: datetime | None = None
    estimated_arrival: datetime | None = None
    actual_arrival: datetime | None = None
    departure_terminal: str | None = None
    departure_gate: str | None = None
    arrival_terminal: str | None = None
    arrival_gate: str | None = None
    baggage_belt: str | None = None
    aircraft_type: str | None = None
    aircraft_registration: str | None = None
    codeshares: tuple[str, ...] = ()
    operating_carrier: str | None = None
    operating_flight_number: int | None = None
    diverted_to: str | None = None
    last_synced_at: datetime | None = None
    version: int = 0

    @property
    def delay_minutes(self) -> int | None:
        """Departure delay: estimated or actual minus scheduled departure, in whole minutes."""
        later = self.actual_departure or self.estimated_departure
        if later is None or self.scheduled_departure is None:
            return None
        return int((later - self.scheduled_departure).total_seconds() // 60)

    def to_json(self) -> dict[str, Any]:
        """The flight object of docs/CONTRACTS.md section 3 (snake_case, ISO 8601 UTC with Z)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            out[f.name] = to_json_value(getattr(self, f.name))
        out["delay_minutes"] = self.delay_minutes
        return out


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """How one provider fared in one sync."""

    name: str
    ok: bool
    ms: int
    from_cache: bool = False
    error: str | None = None  # error code, e.g. provider_timeout, circuit_open, flight_not_found


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """A field on which providers disagreed, and what the policy did about it."""

    field: str
    values: dict[str, Any]   # source name -> value
    chosen: Any
    rule: str
    leg_index: int = 0
    escalated: bool = False  # an operator must decide (manual mode or an escalate field)


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of syncing one flight (docs/CONTRACTS.md section 3 ``sync``)."""

    query: FlightQuery
    success: bool
    sync_status: SyncStatus
    from_cache: bool
    legs: tuple[FlightRecord, ...]
    sources: tuple[SourceOutcome, ...]
    conflicts: tuple[FieldConflict, ...] = ()
    changed_fields: tuple[str, ...] = ()
    error: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        legs = [leg.to_json() for leg in self.legs]
        out: dict[str, Any] = {
            "success": self.success,
            "from_cache": self.from_cache,
            "sync_status": self.sync_status.value,
            "flight": legs[0] if legs else None,
            "legs": legs,
            "sources": [
                {"name": s.name, "ok": s.ok, "ms": s.ms, "from_cache": s.from_cache,
                 **({"error": s.error} if s.error else {})}
                for s in self.sources
            ],
            "conflicts": [
                {"field": c.field, "leg_index": c.leg_index,
                 "values": {k: to_json_value(v) for k, v in c.values.items()},
                 "chosen": to_json_value(c.chosen), "rule": c.rule, "escalated": c.escalated}
                for c in self.conflicts
            ],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def to_json_value(value: Any) -> Any:
    """Render one domain value for JSON: UTC times with ``Z``, enums by value, tuples as lists."""
    if isinstance(value, datetime):
        # isoformat, not strftime("%Y"): the year keeps four digits whatever its value, so the
        # text always parses back (a provider's placeholder year 1 must not poison the store).
        utc = value.astimezone(UTC_TZ).replace(tzinfo=None)
        return utc.isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    return value



__all__ = [
    "ICAO_AIRLINES", "OBSERVED_FIELDS", "PROVIDER_NAMES", "TIME_FIELDS", "FieldConflict",
    "FlightQuery", "FlightRecord", "FlightStatus", "Leg", "Observation", "Rejection",
    "SourceOutcome", "SyncResult", "SyncStatus", "check_flight_date", "parse_date",
    "parse_designator", "to_json_value",
]
