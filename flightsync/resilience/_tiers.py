"""TTL tiers of docs/CONTRACTS.md section 7, from a flight's legs.

Active (``ttl_active``): departing within 24 h, under way, or arrived at most 6 h ago.
Future (``ttl_future``): departing more than 24 h from now.
Arrived (``ttl_arrived``): arrived more than 6 h ago.
When the times are unknown the active tier is chosen: refreshing too often only costs a call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from flightsync.config import CacheSettings
from flightsync.models import FlightStatus

ACTIVE_BEFORE_DEPARTURE = timedelta(hours=24)
ACTIVE_AFTER_ARRIVAL = timedelta(hours=6)

_ARRIVED = frozenset({FlightStatus.ARRIVED, FlightStatus.LANDED})
_UNDER_WAY = frozenset({FlightStatus.BOARDING, FlightStatus.DEPARTED, FlightStatus.AIRBORNE,
                        FlightStatus.DIVERTED})


class TimedLeg(Protocol):
    """What the tiers read of a leg: ``models.Leg`` and ``models.FlightRecord`` both fit."""

    @property
    def status(self) -> FlightStatus | None: ...
    @property
    def scheduled_departure(self) -> datetime | None: ...
    @property
    def estimated_departure(self) -> datetime | None: ...
    @property
    def actual_departure(self) -> datetime | None: ...
    @property
    def scheduled_arrival(self) -> datetime | None: ...
    @property
    def estimated_arrival(self) -> datetime | None: ...
    @property
    def actual_arrival(self) -> datetime | None: ...


def _departure(leg: TimedLeg) -> datetime | None:
    return leg.actual_departure or leg.estimated_departure or leg.scheduled_departure


def _arrival(leg: TimedLeg) -> datetime | None:
    return leg.actual_arrival or leg.estimated_arrival or leg.scheduled_arrival


class Tier(StrEnum):
    ACTIVE = "active"
    FUTURE = "future"
    ARRIVED = "arrived"


def tier(legs: Sequence[TimedLeg], now: datetime) -> Tier:
    """Which TTL tier a flight with these legs (in flying order) is in at time ``now``."""
    if not legs:
        return Tier.ACTIVE
    last = legs[-1]
    arrival = _arrival(last)
    long_arrived = arrival is not None and now - arrival > ACTIVE_AFTER_ARRIVAL
    if last.status in _ARRIVED or last.actual_arrival is not None:
        return Tier.ARRIVED if long_arrived else Tier.ACTIVE
    if any(leg.status in _UNDER_WAY or leg.actual_departure is not None for leg in legs):
        return Tier.ACTIVE
    departure = _departure(legs[0])
    if departure is not None and departure - now > ACTIVE_BEFORE_DEPARTURE:
        return Tier.FUTURE
    # Long past its arrival time with nobody reporting it under way or landed: it is over.
    return Tier.ARRIVED if long_arrived else Tier.ACTIVE


def ttl_for(legs: Sequence[TimedLeg], now: datetime, settings: CacheSettings) -> float:
    """Seconds to cache a flight with these legs (in flying order) at time ``now``."""
    return {
        Tier.ACTIVE: settings.ttl_active_seconds,
        Tier.FUTURE: settings.ttl_future_seconds,
        Tier.ARRIVED: settings.ttl_arrived_seconds,
    }[tier(legs, now)]
