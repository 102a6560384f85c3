"""The rules that pick one value among disagreeing sources.

Every rule gets the reporting sources and their values as two aligned sequences in rank order
(best first) and breaks ties by keeping the earlier one, so "ties by priority" falls out.
Rules return ``(value, source, detail)``; only ``accuracy`` has a detail (its trust figures).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from flightsync.models import TIME_FIELDS
from flightsync.policy._aircraft import aircraft_key

Trust = Mapping[str, Mapping[str, float]]   # source -> field -> estimated accuracy (0..1)
Dependence = Mapping[str, Mapping[str, float]]   # source -> other source -> P(dependent)
Choice = tuple[Any, str, Mapping[str, float] | None]

TIME_FIELD_SET = frozenset(TIME_FIELDS)   # these agree within the policy's time tolerance
# Fields whose values agree when their keys are equal, not only when they are: the order of
# codeshares carries no meaning, and an airline's IATA aircraft code names the same type as
# FlightAware's ICAO designator. The resolver, ``majority`` and the accuracy vote all group
# values through this one table.
VALUE_KEYS: dict[str, Callable[[Any], Hashable]] = {
    "codeshares": frozenset,
    "aircraft_type": aircraft_key,
}

# docs/CONTRACTS.md section 8: cancelled, diverted, then the most advanced phase, then the rest.
_SEVERITY: dict[str, int] = {
    name: rank for rank, name in enumerate(reversed((
        "cancelled", "diverted", "arrived", "landed", "airborne", "departed", "boarding",
        "delayed", "scheduled", "unknown",
    )))
}


class Context:
    """What the rules need beyond the candidates, built once per leg."""

    __slots__ = ("dependence", "tolerance", "tolerance_minutes", "trust", "updated_at")

    def __init__(self, tolerance: timedelta, updated_at: Mapping[str, datetime],
                 trust: Trust | None, dependence: Dependence | None = None) -> None:
        self.tolerance = tolerance
        self.tolerance_minutes = tolerance.total_seconds() / 60
        self.updated_at = updated_at
        self.trust = trust
        self.dependence = dependence


Rule = Callable[[str, Sequence[str], Sequence[Any], Context], Choice]

# Rules find the winning index with C-level min/max/index: list.index returns the first
# position, which is the best-ranked source among equals.


def _priority(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    return vals[0], srcs[0], None


def _most_recent(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    times = list(map(ctx.updated_at.get, srcs))
    if None in times:
        # A source without an update time never beats one that has it; nobody has one: priority.
        known = [t for t in times if t is not None]
        index = times.index(max(known)) if known else 0
    else:
        index = times.index(max(times))  # type: ignore[type-var]  # no None on this branch
    return vals[index], srcs[index], None


def _most_severe(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    ranks = [_SEVERITY.get(v, -1) for v in vals]
    index = ranks.index(max(ranks))
    return vals[index], srcs[index], None


def _earliest(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    index = vals.index(min(vals))
    return vals[index], srcs[index], None


def _latest(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    index = vals.index(max(vals))
    return vals[index], srcs[index], None


def _majority(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    if field in TIME_FIELD_SET:
        # Each value gathers the values within tolerance of it; the largest group wins.
        tolerance = ctx.tolerance
        counts = [sum(1 for other in vals if abs(other - value) <= tolerance) for value in vals]
    else:
        key_of = VALUE_KEYS.get(field)
        keys = list(map(key_of, vals)) if key_of is not None else list(vals)
        counts = [keys.count(key) for key in keys]
    index = counts.index(max(counts))
    return vals[index], srcs[index], None


def _accuracy(field: str, srcs: Sequence[str], vals: Sequence[Any], ctx: Context) -> Choice:
    # Imported on use: the accuracy model lives in its own module and may pull in more.
    from flightsync.policy.accuracy import choose  # noqa: PLC0415

    value, source, detail = choose(field, dict(zip(srcs, vals, strict=False)), ctx.trust,
                                   ctx.tolerance_minutes, tuple(srcs),
                                   dependence=ctx.dependence)
    return value, source, detail


RULE_FUNCTIONS: dict[str, Rule] = {
    "priority": _priority,
    "most_recent": _most_recent,
    "most_severe": _most_severe,
    "earliest": _earliest,
    "latest": _latest,
    "majority": _majority,
    "accuracy": _accuracy,
}
