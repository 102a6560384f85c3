"""The accuracy rule: trust learned from history (estimate_trust) and the weighted vote (choose)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from flightsync.policy.accuracy import (
    Claim,
    choose,
    cross_field_seed,
    estimate_trust,
    estimate_trust_by_field,
    trust_passes,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FIELD = "arrival_gate"


def _history(items: int, right: list[str], wrong: dict[str, int]) -> list[Claim]:
    """``right`` sources always give the true gate; each ``wrong`` source gives a wrong gate
    on every item, shared by sources with the same number (a copied or common mistake)."""
    claims = []
    for item in range(items):
        claims += [Claim(item, FIELD, s, f"A{item}") for s in right]
        claims += [Claim(item, FIELD, s, f"W{item}-{flavour if flavour >= 0 else s}")
                   for s, flavour in wrong.items()]
    return claims


def test_always_right_source_beats_wrong_majority_once_history_shows_it() -> None:
    """Three sources that are each wrong in their own way outvote a lone right source by
    count, but once history shows who is right, the right source's value wins."""
    claims = _history(60, ["good"], {})
    # Each of the three others is right on every third item and wrong its own way otherwise.
    for item in range(60):
        for offset, name in enumerate(("x", "y", "z")):
            value = f"A{item}" if item % 3 == offset else f"{name}{item}"
            claims.append(Claim(item, FIELD, name, value))
    model = estimate_trust(claims, tolerance_minutes=0)
    assert model.trust["good"][FIELD] > max(model.trust[s][FIELD] for s in "xyz")
    values = {"good": "B1", "x": "C9", "y": "C9", "z": "C9"}
    untrained, _, _ = choose(FIELD, values, None, 0, ["x", "y", "z", "good"])
    trained, source, figures = choose(FIELD, values, model.trust, 0, ["x", "y", "z", "good"])
    assert untrained == "C9"
    assert (trained, source) == ("B1", "good")
    assert figures["good"] == model.trust["good"][FIELD]


def test_ties_go_to_the_first_source_in_order() -> None:
    """Two values with the same support: the one whose source comes first in ``order``."""
    values = {"a": "G1", "b": "G2"}
    assert choose(FIELD, values, None, 0, ["a", "b"])[:2] == ("G1", "a")
    assert choose(FIELD, values, None, 0, ["b", "a"])[:2] == ("G2", "b")
    trust = {"a": {FIELD: 0.9}, "b": {FIELD: 0.9}}
    assert choose(FIELD, values, trust, 0, ["b", "a"])[:2] == ("G2", "b")


def test_copiers_of_a_bad_source_are_detected_and_do_not_multiply_its_vote() -> None:
    """``copy1`` and ``copy2`` repeat ``bad``'s values, mistakes included; the estimator finds
    those pairs from the data alone (no names given), and with the detected dependence the
    three count about once, so two independent sources outvote them."""
    claims = _history(80, ["r1", "r2", "r3"], {"bad": 0, "copy1": 0, "copy2": 0})
    # Each "r" source misses now and then in its own way, so they agree only through truth.
    claims = [c._replace(value=f"M{c.item}{c.source}")
              if c.source.startswith("r") and cast(int, c.item) % 10 == int(c.source[1]) else c
              for c in claims]
    model = estimate_trust(claims, tolerance_minutes=0)
    detected = {pair.sources for pair in model.copies}
    assert {("bad", "copy1"), ("bad", "copy2"), ("copy1", "copy2")} <= detected
    assert not detected & {("r1", "r2"), ("r1", "r3"), ("r2", "r3")}
    values = {"bad": "X", "copy1": "X", "copy2": "X", "r1": "Y", "r2": "Y"}
    order = list(values)
    flat = {s: {FIELD: 0.8} for s in values}
    assert choose(FIELD, values, flat, 0, order)[0] == "X"
    chosen, _, _ = choose(FIELD, values, flat, 0, order, dependence=model.dependence)
    assert chosen == "Y"


def test_new_source_starts_at_the_prior() -> None:
    """A source absent from the trust figures is weighed at the prior, not at zero, and a
    source with little history stays close to the prior."""
    _, _, figures = choose(FIELD, {"known": "A", "new": "B"}, {"known": {FIELD: 0.95}}, 0,
                           ["new", "known"], prior=0.8)
    assert figures == {"new": 0.8, "known": 0.95}
    claims = _history(50, ["a", "b", "c"], {})
    claims.append(Claim(0, FIELD, "rookie", "wrong"))
    model = estimate_trust(claims, tolerance_minutes=0, prior=0.8, prior_weight=10)
    assert 0.6 < model.trust["rookie"][FIELD] < 0.8
    assert model.coverage["rookie"][FIELD] == 1


def test_times_within_tolerance_count_as_one_value() -> None:
    """Two times a minute apart pool their votes against a single far-off time; with no
    tolerance the far-off time's best-ranked source wins the three-way tie."""
    field = "actual_arrival"
    values = {"far": T0 + timedelta(minutes=30), "a": T0, "b": T0 + timedelta(minutes=1)}
    order = ["far", "a", "b"]
    assert choose(field, values, None, 0, order)[0] == values["far"]
    chosen, source, _ = choose(field, values, None, 3, order)
    assert (chosen, source) == (T0, "a")


def test_estimate_converges_and_recovers_the_truth() -> None:
    """On data with a clear structure the iteration settles before max_iter, every item's
    learned truth is the right value, and ranking matches how often each source was right."""
    claims = _history(40, ["good1", "good2", "good3"], {"noisy": -1})
    claims = [c._replace(value=f"N{c.item}")
              if c.source == "good3" and cast(int, c.item) % 4 == 0 else c
              for c in claims]
    model = estimate_trust(claims, tolerance_minutes=0, max_iter=50)
    assert model.converged and model.iterations < 50
    assert all(model.truths[(item, FIELD)] == f"A{item}" for item in range(40))
    trust = {s: model.trust[s][FIELD] for s in ("good1", "good3", "noisy")}
    assert trust["good1"] > trust["good3"] > trust["noisy"]
    assert model.to_json()["sources"]["good1"][FIELD]["claims"] == 40


def test_seed_from_other_fields_lets_the_reliable_camp_win_a_split_field() -> None:
    """Two camps define one field differently (the smaller camp agrees with everyone's truth
    elsewhere, the bigger one is wrong on every other field in its own way). The plain start
    settles in the bigger camp; re-estimating from ``cross_field_seed`` picks the other."""
    split, other = "actual_departure", "actual_arrival"
    small, big = ["g1", "g2", "g3"], ["r1", "r2", "r3", "r4"]
    claims = []
    for item in range(60):
        claims += [Claim(item, split, s, f"G{item}") for s in small]
        claims += [Claim(item, split, s, f"R{item}") for s in big]
        claims += [Claim(item, other, s, f"T{item}") for s in small]
        claims += [Claim(item, other, s, f"{s}{item}") for s in big]
    plain = estimate_trust(claims, tolerance_minutes=0, detect_copies=False)
    assert plain.truths[(0, split)] == "R0"
    seed = cross_field_seed(plain.trust)
    assert seed["g1"][split] == plain.trust["g1"][other]
    seeded = estimate_trust(claims, tolerance_minutes=0, detect_copies=False, initial=seed)
    assert all(seeded.truths[(item, split)] == f"G{item}" for item in range(60))
    assert seeded.trust["g1"][split] > seeded.trust["r1"][split]


def test_by_field_passes_keep_two_split_fields_in_the_same_camp() -> None:
    """Two camps split two fields: the bigger camp wins departure by count, the smaller one
    (plus a source only it agrees with) wins arrival, where the big camp departs from it on
    odd items only. Seeding every field at once fixes departure but swaps the odd arrivals
    to the big camp; the by-field passes settle departure first (it changed most) and then
    arrival follows the sources' record: both fields end in the small camp's answers."""
    dep, arr, sched = "actual_departure", "actual_arrival", "scheduled_departure"
    small, big, lone = ["g1", "g2", "g3"], ["r1", "r2", "r3", "r4"], "h1"
    claims = []
    for item in range(60):
        claims += [Claim(item, sched, s, f"S{item}") for s in [*small, *big, lone]]
        claims += [Claim(item, dep, s, f"G{item}") for s in small]
        claims += [Claim(item, dep, s, f"R{item}") for s in big]
        claims += [Claim(item, arr, s, f"T{item}") for s in [*small, lone]]
        claims += [Claim(item, arr, s, f"L{item}" if item % 2 else f"T{item}") for s in big[:3]]
        claims.append(Claim(item, arr, big[3], f"own{item}"))
    plain, seeded, final = trust_passes(claims, tolerance_minutes=0, detect_copies=False)
    assert plain.truths[(0, dep)] == "R0" and plain.truths[(1, arr)] == "T1"
    assert seeded.truths[(0, dep)] == "G0" and seeded.truths[(1, arr)] == "L1"
    assert all(final.truths[(item, dep)] == f"G{item}" for item in range(60))
    assert all(final.truths[(item, arr)] == f"T{item}" for item in range(60))
    assert final.trust["g1"][arr] > final.trust["r1"][arr]
    stored = estimate_trust_by_field(claims, tolerance_minutes=0, detect_copies=False)
    assert stored.trust == final.trust


def test_by_field_passes_stop_after_one_when_seeding_changes_nothing() -> None:
    """Sources that agree on every field have one answer: the seeded pass changes no chosen
    value, so the plain estimate is the answer and no third pass runs."""
    claims = _history(30, ["a", "b", "c"], {})
    claims += [Claim(item, "departure_gate", s, f"D{item}") for item in range(30)
               for s in ("a", "b", "c")]
    passes = trust_passes(claims, tolerance_minutes=0)
    assert len(passes) == 1
    assert passes[0].truths[(5, FIELD)] == "A5"
