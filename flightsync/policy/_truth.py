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
   The evidence is taken from the pair's least dependent field (``_weakest_field``): copying
   shows on every field, a shared definition of one field (gate or runway time) on one.

Speed: a day of claims is ~100,000 values, and ``trust_passes`` runs up to 30 rounds. The
claims are indexed once (``_truth_items.build``, shareable between passes); each round is a
handful of numpy operations over groups (sources giving the same value, which copier families
make recur on thousands of items) and candidates, no Python loop per item.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from flightsync.policy._truth_items import Floats, Ints, Items, build, sum_by
from flightsync.policy._truth_vote import MAX_ACCURACY, MIN_ACCURACY, MIN_WEIGHT

Pair = tuple[str, str]
PairKey = tuple[str, str, str]   # (source, source, field), sources in name order
Accuracy = dict[str, dict[str, float]]
# Below this a pair is independent for all practical purposes: dropping it keeps votes cheap.
MIN_DEPENDENCE = 0.05
# A field two sources share fewer items on says too little to clear them of copying.
MIN_FIELD_ITEMS = 10
_EPS = 1e-9


@dataclass(slots=True)
class PairStats:
    """What two sources share on one field."""

    compared: int = 0               # items both gave a value for
    same: int = 0                   # of those, items with the same value (by its key)
    same_false: int = 0             # of those, same value and not the chosen truth


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


def _weights(accuracy: Floats, false_values: Floats) -> Floats:
    clamped = np.clip(accuracy, MIN_ACCURACY, MAX_ACCURACY)
    result: Floats = np.maximum(MIN_WEIGHT, np.log(false_values * clamped / (1.0 - clamped)))
    return result


def _round(items: Items, accuracy: Floats, dependence: Floats | None,
           copy_rate: float) -> tuple[Floats, Ints]:
    """One vote over every item: expected true values per group, winning candidate per item."""
    weights = _weights(accuracy, items.false_values)[items.mem_source, items.mem_field]
    if dependence is not None and items.order_row.size:
        # A member's vote shrinks by 1 - copy_rate * P(dep) for each better-trusted member
        # (equal weights: the one first by name) of its group: copies do not add up.
        own, other = weights[items.order_row], weights[items.order_other]
        earlier = (other > own) | ((other == own) & (items.order_other < items.order_row))
        factors = np.where(earlier, 1.0 - copy_rate * dependence.ravel()[items.order_pair], 1.0)
        shares = np.ones_like(weights)
        shares[items.order_members] = np.multiply.reduceat(factors, items.order_starts)
        weights = weights * shares
    scored = sum_by(items.mem_group, weights, items.groups)
    exact = scored[items.cand_group]
    near = items.near_src.size > 0
    scores = exact + _near_sum(items, exact) if near else exact
    top = np.maximum.reduceat(scores, items.item_start)
    top_of = top[items.cand_item]
    positions = np.arange(scores.size)
    # Scores a float rounding apart are a tie (sums over near values come in any order):
    # the first candidate, first by source name, wins.
    tied = scores >= top_of - _EPS
    truth: Ints = np.minimum.reduceat(np.where(tied, positions, scores.size), items.item_start)
    exps = np.exp(scores - top_of)
    unseen = np.maximum(0.0, items.false_values[items.item_field] + 1 - items.item_count)
    total = np.add.reduceat(exps, items.item_start) + unseen * np.exp(-top)
    likely = exps + _near_sum(items, exps) if near else exps
    correct = np.minimum(1.0, likely / total[items.cand_item])
    return sum_by(items.cand_group, correct, items.groups), truth


def _near_sum(items: Items, per_candidate: Floats) -> Floats:
    return sum_by(items.near_src, per_candidate[items.near_dst], per_candidate.size)


def _update(items: Items, correct: Floats, accuracy: Floats, settings: Settings,
            ) -> tuple[Floats, float]:
    width, depth = accuracy.shape
    sums = sum_by(items.mem_source * depth + items.mem_field, correct[items.mem_group],
                  width * depth).reshape(width, depth)
    covered = items.coverage > 0
    new = (sums + settings.prior * settings.prior_weight) / (items.coverage
                                                             + settings.prior_weight)
    change = float(np.abs(new - accuracy)[covered].max(initial=0.0))
    return np.where(covered, new, accuracy), change


def _shared_false(items: Items, truth: Ints) -> Ints:
    """Per compared (field, a, b) key: items where both gave the same value and it lost."""
    is_true = np.zeros(items.cand_group.size, dtype=bool)
    is_true[truth] = True
    if items.near_src.size:
        close = items.near_src == truth[items.cand_item[items.near_src]]
        is_true[items.near_dst[close]] = True
    false_counts = sum_by(items.cand_group, ~is_true, items.groups)
    width, depth = len(items.sources), len(items.fields)
    shared = sum_by(items.pair_key, false_counts[items.pair_group], depth * width * width)
    result: Ints = shared[items.keys_flat].round().astype(np.int64)
    return result


def _dependence(items: Items, same_false: Ints, accuracy: Floats,
                settings: Settings) -> Floats:
    """P(dependent) per source pair (symmetric; zero below MIN_DEPENDENCE)."""
    width = len(items.sources)
    field, rest = np.divmod(items.keys_flat, width * width)
    a, b = np.divmod(rest, width)
    acc_a = np.clip(accuracy[a, field], MIN_ACCURACY, MAX_ACCURACY)
    acc_b = np.clip(accuracy[b, field], MIN_ACCURACY, MAX_ACCURACY)
    rate = settings.copy_rate
    true_ind = acc_a * acc_b
    false_ind = (1 - acc_a) * (1 - acc_b) / items.false_values[field]
    # Direction unknown: the copied source's accuracy is taken as the pair's mean.
    acc_o = (acc_a + acc_b) / 2
    true_dep = rate * acc_o + (1 - rate) * true_ind
    false_dep = rate * (1 - acc_o) + (1 - rate) * false_ind
    # A copier differs only where it did not copy: (1 - copy_rate) of the independent rate.
    ratio = ((items.same - same_false) * np.log(true_dep / true_ind)
             + same_false * np.log(false_dep / false_ind)
             + (items.compared - items.same) * math.log(1 - rate))
    pair = a * width + b
    log_ratio = np.minimum(sum_by(pair, ratio, width * width), _weakest_field(items, pair, ratio))
    present = np.bincount(pair, minlength=width * width) > 0
    logit = math.log(settings.copy_prior / (1 - settings.copy_prior)) + log_ratio
    probability = np.where(logit > -50, 1.0 / (1.0 + np.exp(-np.maximum(logit, -50))), 0.0)
    upper = np.where(present & (probability >= MIN_DEPENDENCE), probability, 0.0)
    upper = upper.reshape(width, width)
    result: Floats = upper + upper.T
    return result


def _weakest_field(items: Items, pair: Ints, ratio: Floats) -> Floats:
    """Per pair, the evidence of its weakest field per item, times every item compared.

    A copier repeats its source on every field both give. Two independent sources that
    define one field alike (both give the runway time as the actual departure) share that
    field's "mistakes" by the thousand, and summed over the fields that one field would make
    them copiers: their votes would merge, and the camp they lose to would look like the
    copiers instead. So a pair counts as dependent only as far as its least dependent field
    (of those compared on at least MIN_FIELD_ITEMS items) says so; a pair with no such field
    is judged on the sum over its fields, as before (infinity here).
    """
    size = len(items.sources) ** 2
    enough = items.compared >= MIN_FIELD_ITEMS
    rate = np.full(size, np.inf)
    np.minimum.at(rate, pair[enough], ratio[enough] / items.compared[enough])
    compared = sum_by(pair, items.compared, size)
    found = np.isfinite(rate)
    result: Floats = np.full(size, np.inf)
    result[found] = rate[found] * compared[found]
    return result


def _start(items: Items, settings: Settings) -> Floats:
    accuracy = np.full((len(items.sources), len(items.fields)), settings.prior)
    if settings.initial:
        # A starting point (stored history, or a seed) picks which of the self-consistent
        # answers the iteration settles in; the claims still decide the figures.
        for row, source in enumerate(items.sources):
            known = settings.initial.get(source, {})
            for column, field in enumerate(items.fields):
                if field in known and items.coverage[row, column] > 0:
                    accuracy[row, column] = known[field]
    return accuracy


def run(claims: Iterable[tuple[Hashable, str, str, Any]] | Items, settings: Settings,
        ) -> Estimate:
    """Iterate votes, accuracies and dependence until the accuracies move less than epsilon.

    ``claims`` may be ``_truth_items.build``'s index of them, built once for several runs
    with the same tolerance.
    """
    items = claims if isinstance(claims, Items) else build(
        claims, settings.tolerance_minutes * 60)
    accuracy = _start(items, settings)
    dependence: Floats | None = None
    same_false = np.zeros_like(items.same)
    truth = items.item_start
    converged, iterations = False, 0
    while iterations < settings.max_iter:
        iterations += 1
        correct, truth = _round(items, accuracy, dependence, settings.copy_rate)
        accuracy, change = _update(items, correct, accuracy, settings)
        if settings.detect_copies:
            same_false = _shared_false(items, truth)
            dependence = _dependence(items, same_false, accuracy, settings)
        if change < settings.epsilon:
            converged = True
            break
    return _estimate(items, accuracy, dependence, same_false=same_false, truth=truth,
                     iterations=iterations, converged=converged,
                     detect_copies=settings.detect_copies)


def _estimate(items: Items, accuracy: Floats, dependence: Floats | None, *, same_false: Ints,
              truth: Ints, iterations: int, converged: bool, detect_copies: bool) -> Estimate:
    sources, fields = items.sources, items.fields
    figures, counts = accuracy.tolist(), items.coverage.astype(np.int64).tolist()
    coverage = {s: {f: counts[i][j] for j, f in enumerate(fields) if counts[i][j]}
                for i, s in enumerate(sources)}
    links: dict[str, dict[str, float]] = {}
    if dependence is not None:
        for i, j in zip(*np.nonzero(dependence), strict=True):
            links.setdefault(sources[i], {})[sources[j]] = float(dependence[i, j])
    stats: dict[PairKey, PairStats] = {}
    if detect_copies:
        width = len(sources)
        for key, compared, same, shared in zip(items.keys_flat.tolist(), items.compared.tolist(),
                                                items.same.tolist(), same_false.tolist(),
                                                strict=True):
            field, rest = divmod(key, width * width)
            a, b = divmod(rest, width)
            stats[(sources[a], sources[b], fields[field])] = PairStats(compared, same, shared)
    values = items.values
    return Estimate(
        accuracy={s: {f: figures[i][j] for j, f in enumerate(fields) if counts[i][j]}
                  for i, s in enumerate(sources)},
        coverage=coverage,
        false_values={f: float(n) for f, n in zip(fields, items.false_values.tolist(),
                                                   strict=True)},
        dependence=links, pair_stats=stats,
        truths={key: values[index] for key, index in zip(items.keys, truth.tolist(),
                                                          strict=True)},
        iterations=iterations, converged=converged)
