"""Load one day of the flight-truth data set into plain dictionaries.

Values become what the product's resolver sees from a provider: times as timezone-aware
datetimes (airport-local clock time on the file's day in the airport's zone from airportsdata,
the flight id ``AA-1007-TPA-MIA`` naming origin and destination), gates as normalized
strings, "no value" as absent. One provider per source name.

Duplicates (documented in README.md):
- a source listing a flight more than once: per attribute, the first row whose value is on the
  file's day wins, else the first row with a value (rows for other days and later gate updates
  lose to the first usable one);
- the truth repeating a flight: rows that agree count once; an attribute on which the truth's
  rows disagree is left out of the gold standard (it has no single right answer).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import airportsdata

from benchmarks.fusion._parse import normalize_gate, parse_time

ATTRIBUTES: tuple[str, ...] = (
    "scheduled_departure", "actual_departure", "departure_gate",
    "scheduled_arrival", "actual_arrival", "arrival_gate",
)
GATE_ATTRIBUTES = frozenset({"departure_gate", "arrival_gate"})
ARRIVAL_ATTRIBUTES = frozenset({"scheduled_arrival", "actual_arrival", "arrival_gate"})

Values = dict[str, Any]                       # attribute -> value


@dataclass
class Day:
    """One day: every source's values per flight, the gold standard, and bookkeeping."""

    day: date
    observed: dict[str, dict[str, Values]] = field(default_factory=dict)  # flight -> source -> v
    truth: dict[str, Values] = field(default_factory=dict)                 # flight -> values
    rows: int = 0
    duplicate_rows: int = 0
    truth_rows: int = 0
    truth_repeated_rows: int = 0                 # rows of a flight the truth already listed
    truth_conflicts: int = 0                     # (flight, attribute) its rows disagree on
    truth_conflicts_by_attribute: dict[str, int] = field(default_factory=dict)
    truth_placeholders: int = 0                  # gold gates such as TBA, HOLD: no value

    def claims(self) -> Iterator[tuple[str, str, str, Any]]:
        """(flight, attribute, source, value) for every value a source gave."""
        for flight, by_source in self.observed.items():
            for source, values in by_source.items():
                for attribute, value in values.items():
                    yield flight, attribute, source, value


@cache
def _zones() -> dict[str, ZoneInfo]:
    airports = airportsdata.load("IATA")
    return {code: ZoneInfo(info["tz"]) for code, info in airports.items() if info.get("tz")}


def _zone(airport: str) -> ZoneInfo:
    # An airport missing from airportsdata keeps the clock time in UTC: comparisons between
    # sources stay right because every source is read the same way.
    return _zones().get(airport, ZoneInfo("UTC"))


def parse_value(attribute: str, raw: str, flight: str, day: date) -> tuple[Any, bool]:
    """(value or None, whether it is dated on ``day``) for one raw cell of ``flight``."""
    if attribute in GATE_ATTRIBUTES:
        return normalize_gate(raw), True
    parsed = parse_time(raw, day.year)
    if parsed is None:
        return None, True
    when, minutes = parsed
    parts = flight.split("-")
    airport = parts[3] if attribute in ARRIVAL_ATTRIBUTES else parts[2]
    clock = time(minutes // 60, minutes % 60)
    # Anchored on the file's day: sources disagree on which date an overnight arrival carries,
    # so values compare as airport-local minute of day; the written date only ranks duplicates.
    return datetime.combine(day, clock, tzinfo=_zone(airport)), when in (None, day)


def _lines(path: Path) -> Iterator[list[str]]:
    with gzip.open(path, "rt", encoding="latin-1", newline="\n") as handle:
        for line in handle:
            yield line.rstrip("\r\n").split("\t")


def load_day(directory: Path, day: date) -> Day:
    """Read ``<day>-data.txt.gz`` and ``<day>-truth.txt.gz`` from ``directory``."""
    result = Day(day)
    stem = day.isoformat()
    on_day: set[tuple[str, str, str]] = set()
    seen: set[tuple[str, str]] = set()
    for cells in _lines(directory / f"{stem}-data.txt.gz"):
        if len(cells) < 8 or not cells[1]:
            continue
        source, flight = cells[0], cells[1].strip()
        result.rows += 1
        if (source, flight) in seen:
            result.duplicate_rows += 1
        seen.add((source, flight))
        values = result.observed.setdefault(flight, {}).setdefault(source, {})
        for attribute, raw in zip(ATTRIBUTES, cells[2:8], strict=True):
            value, dated_today = parse_value(attribute, raw, flight, day)
            if value is None or (source, flight, attribute) in on_day:
                continue
            if attribute not in values or dated_today:
                values[attribute] = value
            if dated_today:
                on_day.add((source, flight, attribute))
    _load_truth(result, directory / f"{stem}-truth.txt.gz")
    return result


def _load_truth(result: Day, path: Path) -> None:
    conflicting: set[tuple[str, str]] = set()
    for cells in _lines(path):
        if len(cells) < 7 or not cells[0]:
            continue
        flight = cells[0].strip()
        result.truth_rows += 1
        result.truth_repeated_rows += flight in result.truth
        gold = result.truth.setdefault(flight, {})
        for attribute, raw in zip(ATTRIBUTES, cells[1:7], strict=True):
            value, _ = parse_value(attribute, raw, flight, result.day)
            if value is None and attribute in GATE_ATTRIBUTES and raw.strip(" -\xa0"):
                # A gold gate read as no gate (TBA, HOLD), exactly as a source's would be.
                result.truth_placeholders += 1
            if value is None or (flight, attribute) in conflicting:
                continue
            if attribute in gold and gold[attribute] != value:
                conflicting.add((flight, attribute))
                del gold[attribute]
                continue
            gold[attribute] = value
    result.truth_conflicts = len(conflicting)
    for _, attribute in sorted(conflicting):
        found = result.truth_conflicts_by_attribute
        found[attribute] = found.get(attribute, 0) + 1


def days_in(directory: Path) -> list[date]:
    """The days that have both a data and a truth file, in order."""
    found = []
    for path in sorted(directory.glob("*-data.txt.gz")):
        stem = path.name.removesuffix("-data.txt.gz")
        if (directory / f"{stem}-truth.txt.gz").exists():
            found.append(date.fromisoformat(stem))
    return found
