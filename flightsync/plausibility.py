"""Values no provider can mean: pure checks over one Observation, whichever adapter made it.

Real feeds send impossible values now and then (a flight "landed" at the minute it took off, an
arrival before the departure, a time days away from the schedule). Stored as given, such a
value becomes the truth and teaches nothing. ``check`` drops each one from the observation and
names it in a ``Rejection``; the rest of the answer still counts. The engine applies it once,
where every provider observation enters (``engine._screen``); nothing here touches a clock, a
log or a database (``now`` is handed in).

The rules, each on one leg, in this order (a later rule sees what an earlier one left):

1. ``arrival_not_after_departure``, scheduled pair: a scheduled arrival at or before the
   scheduled departure. The schedule is every later rule's yardstick, so it goes first.
2. ``actual_time_in_future``: an actual departure or arrival later than ``now`` plus
   ``future_allowance_minutes`` (clocks differ a little; a feed that is ahead does not).
3. ``far_from_schedule``: an estimated or actual time more than
   ``max_schedule_deviation_minutes`` before or after its scheduled counterpart.
4. ``arrival_not_after_departure``, estimated and actual pairs: the arrival at or before the
   departure of the same kind.
5. ``block_time_too_short``: an estimated or actual block time (arrival minus departure of the
   same kind) shorter than ``min_block_time_share`` of the scheduled block time.
6. ``status_without_arrival``: ``landed`` or ``arrived`` without an actual arrival time left to
   back it.

When two times of a pair contradict each other, the arrival is the one dropped: departures are
reported first and confirmed by every later report, while the failures seen in the field are
premature or copied landings. The model holds one time per stage (the adapters choose gate or
runway times), so there is no gate/runway pair to compare. A status that is not backed is
dropped rather than replaced (say by ``airborne``): the provider did not say that, and the other
providers' statuses (or the stored one) decide instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from flightsync.models import FlightStatus, Leg, Observation, Rejection, to_json_value

ARRIVAL_NOT_AFTER_DEPARTURE = "arrival_not_after_departure"
ACTUAL_TIME_IN_FUTURE = "actual_time_in_future"
FAR_FROM_SCHEDULE = "far_from_schedule"
BLOCK_TIME_TOO_SHORT = "block_time_too_short"
STATUS_WITHOUT_ARRIVAL = "status_without_arrival"
REASONS: tuple[str, ...] = (
    ARRIVAL_NOT_AFTER_DEPARTURE, ACTUAL_TIME_IN_FUTURE, FAR_FROM_SCHEDULE,
    BLOCK_TIME_TOO_SHORT, STATUS_WITHOUT_ARRIVAL,
)

_PAIRS = (("scheduled_departure", "scheduled_arrival"),
          ("estimated_departure", "estimated_arrival"),
          ("actual_departure", "actual_arrival"))
_SCHEDULED_OF = {"estimated_departure": "scheduled_departure",
                 "actual_departure": "scheduled_departure",
                 "estimated_arrival": "scheduled_arrival",
                 "actual_arrival": "scheduled_arrival"}
_ACTUALS = ("actual_departure", "actual_arrival")
_ARRIVED = frozenset({FlightStatus.LANDED, FlightStatus.ARRIVED})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The limits of the checks (policy file section ``plausibility``)."""

    # An actual time may lie this far ahead of our clock (the two clocks differ a little).
    future_allowance_minutes: float = 5
    # An estimated or actual time may lie this far from its scheduled time, either way.
    max_schedule_deviation_minutes: float = 1440
    # An estimated or actual block time must be at least this share of the scheduled one
    # (0 turns the rule off). Half leaves room for a padded schedule flown with a tail wind
    # and still catches a "landed" minutes after take-off.
    min_block_time_share: float = 0.5


# key -> (lowest, highest). A year of minutes is far beyond any sensible limit, and keeps the
# time arithmetic clear of overflow (an infinite or astronomic number would raise mid-sync).
YEAR_MINUTES = 525_600
LIMITS: dict[str, tuple[float, float]] = {
    "future_allowance_minutes": (0, YEAR_MINUTES),
    "max_schedule_deviation_minutes": (0, YEAR_MINUTES),
    "min_block_time_share": (0, 1),
}


def threshold_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be threshold ``name``, or None when it can."""
    if name not in LIMITS:
        return f"unknown key; expected one of {', '.join(LIMITS)}"
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        return f"expected a number from {low:g} to {high:g}, got {value!r}"
    return None


def thresholds_problem(thresholds: Thresholds) -> str | None:
    """The first problem of ``thresholds`` (for directly built policies), or None."""
    for item in fields(thresholds):
        problem = threshold_problem(item.name, getattr(thresholds, item.name))
        if problem is not None:
            return f"plausibility.{item.name}: {problem}"
    return None


DEFAULT_THRESHOLDS = Thresholds()


def check(observation: Observation, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
          now: datetime) -> tuple[Observation, tuple[Rejection, ...]]:
    """``observation`` without its implausible values, and a Rejection for each one dropped.

    The returned observation also carries the new rejections (after any it had) in
    ``rejections``, so that they travel with it (cache, audit trail). An observation with
    nothing to drop is returned as it is.
    """
    found: list[Rejection] = []
    legs: list[Leg] = []
    for leg in observation.legs:
        kept, dropped = check_leg(leg, thresholds, now=now)
        legs.append(kept)
        found.extend(Rejection(provider=observation.provider, flight=observation.query.key,
                               origin=leg.origin, field=name, value=value, reason=reason,
                               detail=detail)
                     for name, value, reason, detail in dropped)
    if not found:
        return observation, ()
    rejections = tuple(found)
    cleaned = replace(observation, legs=tuple(legs),
                      rejections=observation.rejections + rejections)
    return cleaned, rejections


Dropped = tuple[str, Any, str, str]   # (field, value, reason, detail)


def check_leg(leg: Leg, thresholds: Thresholds = DEFAULT_THRESHOLDS, *,
              now: datetime) -> tuple[Leg, list[Dropped]]:
    """One leg without its implausible values, and what was dropped (module docstring)."""
    values: dict[str, Any] = {name: getattr(leg, name) for name in (
        "status", "scheduled_departure", "estimated_departure", "actual_departure",
        "scheduled_arrival", "estimated_arrival", "actual_arrival")}
    dropped: list[Dropped] = []

    def drop(name: str, reason: str, detail: str) -> None:
        dropped.append((name, values[name], reason, detail))
        values[name] = None

    _order(values, drop, _PAIRS[:1])
    _future(values, drop, now + timedelta(minutes=thresholds.future_allowance_minutes),
            thresholds.future_allowance_minutes)
    _schedule(values, drop, timedelta(minutes=thresholds.max_schedule_deviation_minutes))
    _order(values, drop, _PAIRS[1:])
    _block(values, drop, thresholds.min_block_time_share)
    if values["status"] in _ARRIVED and values["actual_arrival"] is None:
        drop("status", STATUS_WITHOUT_ARRIVAL,
             f"status {values['status'].value} without an actual arrival time")
    if not dropped:
        return leg, []
    cleared: dict[str, Any] = {name: None for name, *_ in dropped}
    return replace(leg, **cleared), dropped


_Drop = Callable[[str, str, str], None]


def _order(values: dict[str, Any], drop: _Drop,
           pairs: tuple[tuple[str, str], ...]) -> None:
    for departure, arrival in pairs:
        left, right = values[departure], values[arrival]
        if left is not None and right is not None and right <= left:
            drop(arrival, ARRIVAL_NOT_AFTER_DEPARTURE,
                 f"{arrival} {_text(right)} is at or before {departure} {_text(left)}")


def _future(values: dict[str, Any], drop: _Drop, limit: datetime, allowance: float) -> None:
    for name in _ACTUALS:
        value = values[name]
        if value is not None and value > limit:
            drop(name, ACTUAL_TIME_IN_FUTURE,
                 f"{name} {_text(value)} is later than now plus {allowance:g} minutes "
                 f"({_text(limit)})")


def _schedule(values: dict[str, Any], drop: _Drop, limit: timedelta) -> None:
    for name, scheduled_name in _SCHEDULED_OF.items():
        value, scheduled = values[name], values[scheduled_name]
        if value is not None and scheduled is not None and abs(value - scheduled) > limit:
            drop(name, FAR_FROM_SCHEDULE,
                 f"{name} {_text(value)} is {_minutes(value - scheduled)} minutes from "
                 f"{scheduled_name} {_text(scheduled)} (limit "
                 f"{limit.total_seconds() / 60:g})")


def _block(values: dict[str, Any], drop: _Drop, share: float) -> None:
    departure, arrival = values["scheduled_departure"], values["scheduled_arrival"]
    if share <= 0 or departure is None or arrival is None:
        return
    scheduled = arrival - departure
    shortest = scheduled * share
    for left_name, right_name in _PAIRS[1:]:
        left, right = values[left_name], values[right_name]
        if left is not None and right is not None and right - left < shortest:
            drop(right_name, BLOCK_TIME_TOO_SHORT,
                 f"block time {_minutes(right - left)} minutes ({left_name} to {right_name}) "
                 f"is under {share:g} of the scheduled {_minutes(scheduled)} minutes")


def _text(moment: datetime) -> str:
    return str(to_json_value(moment))


def _minutes(span: timedelta) -> str:
    return f"{span.total_seconds() / 60:g}"


__all__ = [
    "ACTUAL_TIME_IN_FUTURE", "ARRIVAL_NOT_AFTER_DEPARTURE", "BLOCK_TIME_TOO_SHORT",
    "DEFAULT_THRESHOLDS", "FAR_FROM_SCHEDULE", "LIMITS", "REASONS", "STATUS_WITHOUT_ARRIVAL",
    "Thresholds", "check", "check_leg", "threshold_problem", "thresholds_problem",
]
