"""Leave-days-out: learn the trust on some days, resolve and score the days held out.

Learning is the product's: ``estimate_trust_by_field`` over the learning days' claims (one
item per flight and day, as the engine's history has one leg per flight and day), turned into
the rows ``sources --recompute`` stores and read back as the engine reads them. The held-out
day is then resolved leg by leg with ``resolve_leg`` and that stored trust and dependence: the
estimator never sees the held-out day's claims, let alone its gold standard.

The baselines are fixed rules: ``majority``, and ``priority`` under three orders, none of them
looking at the held-out day's gold standard: the shipped benchmark order (the airlines' sites
first, then by how many values a source gives), the order of the trust learned in the fold
(gold-free, as an operator reading ``flightsync sources`` would set it), and the order of each
source's measured accuracy against the learning days' gold standard (what an operator who
checked past days by hand would set: the best fixed order the learning days can tell).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from benchmarks.fusion._load import ATTRIBUTES, Day
from benchmarks.fusion._run import TRUTH_SOURCES, Score, priority_order
from flightsync.engine._sources import dependence_from, dependence_rows, score_rows, trust_from
from flightsync.policy import Dependence, Policy, Trust, resolve_leg
from flightsync.policy.accuracy import Claim, TrustModel, estimate_trust_by_field

FOLD_RULES: tuple[str, ...] = ("majority", "priority", "priority/learned-order",
                               "priority/gold-order", "priority/gold-order-per-field",
                               "accuracy")
Estimator = Callable[..., TrustModel]


@dataclass(frozen=True, slots=True)
class Learned:
    """What the product would hold after learning on some days: the stored figures."""

    trust: Trust | None
    dependence: Dependence | None
    seconds: float                  # CPU time of the estimate
    claims: int


def observed_of(day: Day, *, without_truth_sources: bool) -> dict[str, dict[str, Any]]:
    """The day's values per flight and source, without aa/ua/CO when asked."""
    return {flight: {s: v for s, v in by_source.items()
                     if not (without_truth_sources and s.lower() in TRUTH_SOURCES)}
            for flight, by_source in day.observed.items()}


def claims_of(days: Iterable[Day], *, without_truth_sources: bool) -> list[Claim]:
    """Every value of ``days`` as a claim on the item (day, flight), like a stored leg."""
    return [Claim((day.day, flight), attribute, source, value)
            for day in days
            for flight, by_source in observed_of(
                day, without_truth_sources=without_truth_sources).items()
            for source, values in by_source.items()
            for attribute, value in values.items()]


def learn(days: Sequence[Day], *, without_truth_sources: bool, tolerance_minutes: float,
          estimator: Estimator = estimate_trust_by_field) -> Learned:
    """The product's estimate over ``days``, stored as rows and read back as the engine does."""
    claims = claims_of(days, without_truth_sources=without_truth_sources)
    started = time.process_time()
    model = estimator(claims, tolerance_minutes=tolerance_minutes)
    seconds = time.process_time() - started
    return Learned(trust_from(score_rows(model, claims)),
                   dependence_from(dependence_rows(model)), seconds, len(claims))


def learned_order(trust: Trust | None, sources: Iterable[str]) -> tuple[str, ...]:
    """Sources by their mean learned accuracy over the fields, best first (gold-free)."""
    def mean(source: str) -> float:
        figures = (trust or {}).get(source, {})
        return sum(figures.values()) / len(figures) if figures else 0.0
    return tuple(sorted(sources, key=lambda s: (-mean(s), s)))


def gold_order(days: Sequence[Day], sources: Iterable[str],
               attributes: Iterable[str] = ATTRIBUTES) -> tuple[str, ...]:
    """Sources by their share of right values on ``attributes`` against the learning days'
    gold standard, best first."""
    wanted = frozenset(attributes)
    right: dict[str, int] = {}
    given: dict[str, int] = {}
    for day in days:
        for flight, gold in day.truth.items():
            for source, values in day.observed.get(flight, {}).items():
                for attribute, value in values.items():
                    if attribute in gold and attribute in wanted:
                        given[source] = given.get(source, 0) + 1
                        right[source] = right.get(source, 0) + (value == gold[attribute])
    # Smoothed towards a half so that a source seen on a handful of items does not lead.
    return tuple(sorted(sources, key=lambda s: (-(right.get(s, 0) + 1) / (given.get(s, 0) + 2),
                                                s)))


def rule_policy(rule: str, order: tuple[str, ...], tolerance_minutes: float) -> Policy:
    """A policy that gives every attribute ``rule``, sources ranked in ``order``."""
    return Policy(mode="automatic", priority=order, operating_carrier_first=False,
                  time_tolerance_minutes=tolerance_minutes,
                  fields=dict.fromkeys(ATTRIBUTES, rule), escalate=frozenset())


def score_held_out(day: Day, learned: Learned, learning: Sequence[Day], score: Score, *,
                   without_truth_sources: bool, tolerance_minutes: float) -> None:
    """Resolve every gold-standard flight of ``day`` with the learned figures and the fixed
    rules; add to ``score`` under the names of ``FOLD_RULES``."""
    observed = observed_of(day, without_truth_sources=without_truth_sources)
    sources = {s for by_source in observed.values() for s in by_source}
    fixed = priority_order(day, sources)
    policies = {
        "majority": rule_policy("majority", fixed, tolerance_minutes),
        "priority": rule_policy("priority", fixed, tolerance_minutes),
        "priority/learned-order": rule_policy(
            "priority", learned_order(learned.trust, sources), tolerance_minutes),
        "priority/gold-order": rule_policy(
            "priority", gold_order(learning, sources), tolerance_minutes),
        "accuracy": rule_policy("accuracy", fixed, tolerance_minutes),
    }
    # An order per attribute from the learning days' gold standard: a reference for what
    # fixed orders can do (a policy file has one priority list, so not a configuration).
    per_field = {attribute: rule_policy("priority", gold_order(learning, sources, (attribute,)),
                                        tolerance_minutes) for attribute in ATTRIBUTES}
    for flight, gold in day.truth.items():
        by_source = observed.get(flight, {})
        if not by_source:
            continue
        for name, policy in policies.items():
            chosen = resolve_leg(policy, by_source, None, updated_at={}, ranks={},
                                 trust=learned.trust, dependence=learned.dependence).values
            for attribute, gold_value in gold.items():
                if attribute in chosen:   # no source gave a value: nothing to decide
                    score.add(name, attribute, chosen[attribute], gold_value)
        for attribute, policy in per_field.items():
            if attribute in gold:
                chosen = resolve_leg(policy, by_source, None, updated_at={}, ranks={}).values
                if attribute in chosen:
                    score.add("priority/gold-order-per-field", attribute, chosen[attribute],
                              gold[attribute])


def leave_days_out(days: Sequence[Day], *, folds: int, without_truth_sources: bool,
                   tolerance_minutes: float, estimator: Estimator = estimate_trust_by_field,
                   per_day: dict[str, Score] | None = None) -> Score:
    """Rotate over ``folds`` folds of consecutive days (``len(days)``: leave one day out):
    learn on the others, score the fold's days."""
    score = Score()
    size = len(days)
    bounds = [round(index * size / folds) for index in range(folds + 1)]
    for start, end in pairwise(bounds):
        held = days[start:end]
        learning = [*days[:start], *days[end:]]
        learned = learn(learning, without_truth_sources=without_truth_sources,
                        tolerance_minutes=tolerance_minutes, estimator=estimator)
        score.estimate_seconds.append(learned.seconds)
        score.claims.append(learned.claims)
        for day in held:
            day_score = Score()
            score_held_out(day, learned, learning, day_score,
                           without_truth_sources=without_truth_sources,
                           tolerance_minutes=tolerance_minutes)
            score.merge(day_score)
            if per_day is not None:
                per_day[day.day.isoformat()] = day_score
    return score
