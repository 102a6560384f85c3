"""From provider observations to the legs to store: align legs, resolve each per the policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from flightsync.models import (
    OBSERVED_FIELDS,
    FieldConflict,
    Leg,
    Observation,
    Rejection,
    to_json_value,
)
from flightsync.policy import Dependence, Policy, Trust, resolve_leg
from flightsync.store import repository as repo
from flightsync.store.repository import REJECTED_KEY, LegWrite, StoredLeg

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Merged:
    legs: list[LegWrite]
    conflicts: list[FieldConflict]
    source_of_truth: str | None


def align_legs(observations: Sequence[Observation]) -> list[tuple[str, dict[str, Leg]]]:
    """Group every provider's legs by origin, in flying order (earliest scheduled departure
    first; legs without one keep the order in which providers listed them)."""
    by_origin: dict[str, dict[str, Leg]] = {}
    first_seen: dict[str, tuple[float, int]] = {}
    for obs in observations:
        for position, leg in enumerate(obs.legs):
            by_origin.setdefault(leg.origin, {})[obs.provider] = leg
            when = leg.scheduled_departure.timestamp() if leg.scheduled_departure else None
            known = first_seen.get(leg.origin)
            if when is not None and (known is None or known[0] == float("inf")
                                     or when < known[0]):
                first_seen[leg.origin] = (when, position)
            elif known is None:
                first_seen[leg.origin] = (float("inf"), position)
    order = sorted(by_origin, key=lambda origin: first_seen[origin])
    return [(origin, by_origin[origin]) for origin in order]


def merge(
    policy: Policy, observations: Sequence[Observation], stored: Sequence[StoredLeg], *,
    ranks: Mapping[str, int], operating_carrier_source: str | None, trust: Trust | None,
    dependence: Dependence | None = None,
) -> Merged:
    """Resolve each leg; fields no provider reported keep their stored value."""
    updated_at: dict[str, datetime] = {
        obs.provider: obs.updated_at or obs.fetched_at for obs in observations}
    raw_by_source = {obs.provider: obs.raw for obs in observations}
    rejected: dict[tuple[str, str], list[Rejection]] = {}  # (source, origin) -> rejections
    for obs in observations:
        for rejection in obs.rejections:
            rejected.setdefault((obs.provider, rejection.origin), []).append(rejection)
    legs: list[LegWrite] = []
    conflicts: list[FieldConflict] = []
    flight = observations[0].query.key if observations else None
    top_source: str | None = None
    aligned = align_legs(observations)
    stored_by_origin = repo.match_stored_legs(stored, [origin for origin, _ in aligned])
    for index, (origin, by_source) in enumerate(aligned):
        observed = {source: leg.values() for source, leg in by_source.items()}
        current = stored_by_origin[origin].values if origin in stored_by_origin else None
        resolution = resolve_leg(policy, observed, current, updated_at=updated_at, ranks=ranks,
                                 operating_carrier_source=operating_carrier_source, trust=trust,
                                 dependence=dependence)
        values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
        if current is not None:
            values.update(current)
        values.update(resolution.values)
        decisions = {name: (d.source, d.rule) for name, d in resolution.decisions.items()}
        for name, (source, rule) in decisions.items():
            if rule != "agree":  # `-vv`: each field the policy had to decide
                log.debug("policy.decision", flight=flight, leg=index, origin=origin, field=name,
                          source=source, rule=rule)
        leg_conflicts = [replace(c, leg_index=index) for c in resolution.conflicts]
        conflicts.extend(leg_conflicts)
        if top_source is None and decisions:
            top_source = max(
                (d[0] for d in decisions.values() if d[0]),
                key=lambda s: sum(1 for d in decisions.values() if d[0] == s), default=None)
        legs.append(LegWrite(
            leg_index=index, origin=origin, values=values, decisions=decisions,
            observations={s: (_with_rejections(observed[s], rejected.get((s, origin))),
                              updated_at.get(s), raw_by_source.get(s, ""))
                          for s in observed},
            conflicts=leg_conflicts,
        ))
    return Merged(legs=legs, conflicts=conflicts, source_of_truth=top_source)


def _with_rejections(values: dict[str, Any],
                     rejections: list[Rejection] | None) -> dict[str, Any]:
    """A source's observed values as stored, with what was dropped from them under
    ``REJECTED_KEY`` (a copy: ``values`` is what the policy resolved)."""
    if not rejections:
        return values
    return {**values, REJECTED_KEY: [
        {"field": r.field, "value": to_json_value(r.value), "reason": r.reason,
         "detail": r.detail} for r in rejections]}


def operating_carrier(observations: Sequence[Observation]) -> str | None:
    """The operating carrier the first source that names one gives, else None."""
    for obs in observations:
        for leg in obs.legs:
            if leg.operating_carrier:
                return leg.operating_carrier
    return None
