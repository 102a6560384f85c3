"""Resolve one leg: per field, agree or let the policy's rule pick, and record conflicts.

Pure: no I/O, no clock, no logging; any source names. Kept on plain dicts and tuples because
the batch resolves tens of thousands of legs (budget: 50 us per leg of ~20 fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, NamedTuple

from flightsync.models import FieldConflict
from flightsync.policy._policy import Policy
from flightsync.policy._rules import (
    RULE_FUNCTIONS,
    TIME_FIELD_SET,
    VALUE_KEYS,
    Context,
    Dependence,
    Trust,
)

AGREE = "agree"       # every source that reported the field gave the same value
CURRENT = "current"   # disagreement held for an operator: the stored value is kept
# Statuses that contradict a flight operating normally. Two sources at different points of a
# normal progression (Lufthansa has no in-block state: "landed" where FlightAware says
# "arrived"; a schedule feed's "delayed" beside an airline's "departed") describe one flight,
# so only a disagreement involving one of these is worth an operator's time.
IRREGULAR_STATUSES = frozenset({"cancelled", "diverted"})
# Decisions are built with tuple.__new__, skipping the NamedTuple's Python-level __new__: the
# resolver makes one per field of every leg of a batch.
_new_tuple = tuple.__new__


class Decision(NamedTuple):
    """How one field got its value. ``source`` is None when the stored value was kept."""

    value: Any
    source: str | None
    rule: str
    detail: Mapping[str, float] | None = None   # accuracy: the trust figures behind the choice


@dataclass(frozen=True, slots=True)
class LegResolution:
    """The outcome for one leg: chosen values (only fields some source gave), how each was
    chosen, the disagreements, and the sources in the rank order that was applied."""

    values: dict[str, Any]
    decisions: dict[str, Decision]
    conflicts: list[FieldConflict]
    order: tuple[str, ...]


def rank_sources(policy: Policy, sources: Iterable[str], ranks: Mapping[str, int],
                 operating_carrier_source: str | None = None) -> tuple[str, ...]:
    """Sources best first: the operating carrier's adapter (when the policy says so), then the
    policy's priority list, then unnamed sources by rank number (higher first), then name."""
    rank_of = policy.rank_of
    named: list[str] = []
    unnamed: list[str] = []
    first: str | None = None
    for source in sources:
        if source == operating_carrier_source and policy.operating_carrier_first:
            first = source
        elif source in rank_of:
            named.append(source)
        else:
            unnamed.append(source)
    named.sort(key=rank_of.__getitem__)
    unnamed.sort(key=lambda s: (-ranks.get(s, 0), s))
    return (first, *named, *unnamed) if first is not None else (*named, *unnamed)


def resolve_leg(policy: Policy, observed: Mapping[str, Mapping[str, Any]],
                current: Mapping[str, Any] | None, *, updated_at: Mapping[str, datetime],
                ranks: Mapping[str, int], operating_carrier_source: str | None = None,
                trust: Trust | None = None,
                dependence: Dependence | None = None) -> LegResolution:
    """Choose a value for every field some source reported (``None`` values are ignored).

    Agreement (times within the tolerance, other values by ``VALUE_KEYS``: codeshares as sets,
    aircraft types by ICAO designator) takes the best-ranked source's own value with rule
    ``agree``. Otherwise the mode's rule picks and a FieldConflict is recorded; manual mode
    and ``escalate`` fields (automatic mode) mark it escalated and keep the current value, or
    store the priority rule's choice when there is no current value. In automatic mode a
    status disagreement is escalated only when a source reports the flight cancelled or
    diverted; manual mode holds every disagreement. ``trust`` and ``dependence`` (learned
    accuracies, and which sources copy each other) feed the ``accuracy`` rule.
    """
    order = rank_sources(policy, observed, ranks, operating_carrier_source)
    reports = [observed[source] for source in order]
    names = list(dict.fromkeys(chain.from_iterable(reports)))
    # One column per source, transposed into one row of values per field, all in C loops.
    # Lengths match by construction; zip(strict=True) would cost a third of the hot path.
    rows: Iterable[tuple[Any, ...]] = zip(*[list(map(r.get, names)) for r in reports],
                                          strict=False)
    values: dict[str, Any] = {}
    decisions: dict[str, Decision] = {}
    conflicts: list[FieldConflict] = []
    tolerance = policy.tolerance
    plan = policy.plan
    automatic = policy.mode == "automatic"
    context: Context | None = None
    for field, row in zip(names, rows, strict=False):
        vals: Sequence[Any] = row
        srcs: Sequence[str] = order
        if None in row:
            srcs = [s for s, v in zip(order, row, strict=False) if v is not None]
            vals = [v for v in row if v is not None]
            if not vals:
                continue
        first = vals[0]
        # Most fields agree to the letter: only the others pay for a call.
        if len(vals) == 1 or vals.count(first) == len(vals) or _agree(field, vals, tolerance):
            if current is not None and field in VALUE_KEYS:
                first = _as_stored(field, first, current)
            values[field] = first
            decisions[field] = _new_tuple(Decision, (first, srcs[0], AGREE, None))
            continue
        rule, escalated = plan.get(field) or policy.plan_for(field)
        if (escalated and field == "status" and automatic
                and IRREGULAR_STATUSES.isdisjoint(vals)):
            # A normal progression: the field's own rule decides, no operator needed.
            rule, escalated = policy.rule_for(field), False
        kept = current.get(field) if escalated and current is not None else None
        if kept is not None:
            value, rule = kept, CURRENT
            decisions[field] = _new_tuple(Decision, (kept, None, CURRENT, None))
        else:
            if context is None:
                context = Context(tolerance, updated_at, trust, dependence)
            value, source, detail = RULE_FUNCTIONS[rule](field, srcs, vals, context)
            if current is not None and field in VALUE_KEYS:
                value = _as_stored(field, value, current)
            decisions[field] = _new_tuple(Decision, (value, source, rule, detail))
        values[field] = value
        conflicts.append(FieldConflict(field, dict(zip(srcs, vals, strict=False)), value, rule,
                                       0, escalated))
    return LegResolution(values=values, decisions=decisions, conflicts=conflicts, order=order)


def _as_stored(field: str, value: Any, current: Mapping[str, Any]) -> Any:
    """``value``, or the stored value when it names the same thing by ``VALUE_KEYS``: a
    provider spelling it differently (FlightAware's A20N for a stored 32N, codeshares in
    another order) must not rewrite the row, its audit trail and its version."""
    stored = current.get(field)
    if stored is None or stored == value:
        return value
    key = VALUE_KEYS[field]
    return stored if key(stored) == key(value) else value


def _agree(field: str, vals: Sequence[Any], tolerance: timedelta) -> bool:
    """Whether values that differ to the letter still agree: times within the tolerance,
    ``VALUE_KEYS`` fields by key."""
    if field in TIME_FIELD_SET:
        return bool(max(vals) - min(vals) <= tolerance)
    key = VALUE_KEYS.get(field)
    return key is not None and len(set(map(key, vals))) == 1
