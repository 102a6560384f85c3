"""The ``accuracy`` rule: trust learned from each source's history, copies detected from data.

Two pure functions over plain data, so the engine can store figures and recompute them:

- ``estimate_trust(claims, ...)`` learns, from many items, each source's accuracy per field
  and which sources copy each other (``_truth``: ACCU / AccuCopy);
- ``estimate_trust_by_field(claims, ...)`` is what the engine stores: ``trust_passes`` re-runs
  that estimate seeded across fields so that fields split between two camps of sources settle
  in the camp each source's record on its other fields points to;
- ``choose(field, values, trust, tolerance_minutes, order)`` picks one value for one field of
  one leg by a vote weighted with those accuracies; ties go to the source first in ``order``.

A source the trust figures do not know starts at ``prior`` (cold start), never at zero. A claim
whose value is ``REJECTED`` (a value dropped as implausible) counts as that source's mistake.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from flightsync.policy._rules import VALUE_KEYS
from flightsync.policy._truth import Estimate, Settings, run
from flightsync.policy._truth_items import REJECTED as REJECTED  # noqa: PLC0414 - re-export
from flightsync.policy._truth_items import Items, build
from flightsync.policy._truth_vote import Dependence, independence, near_lists, value_key, weight

Trust = Mapping[str, Mapping[str, float]]   # source -> field -> estimated accuracy (0..1)

DEFAULT_PRIOR = 0.8
DEFAULT_PRIOR_WEIGHT = 10.0
# ACCU's n when no history says otherwise: a time or a gate has several plausible wrong values.
DEFAULT_FALSE_VALUES = 3.0
DEFAULT_COPY_RATE = 0.8
DEFAULT_COPY_PRIOR = 0.2
# Pairs at least this likely to be dependent are reported in TrustModel.copies.
REPORTED_DEPENDENCE = 0.5
# A field is split between two camps when the seeded pass changes most of its answers: the
# other camp's answer, not a few items the seed nudged (trust_passes).
SPLIT_SHARE = 0.5
_EPS = 1e-9   # scores closer than this are a tie (float sums in a different order)


class Claim(NamedTuple):
    """One source's value for one field of one item (a leg, or anything hashable)."""

    item: Hashable
    field: str
    source: str
    value: Any


@dataclass(frozen=True, slots=True)
class CopyPair:
    """Two sources that share far more values, mistakes included, than accuracy explains."""

    sources: tuple[str, str]
    dependence: float           # posterior probability that one copies the other
    compared: int               # items (all fields) both gave a value for
    same: int                   # of those, the same value
    same_false: int             # of those, the same value that lost the vote

    def to_json(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "dependence": round(self.dependence, 4),
                "compared": self.compared, "same": self.same, "same_false": self.same_false}


@dataclass(frozen=True, slots=True)
class TrustModel:
    """What ``estimate_trust`` learned. ``trust`` is what ``choose`` and the policy take."""

    trust: Mapping[str, Mapping[str, float]]
    coverage: Mapping[str, Mapping[str, int]]        # source -> field -> claims seen
    copies: tuple[CopyPair, ...]                     # most dependent first
    dependence: Dependence                           # source -> source -> P(dependent)
    false_values: Mapping[str, float]                # field -> ACCU's n
    truths: Mapping[tuple[Hashable, str], Any]       # (item, field) -> value the vote chose
    tolerance_minutes: float
    prior: float
    iterations: int
    converged: bool

    def resolve(self, field: str, values: Mapping[str, Any],
                order: Sequence[str] = ()) -> tuple[Any, str, dict[str, float]]:
        """``choose`` with this model's accuracies, false-value counts and detected copies."""
        return choose(field, values, self.trust, self.tolerance_minutes, order,
                      prior=self.prior,
                      false_values=self.false_values.get(field, DEFAULT_FALSE_VALUES),
                      dependence=self.dependence)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: per-source figures, detected copies and how the estimate went."""
        return {
            "sources": {
                source: {field: {"accuracy": round(self.trust[source][field], 4),
                                 "claims": self.coverage[source][field]}
                         for field in sorted(fields)}
                for source, fields in sorted(self.coverage.items())
            },
            "copies": [pair.to_json() for pair in self.copies],
            "false_values": {k: round(v, 3) for k, v in sorted(self.false_values.items())},
            "tolerance_minutes": self.tolerance_minutes,
            "prior": self.prior,
            "iterations": self.iterations,
            "converged": self.converged,
        }


def estimate_trust(claims: Iterable[Claim | tuple[Hashable, str, str, Any]], *,
                   tolerance_minutes: float, prior: float = DEFAULT_PRIOR,
                   prior_weight: float = DEFAULT_PRIOR_WEIGHT, max_iter: int = 10,
                   epsilon: float = 1e-3, copy_rate: float = DEFAULT_COPY_RATE,
                   copy_prior: float = DEFAULT_COPY_PRIOR,
                   detect_copies: bool = True, initial: Trust | None = None) -> TrustModel:
    """Learn per-source, per-field accuracy and source dependence from ``claims``.

    ``claims`` are ``(item, field, source, value)``; ``None`` values are ignored and a source's
    second value for the same item and field is ignored. Times (datetimes) within
    ``tolerance_minutes`` count as the same value. ``prior_weight`` pseudo-claims at ``prior``
    smooth every accuracy; ``copy_rate`` is the share of values a copier takes from its source
    and ``copy_prior`` the prior probability that two sources are dependent. ``initial``
    (source -> field -> accuracy, e.g. stored history or ``cross_field_seed``) is where the
    iteration starts instead of ``prior``.
    """
    return _estimate(claims, tolerance_minutes=tolerance_minutes, prior=prior,
                     prior_weight=prior_weight, max_iter=max_iter, epsilon=epsilon,
                     copy_rate=copy_rate, copy_prior=copy_prior, detect_copies=detect_copies,
                     initial=initial)


def _estimate(claims: Iterable[Claim | tuple[Hashable, str, str, Any]] | Items, *,
              tolerance_minutes: float, prior: float = DEFAULT_PRIOR,
              prior_weight: float = DEFAULT_PRIOR_WEIGHT, max_iter: int = 10,
              epsilon: float = 1e-3, copy_rate: float = DEFAULT_COPY_RATE,
              copy_prior: float = DEFAULT_COPY_PRIOR,
              detect_copies: bool = True, initial: Trust | None = None) -> TrustModel:
    # ``estimate_trust`` on claims, or on their index built once for several passes.
    if not 0.0 < prior < 1.0:
        raise ValueError("prior must be between 0 and 1")
    estimate = run(claims, Settings(
        tolerance_minutes=tolerance_minutes, prior=prior, prior_weight=prior_weight,
        max_iter=max_iter, epsilon=epsilon, copy_rate=copy_rate, copy_prior=copy_prior,
        detect_copies=detect_copies, initial=initial))
    return TrustModel(
        trust=estimate.accuracy, coverage=estimate.coverage, copies=_copies(estimate),
        dependence=estimate.dependence, false_values=estimate.false_values,
        truths=estimate.truths, tolerance_minutes=tolerance_minutes, prior=prior,
        iterations=estimate.iterations, converged=estimate.converged)


def cross_field_seed(trust: Trust) -> dict[str, dict[str, float]]:
    """Each source's accuracy on a field replaced by its mean accuracy on its other fields.

    The vote has more than one self-consistent answer when two camps of sources define a
    field differently (gate versus runway times): the plain start settles in the bigger camp.
    Re-estimating from this seed lets how a source did on every other field pick the camp.
    """
    seed: dict[str, dict[str, float]] = {}
    for source, fields in trust.items():
        total, count = sum(fields.values()), len(fields)
        if count > 1:
            seed[source] = {field: (total - value) / (count - 1)
                            for field, value in fields.items()}
    return seed


def estimate_trust_by_field(claims: Iterable[Claim | tuple[Hashable, str, str, Any]], *,
                            tolerance_minutes: float, **options: Any) -> TrustModel:
    """The estimate the engine stores: the last of ``trust_passes``."""
    return trust_passes(claims, tolerance_minutes=tolerance_minutes, **options)[-1]


def trust_passes(claims: Iterable[Claim | tuple[Hashable, str, str, Any]], *,
                 tolerance_minutes: float, **options: Any) -> tuple[TrustModel, ...]:
    """``estimate_trust`` in up to three passes that settle each split field in the camp the
    sources' record on their other fields points to; returns every pass, the answer last.

    1. a plain estimate;
    2. one started from ``cross_field_seed`` of it: on a field where two camps of sources
       each agree among themselves, how a source did elsewhere picks the camp;
    3. the field whose answers pass 2 changed most keeps its pass-2 figures, and every other
       field restarts from the source's mean figure on its other fields (pass 2's for that
       field, pass 1's for the rest). Seeding every field at once can swap two split
       fields' camps (each is seeded from the other's plain answer); settling the most
       doubtful field first lets the others follow it.

    Pass 2 changed no field's answers on more than ``SPLIT_SHARE`` of its items: no field is
    split between camps, and pass 1 is the answer. A source's mean on its other fields is a
    poor seed for a field it shares no camp on (a source reporting another event as its
    actual departure would start its gates near zero), so the seed only decides a field whose
    answer it turns over. ``options`` are ``estimate_trust``'s except ``initial``. Gold-free:
    only the claims count.
    """
    # The claims are indexed once for all three passes: that index is half a pass's work.
    items = build(claims, tolerance_minutes * 60)
    plain = _estimate(items, tolerance_minutes=tolerance_minutes, **options)
    seeded = _estimate(items, tolerance_minutes=tolerance_minutes,
                       initial=cross_field_seed(plain.trust), **options)
    moved = changed_share(plain, seeded)
    worst = max(sorted(moved), key=lambda name: moved[name], default=None)
    if worst is None or moved[worst] <= SPLIT_SHARE:
        return (plain,)
    start = {source: {name: (seeded if name == worst else plain).trust[source][name]
                      for name in fields}
             for source, fields in plain.trust.items()}
    seed = cross_field_seed(start)
    for fields in seed.values():
        fields.pop(worst, None)
    for source, fields in start.items():
        if worst in fields:
            seed.setdefault(source, {})[worst] = fields[worst]
    final = _estimate(items, tolerance_minutes=tolerance_minutes, initial=seed, **options)
    return plain, seeded, final


def changed_share(before: TrustModel, after: TrustModel) -> dict[str, float]:
    """Per field, the share of items whose chosen value differs between two estimates."""
    counts: dict[str, list[int]] = {}
    for key, value in before.truths.items():
        found = counts.setdefault(key[1], [0, 0])
        found[0] += 1
        key_of = VALUE_KEYS.get(key[1], value_key)
        if key in after.truths and key_of(after.truths[key]) != key_of(value):
            found[1] += 1
    return {name: changed / items for name, (items, changed) in counts.items()}


def _copies(estimate: Estimate) -> tuple[CopyPair, ...]:
    totals: dict[tuple[str, str], list[int]] = {}
    for (a, b, _), stats in estimate.pair_stats.items():
        found = totals.setdefault((a, b), [0, 0, 0])
        found[0] += stats.compared
        found[1] += stats.same
        found[2] += stats.same_false
    pairs = [
        CopyPair((a, b), probability, *totals.get((a, b), [0, 0, 0]))
        for a, others in estimate.dependence.items()
        for b, probability in others.items()
        if a < b and probability >= REPORTED_DEPENDENCE
    ]
    return tuple(sorted(pairs, key=lambda p: (-p.dependence, p.sources)))


def choose(field: str, values: Mapping[str, Any], trust: Trust | None,
           tolerance_minutes: float, order: Sequence[str], *, prior: float = DEFAULT_PRIOR,
           false_values: float = DEFAULT_FALSE_VALUES,
           dependence: Dependence | None = None) -> tuple[Any, str, dict[str, float]]:
    """Pick one of ``values`` (source -> value) for ``field`` by an accuracy-weighted vote.

    Each candidate value gathers the log-odds votes of the sources that gave it (by the
    field's key in ``VALUE_KEYS``: an IATA aircraft code and its ICAO designator are one
    candidate) or, for times, a time within ``tolerance_minutes``; sources that depend on one
    another (``dependence``) count once between them. Equal scores go to the candidate whose
    best source comes first in ``order`` (sources ``order`` omits rank after it, by name).
    Returns the chosen value as its best-ranked source gave it, that source, and the trust
    figure used for every source.
    """
    if not values:
        raise ValueError("choose needs at least one value")
    rank = {source: index for index, source in enumerate(order)}
    sources = sorted(values, key=lambda s: (rank.get(s, len(rank)), s))
    figures = {s: _trust_of(trust, s, field, prior) for s in sources}
    key_of = VALUE_KEYS.get(field, value_key)
    index_of: dict[Hashable, int] = {}
    candidates: list[Any] = []
    members: list[list[str]] = []
    for source in sources:
        key = key_of(values[source])
        found = index_of.get(key)
        if found is None:
            index_of[key] = len(candidates)
            candidates.append(values[source])
            members.append([source])
        else:
            members[found].append(source)
    exact = []
    for group in members:
        # Best-trusted first, so a copier is the one discounted, not the source it copies.
        ranked = sorted(group, key=lambda s: -figures[s])
        shares = independence(ranked, dependence, DEFAULT_COPY_RATE)
        exact.append(sum(weight(figures[s], false_values) * share
                         for s, share in zip(ranked, shares, strict=True)))
    near = near_lists(candidates, tolerance_minutes * 60)
    scores = [sum(exact[j] for j in close) for close in near]
    # Candidates are in order of their best source's rank, so the first maximum wins ties;
    # the exact score decides between candidates that gather the same nearby votes.
    best = 0
    for index in range(1, len(candidates)):
        gain = scores[index] - scores[best]
        if gain > _EPS or (gain >= -_EPS and exact[index] > exact[best] + _EPS):
            best = index
    return candidates[best], members[best][0], figures


def _trust_of(trust: Trust | None, source: str, field: str, prior: float) -> float:
    if trust is None:
        return prior
    return trust.get(source, {}).get(field, prior)
