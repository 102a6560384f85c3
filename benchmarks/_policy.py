"""Conflict resolution: ``policy.resolve_leg`` over four providers that disagree on several
fields of every flight (status, times beyond the tolerance, gates, aircraft), with the
built-in default policy (automatic mode)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks._env import FOUR as PROVIDERS
from benchmarks._report import Row, median
from flightsync.models import FlightStatus, Leg
from flightsync.policy import load_policy, resolve_leg

_STATUSES = (FlightStatus.DELAYED, FlightStatus.SCHEDULED, FlightStatus.BOARDING,
             FlightStatus.DELAYED)
# The scenario's four disagreeing sources (its target was set for four), whatever else is built in.
_SOURCES = PROVIDERS[:len(_STATUSES)]


def _observed(flight: int, base: datetime) -> dict[str, dict[str, Any]]:
    """Four sources' views of one leg: they agree on the route and the schedule, and
    disagree on the status, the estimates, the gates and the aircraft type."""
    scheduled = base + timedelta(minutes=7 * flight)
    observed: dict[str, dict[str, Any]] = {}
    for i, source in enumerate(_SOURCES):
        leg = Leg(
            origin="FRA", destination="JFK", status=_STATUSES[i],
            scheduled_departure=scheduled,
            estimated_departure=scheduled + timedelta(minutes=10 * i),
            scheduled_arrival=scheduled + timedelta(hours=8),
            estimated_arrival=scheduled + timedelta(hours=8, minutes=5 * i),
            departure_terminal="1", departure_gate=f"B{20 + i}",
            arrival_terminal="4", arrival_gate=None if i == 3 else f"A{i}",
            aircraft_type="B748" if i == 2 else "748", aircraft_registration="DABYA",
            codeshares=("UA9050",) if i else ("UA9050", "AC9100"),
            operating_carrier="LH", operating_flight_number=400,
        )
        observed[source] = leg.values()
    return observed


def conflict_row(*, flights: int, runs: int) -> Row:
    """Median over ``runs`` passes of the time per leg, each pass resolving ``flights``."""
    policy = load_policy(None)
    base = datetime(2026, 3, 1, 6, tzinfo=UTC)
    legs = [_observed(n, base) for n in range(flights)]
    updated_at = {source: base - timedelta(minutes=i) for i, source in enumerate(_SOURCES)}
    ranks = {"lufthansa": 40, "airfrance_klm": 40, "flightaware": 20, "amadeus": 10}
    per_leg: list[float] = []
    conflicts = 0
    for _ in range(runs):
        started = time.perf_counter()
        for observed in legs:
            resolution = resolve_leg(policy, observed, None, updated_at=updated_at,
                                     ranks=ranks, operating_carrier_source="lufthansa")
        per_leg.append((time.perf_counter() - started) / flights)
        conflicts = len(resolution.conflicts)
    return Row("conflict_resolution", "conflict resolution, 4 disagreeing observations",
               "policy.resolve_leg time per flight (one leg)", "us", 50, at_most=True,
               value=median(per_leg) * 1e6,
               detail={"flights": flights, "passes": runs, "conflicts_per_flight": conflicts,
                       "fields_per_source": len(legs[0]["lufthansa"])})
