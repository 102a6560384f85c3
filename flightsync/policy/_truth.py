"""Iterative truth discovery: learn each source's accuracy per field and who copies whom.

ACCU / AccuCopy (Dong, Berti-Equille, Srivastava, "Integrating conflicting data: the role of
source dependence", VLDB 2009). Repeat until the accuracies settle:

1. vote on every item with log-odds weights (``_truth_vote``), copies discounted by dependence;
2. turn the votes into a probability per candidate value (softmax over the ``n + 1`` values
   of the domain, the unseen false values scoring 0);
3. a source's accuracy is the expected share of its values that are true, smoothed towards
   ``prior`` with ``prior_weight`` pseudo-claims (Beta prior), so a source with little history
   starts near the prior, never at zero;
4. every pair of sources gets a probability of being dependent from how many values it shares,
   true or false, against what two independent sources of those accuracies would share.
   Shared false values are the strong signal: independent sources rarely make the same mistake.

Speed: copier families make the same groups of sources recur on thousands of items, so a
group's vote and its pair counts are computed once per (field, group) and reused.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from flightsync.policy._truth_vote import clamp, independence, near_lists, value_key, weight

Pair = tuple[str, str]
PairKey = tuple[str, str, str]   # (source, source, field), sources in name order
Group = tuple[str, ...]          # sources giving exactly the same value, in name order
Accuracy = dict[str, dict[str, float]]


@dataclass(slots=True)
class _Item:
    """One (item, field): its distinct values and who gave each."""

    field: str
    values: list[Any]               # distinct candidate values, first seen first
    members: list[Group]            # candidate index -> sources giving exactly that value
    near: list[list[int]]           # candidate index -> candidates within tolerance
    ids: list[int]                  # candidate index -> id of (field, group) in the registry
    truth: int = 0                  # index of the current winner


@dataclass(slots=True)
class PairStats:
    """What two sources share on one field."""

    compared: int = 0               # items both gave a value for
    same: int = 0                   # of those, items with exactly the same value
    same_false: int = 0             # of those, same value and not the current truth


@dataclass(slots=True)
class Estimate:
    """Raw result of the iteration; ``accuracy.TrustModel`` wraps it for callers."""

    accuracy: Accuracy
    coverage: dict[str, dict[str, int]]
    false_values: dict[str, float]
    dependence: dict[str, dict[str, float]]
    pair_stats: dict[PairKey, PairStats]
    truths: dict[tuple[Hashable, str], Any]
    iterations: int
    converged: bool


@dataclass(frozen=True, slots=True)
class Settings:
    tolerance_minutes: float
    prior: float
    prior_weight: float
    max_iter: int
    epsilon: float
    copy_rate: float
    copy_prior: float
    detect_copies: bool
    initial: Mapping[str, Mapping[str, float]] | None = None


def _build_items(claims: Iterable[tuple[Hashable, str, str, Any]], tolerance_seconds: float,
                 ) -> tuple[dict[tuple[Hashable, str], _Item], dict[str, dict[str, int]],
                            list[tuple[str, Group]]]:
    grouped: dict[tuple[Hashable, str], dict[str, Any]] = {}
    for item, field, source, value in claims:
        if value is not None:
            # A source that reports an item twice keeps its first value: one source, one vote.
            grouped.setdefault((item, field), {}).setdefault(source, value)
    items: dict[tuple[Hashable, str], _Item] = {}
    coverage: dict[str, dict[str, int]] = {}
    registry: dict[tuple[str, Group], int] = {}
    for key, by_source in grouped.items():
        field = key[1]
        index_of: dict[Hashable, int] = {}
        values: list[Any] = []
        members: list[list[str]] = []
        for source in sorted(by_source):
            value = by_source[source]
            found = index_of.setdefault(value_key(value), len(values))
            if found == len(values):
                values.append(value)
                members.append([source])
            else:
                members[found].append(source)
            per_field = coverage.setdefault(source, {})
            per_field[field] = per_field.get(field, 0) + 1
        groups = [tuple(m) for m in members]
        ids = [registry.setdefault((field, g), len(registry)) for g in groups]
        items[key] = _Item(field, values, groups, near_lists(values, tolerance_seconds), ids)
    return items, coverage, list(registry)


def _false_values(items: Iterable[_Item]) -> dict[str, float]:
    # n of ACCU, per field: how many wrong values an item shows on average (at least one).
    totals: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for item in items:
        totals[item.field] += len(item.values) - 1
        counts[item.field] += 1
    return {field: max(1.0, totals[field] / counts[field]) for field in counts}


def _pair_base(items: Iterable[_Item], registry: list[tuple[str, Group]],
               ) -> dict[PairKey, PairStats]:
    covered: dict[str, dict[str, set[int]]] = {}
    repeats = [0] * len(registry)
    for index, item in enumerate(items):
        for group, group_id in zip(item.members, item.ids, strict=True):
            for source in group:
                covered.setdefault(item.field, {}).setdefault(source, set()).add(index)
            repeats[group_id] += 1
    stats: dict[PairKey, PairStats] = {}
    for field, by_source in covered.items():
        for a, b in combinations(sorted(by_source), 2):
            compared = len(by_source[a] & by_source[b])
            if compared:
                stats[(a, b, field)] = PairStats(compared=compared)
    for (field, group), count in zip(registry, repeats, strict=True):
        for a, b in combinations(group, 2):
            stats[(a, b, field)].same += count
    return stats


def _count_shared_false(items: Iterable[_Item], registry: list[tuple[str, Group]],
                        stats: dict[PairKey, PairStats]) -> None:
    false_counts = [0] * len(registry)
    for item in items:
        true_set = item.near[item.truth]
        for index, group_id in enumerate(item.ids):
            if index not in true_set:
                false_counts[group_id] += 1
    for pair in stats.values():
        pair.same_false = 0
    for (field, group), count in zip(registry, false_counts, strict=True):
        if count and len(group) > 1:
            for a, b in combinations(group, 2):
                stats[(a, b, field)].same_false += count


def _dependence(stats: dict[PairKey, PairStats], accuracy: Accuracy,
                false_values: dict[str, float], settings: Settings) -> dict[str, dict[str, float]]:
    copy_rate = settings.copy_rate
    log_ratio: dict[Pair, float] = {}
    for (a, b, field), pair in stats.items():
        acc_a, acc_b = clamp(accuracy[a][field]), clamp(accuracy[b][field])
        true_ind = acc_a * acc_b
        false_ind = (1 - acc_a) * (1 - acc_b) / false_values[field]
        # Direction unknown: the copied source's accuracy is taken as the pair's mean.
        acc_o = (acc_a + acc_b) / 2
        true_dep = copy_rate * acc_o + (1 - copy_rate) * true_ind
        false_dep = copy_rate * (1 - acc_o) + (1 - copy_rate) * false_ind
        # A copier differs only where it did not copy: (1 - copy_rate) of the independent rate.
        ratio = ((pair.same - pair.same_false) * math.log(true_dep / true_ind)
                 + pair.same_false * math.log(false_dep / false_ind)
                 + (pair.compared - pair.same) * math.log(1 - copy_rate))
        log_ratio[(a, b)] = log_ratio.get((a, b), 0.0) + ratio
    prior_logit = math.log(settings.copy_prior / (1 - settings.copy_prior))
    result: dict[str, dict[str, float]] = {}
    for (a, b), ratio in log_ratio.items():
        logit = prior_logit + ratio
        probability = 1.0 / (1.0 + math.exp(-logit)) if logit > -50 else 0.0
        # Below 5 % a pair is independent for all practical purposes; dropping it keeps the
        # vote cheap (most pairs are independent).
        if probability >= 0.05:
            result.setdefault(a, {})[b] = probability
            result.setdefault(b, {})[a] = probability
    return result


def _round(items: Iterable[_Item], registry: list[tuple[str, Group]], accuracy: Accuracy, *,
           false_values: dict[str, float], dependence: dict[str, dict[str, float]],
           copy_rate: float) -> list[float]:
    """One vote over every item; returns the expected number of true values per group id."""
    weights = {field: {s: weight(by_field[field], n) for s, by_field in accuracy.items()
                       if field in by_field}
               for field, n in false_values.items()}
    scored: list[float] = []
    for field, group in registry:
        field_weights = weights[field]
        if len(group) == 1:
            scored.append(field_weights[group[0]])
            continue
        ranked = sorted(group, key=lambda s: -field_weights[s])
        shares = independence(ranked, dependence, copy_rate)
        scored.append(sum(field_weights[s] * share
                          for s, share in zip(ranked, shares, strict=True)))
    correct = [0.0] * len(registry)
    for item in items:
        ids = item.ids
        if len(ids) == 1:
            item.truth = 0
            top = scored[ids[0]]
            exps = [1.0]
        else:
            near = item.near
            exact = [scored[i] for i in ids]
            scores = [sum(exact[j] for j in n) for n in near]
            top = max(scores)
            item.truth = scores.index(top)
            exps = [math.exp(score - top) for score in scores]
        unseen = max(0.0, false_values[item.field] + 1 - len(ids)) * math.exp(-top)
        total = sum(exps) + unseen
        if len(ids) == 1:
            correct[ids[0]] += 1.0 / total
            continue
        for index, group_id in enumerate(ids):
            correct[group_id] += min(1.0, sum(exps[j] for j in item.near[index]) / total)
    return correct


def _update(correct: list[float], registry: list[tuple[str, Group]],
            coverage: dict[str, dict[str, int]], accuracy: Accuracy, settings: Settings,
            ) -> float:
    sums = {source: dict.fromkeys(fields, 0.0) for source, fields in coverage.items()}
    for (field, group), expected in zip(registry, correct, strict=True):
        for source in group:
            sums[source][field] += expected
    prior, weight_ = settings.prior, settings.prior_weight
    change = 0.0
    for source, fields in coverage.items():
        for field, count in fields.items():
            new = (sums[source][field] + prior * weight_) / (count + weight_)
            change = max(change, abs(new - accuracy[source][field]))
            accuracy[source][field] = new
    return change


def run(claims: Iterable[tuple[Hashable, str, str, Any]], settings: Settings) -> Estimate:
    """Iterate votes, accuracies and dependence until the accuracies move less than epsilon."""
    items_by_key, coverage, registry = _build_items(claims, settings.tolerance_minutes * 60)
    items = list(items_by_key.values())
    false_values = _false_values(items)
    accuracy = {s: dict.fromkeys(fields, settings.prior) for s, fields in coverage.items()}
    if settings.initial:
        # A starting point (stored history, or a seed) picks which of the self-consistent
        # answers the iteration settles in; the claims still decide the figures.
        for source, fields in accuracy.items():
            known = settings.initial.get(source, {})
            for field in fields:
                if field in known:
                    fields[field] = known[field]
    stats = _pair_base(items, registry) if settings.detect_copies else {}
    dependence: dict[str, dict[str, float]] = {}
    converged, iterations = False, 0
    while iterations < settings.max_iter:
        iterations += 1
        correct = _round(items, registry, accuracy, false_values=false_values,
                         dependence=dependence, copy_rate=settings.copy_rate)
        change = _update(correct, registry, coverage, accuracy, settings)
        if settings.detect_copies:
            _count_shared_false(items, registry, stats)
            dependence = _dependence(stats, accuracy, false_values, settings)
        if change < settings.epsilon:
            converged = True
            break
    return Estimate(accuracy=accuracy, coverage=coverage, false_values=false_values,
                    dependence=dependence, pair_stats=stats,
                    truths={key: item.values[item.truth] for key, item in items_by_key.items()},
                    iterations=iterations, converged=converged)
