"""Run the product's resolution rules over loaded days and score them against the gold standard.

``majority`` and ``priority`` go through ``flightsync.policy.resolve_leg`` with a policy that
gives every attribute that rule. ``accuracy`` is the product path end to end: the estimate
``sources --recompute`` makes (``estimate_trust_by_field``, no gold standard involved), turned
into the rows it stores and read back the way the engine reads them (``score_rows`` /
``trust_from``, ``dependence_rows`` / ``dependence_from``), then ``resolve_leg`` with the
trust and the dependence the engine passes, whose ``accuracy`` rule calls ``choose``.

The other rows are diagnostics of the same estimator: ``/plain`` is its first pass, ``/seeded``
its second (from ``cross_field_seed`` of the first), ``/trust-only`` the product's estimate
without the stored dependence (the product before migration 0003); ``+copies`` resolves with
the whole model (``TrustModel.resolve``: also its per-field false-value counts).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.fusion._load import ATTRIBUTES, Day
from flightsync.engine._sources import dependence_from, dependence_rows, score_rows, trust_from
from flightsync.policy import Policy, resolve_leg
from flightsync.policy.accuracy import Claim, TrustModel, trust_passes

RULES: tuple[str, ...] = ("majority", "priority", "accuracy", "accuracy/trust-only",
                          "accuracy+copies", "accuracy/plain", "accuracy+copies/plain",
                          "accuracy/seeded", "accuracy+copies/seeded")
TRUTH_SOURCES = frozenset({"aa", "ua", "co"})   # the airline sites the gold standard comes from
WITHIN_MINUTES = 10


@dataclass
class Tally:
    """Right answers out of items scored, exact and within WITHIN_MINUTES (gates: exact)."""

    items: int = 0
    exact: int = 0
    near: int = 0

    def add(self, chosen: Any, gold: Any) -> None:
        self.items += 1
        if chosen == gold:
            self.exact += 1
            self.near += 1
        elif isinstance(chosen, datetime) and isinstance(gold, datetime) and \
                abs((chosen - gold).total_seconds()) <= WITHIN_MINUTES * 60:
            self.near += 1

    def merge(self, other: Tally) -> None:
        self.items += other.items
        self.exact += other.exact
        self.near += other.near

    def to_json(self) -> dict[str, Any]:
        def share(count: int) -> float | None:
            return round(count / self.items, 4) if self.items else None
        return {"items": self.items, "exact": share(self.exact),
                f"within_{WITHIN_MINUTES}_min": share(self.near)}


@dataclass
class Score:
    """Per rule, per attribute tallies (attribute ``overall`` sums the six)."""

    tallies: dict[str, dict[str, Tally]] = field(default_factory=lambda: {
        rule: {name: Tally() for name in (*ATTRIBUTES, "overall")} for rule in RULES})
    estimate_seconds: list[float] = field(default_factory=list)  # the product's estimate
    claims: list[int] = field(default_factory=list)

    def add(self, rule: str, attribute: str, chosen: Any, gold: Any) -> None:
        self.tallies[rule][attribute].add(chosen, gold)
        self.tallies[rule]["overall"].add(chosen, gold)


def priority_order(day: Day, sources: Iterable[str]) -> tuple[str, ...]:
    """The fixed order for ``priority``: the airlines' own sites first, then by how many
    values a source gives that day (most first), then by name. Decided without the truth."""
    counts: dict[str, int] = {}
    for _, _, source, _ in day.claims():
        counts[source] = counts.get(source, 0) + 1
    return tuple(sorted(sources, key=lambda s: (s.lower() not in TRUTH_SOURCES,
                                                -counts.get(s, 0), s)))


def _policy(rule: str, order: tuple[str, ...], tolerance_minutes: float) -> Policy:
    return Policy(mode="automatic", priority=order, operating_carrier_first=False,
                  time_tolerance_minutes=tolerance_minutes,
                  fields=dict.fromkeys(ATTRIBUTES, rule), escalate=frozenset())


def score_day(day: Day, score: Score, *, without_truth_sources: bool,
              tolerance_minutes: float) -> TrustModel:
    """Resolve every gold-standard flight of ``day`` with each rule and add to ``score``."""
    def kept(source: str) -> bool:
        return not (without_truth_sources and source.lower() in TRUTH_SOURCES)

    observed = {flight: {s: v for s, v in by_source.items() if kept(s)}
                for flight, by_source in day.observed.items()}
    sources = {s for by_source in observed.values() for s in by_source}
    order = priority_order(day, sources)
    claims = [Claim(flight, attribute, source, value)
              for flight, by_source in observed.items()
              for source, values in by_source.items()
              for attribute, value in values.items()]
    # CPU time: the machine is shared, wall-clock time measures the neighbours too.
    started = time.process_time()
    passes = trust_passes(claims, tolerance_minutes=tolerance_minutes)
    score.estimate_seconds.append(time.process_time() - started)
    model, seeded, final = passes[0], passes[min(1, len(passes) - 1)], passes[-1]
    score.claims.append(len(claims))
    # What recompute stores, read back as the engine reads it.
    trust = trust_from(score_rows(final, claims))
    dependence = dependence_from(dependence_rows(final))
    policies = {rule: _policy(rule, order, tolerance_minutes)
                for rule in ("majority", "priority", "accuracy")}
    for flight, gold in day.truth.items():
        by_source = observed.get(flight, {})
        if not by_source:
            continue
        chosen = {rule: resolve_leg(policy, by_source, None, updated_at={}, ranks={},
                                    trust=trust, dependence=dependence).values
                  for rule, policy in policies.items()}
        for label, learned in (("trust-only", final), ("plain", model), ("seeded", seeded)):
            chosen[f"accuracy/{label}"] = resolve_leg(
                policies["accuracy"], by_source, None, updated_at={}, ranks={},
                trust=learned.trust).values
        chosen["accuracy+copies"] = _with_copies(final, by_source, order)
        chosen["accuracy+copies/plain"] = _with_copies(model, by_source, order)
        chosen["accuracy+copies/seeded"] = _with_copies(seeded, by_source, order)
        for attribute, gold_value in gold.items():
            if attribute not in chosen["majority"]:
                continue   # no source gave a value: nothing to decide
            for rule in RULES:
                score.add(rule, attribute, chosen[rule].get(attribute), gold_value)
    return model


def _with_copies(model: TrustModel, by_source: Mapping[str, Mapping[str, Any]],
                 order: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for attribute in ATTRIBUTES:
        given = {s: v[attribute] for s, v in by_source.items() if attribute in v}
        if given:
            values[attribute] = model.resolve(attribute, given, order)[0]
    return values
