"""Learned trust on days it has not seen (issue 18): the cases that made the old estimator lose.

Each test builds a small claim set that reproduces one failure mode found on the flight data
(benchmarks/fusion/README.md) and checks that the estimate, stored as the engine stores it and
read back, resolves the held-out values to the truth.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flightsync.engine._sources import dependence_from, dependence_rows, score_rows, trust_from
from flightsync.policy import Policy, resolve_leg
from flightsync.policy.accuracy import (
    REJECTED,
    Claim,
    TrustModel,
    estimate_trust,
    estimate_trust_by_field,
    trust_passes,
)

DEP, GATE, SCHED = "actual_departure", "departure_gate", "scheduled_departure"
T0 = datetime(2011, 12, 1, 6, 0, tzinfo=UTC)


def at(flight: int, late: int = 0) -> datetime:
    """Flight ``flight``'s departure time (37 minutes after the one before), ``late`` on."""
    return T0 + timedelta(minutes=flight * 37 + late)


def _stored(model: TrustModel, claims: Sequence[Claim]) -> dict[str, Any]:
    """The figures as the engine reads them back after ``sources --recompute``."""
    return {"trust": trust_from(score_rows(model, claims)),
            "dependence": dependence_from(dependence_rows(model))}


def _policy(rule: str, order: Sequence[str] = ()) -> Policy:
    return Policy(mode="automatic", priority=tuple(order), operating_carrier_first=False,
                  time_tolerance_minutes=0, fields=dict.fromkeys((DEP, GATE, SCHED), rule),
                  escalate=frozenset())


def _definition_split(items: int = 200) -> list[Claim]:
    """``a`` and ``b`` report another event as the actual departure (the runway time, the
    same for both) where three independent sources report the gate time (the truth); on the
    gate field ``a`` and ``b`` are independent (each misses on its own tenth of the items),
    and ``f1``/``f2`` copy each other outright, mistakes included (one item in five)."""
    claims = []
    for item in range(items):
        claims += [Claim(item, DEP, s, at(item)) for s in ("c", "d", "e")]
        claims += [Claim(item, DEP, s, at(item, 12)) for s in ("a", "b")]
        claims += [Claim(item, GATE, s, f"{s}-miss{item}" if item % 10 == miss else f"T{item}")
                   for s, miss in (("a", 1), ("b", 2))]
        family = f"W{item}" if item % 5 == 0 else f"T{item}"
        claims += [Claim(item, GATE, s, family) for s in ("f1", "f2")]
    return claims


def test_sources_sharing_one_fields_definition_are_not_copiers() -> None:
    """Two independent sources that define the actual departure alike share hundreds of
    "mistakes" there; the old estimator summed that field into the pair's evidence and
    merged their votes on every field. Copying shows on every field, so now only the outright
    copiers are dependent, and on the gate ``a`` and ``b`` agreeing outvote the copier pair."""
    claims = _definition_split()
    model = estimate_trust_by_field(claims, tolerance_minutes=0)
    assert model.dependence.get("a", {}).get("b", 0.0) < 0.5
    assert model.dependence["f1"]["f2"] > 0.9
    stored = _stored(model, claims)
    held_out = {"a": {GATE: "X9"}, "b": {GATE: "X9"}, "f1": {GATE: "Y9"}, "f2": {GATE: "Y9"}}
    chosen = resolve_leg(_policy("accuracy"), held_out, None, updated_at={}, ranks={},
                         **stored).values
    assert chosen[GATE] == "X9"


def test_copying_is_judged_on_every_field_a_pair_shares() -> None:
    """One pass, no seeding: the old estimate summed the evidence of every field, so the
    actual departure's shared "mistakes" made ``a`` and ``b`` copiers although their gates
    differ on a fifth of the items; judged by their least dependent field they are
    independent, and the outright copiers still are not."""
    model = estimate_trust(_definition_split(), tolerance_minutes=0)
    assert model.dependence.get("a", {}).get("b", 0.0) < 0.5
    assert model.dependence["f1"]["f2"] > 0.9


def test_the_seed_from_other_fields_only_decides_a_field_it_turns_over() -> None:
    """``a`` and ``b``'s mean on their other fields is their actual departure, where they
    report another event: seeded from it their gates start near zero and the copier pair
    takes a fifth of the gate answers. No field changed on more than half its items, so no
    field is split between camps: the plain estimate is the answer (the old passes kept the
    seeded gates)."""
    passes = trust_passes(_definition_split(), tolerance_minutes=0)
    assert len(passes) == 1
    final = passes[-1]
    assert all(final.truths[(item, GATE)] == f"T{item}" for item in range(200))


def _camps(days: Sequence[int], flights: int = 40) -> list[Claim]:
    """Per day and flight: a small camp (three independent sources, each wrong on the gate
    in its own way on a tenth of the items) and a bigger one (four, each wrong on the gate in
    its own way on a third of the items) that reports another event as the actual departure,
    the same for all four."""
    small, big = ("g1", "g2", "g3"), ("r1", "r2", "r3", "r4")
    claims = []
    for day in days:
        for flight in range(flights):
            item: Hashable = (day, flight)
            claims += [Claim(item, SCHED, s, at(flight, -5)) for s in (*small, *big)]
            claims += [Claim(item, DEP, s, at(flight)) for s in small]
            claims += [Claim(item, DEP, s, at(flight, 12)) for s in big]
            claims += [Claim(item, GATE, s, f"{s}{flight}" if (flight + index) % 10 == 0
                             else f"T{flight}") for index, s in enumerate(small)]
            claims += [Claim(item, GATE, s, f"{s}{flight}" if (flight + index) % 3 == 0
                             else f"T{flight}") for index, s in enumerate(big)]
    return claims


def test_the_reliable_camp_wins_a_split_field_with_copy_detection_on() -> None:
    """The bigger camp wins the split field by count on a plain start; the small camp shares
    those "false" values but is independent on the gates, so it is not taken for a family of
    copiers, the seeded pass turns the field over to it, and the stored trust sends a held-out
    day's split field to it where majority takes the bigger camp's."""
    learning = _camps(days=(1, 2, 3))
    model = estimate_trust_by_field(learning, tolerance_minutes=0)
    assert all(model.dependence.get("g1", {}).get(other, 0.0) < 0.5 for other in ("g2", "g3"))
    assert model.trust["g1"][DEP] > model.trust["r1"][DEP]
    stored = _stored(model, learning)
    held_out: dict[str, dict[str, Any]] = {s: {DEP: at(7)} for s in ("g1", "g2", "g3")}
    held_out |= {s: {DEP: at(7, 12)} for s in ("r1", "r2", "r3", "r4")}
    chosen = resolve_leg(_policy("accuracy"), held_out, None, updated_at={}, ranks={},
                         **stored).values
    assert chosen[DEP] == at(7)
    majority = resolve_leg(_policy("majority"), held_out, None, updated_at={}, ranks={}).values
    assert majority[DEP] == at(7, 12)


def test_learned_trust_beats_every_fixed_order_on_a_held_out_day() -> None:
    """Each source is the one to believe on one field only (``t`` on times, ``g`` on gates,
    each wrong on every other flight on the other field), a copier pair is wrong on both on
    every third flight and ``s`` on its own every fifth. Learned on three days, the stored
    trust resolves a fourth day right on both fields, where majority and every fixed order
    of the five sources get at least one field wrong."""
    claims = []
    for day in (1, 2, 3):
        for flight in range(50):
            item = (day, flight)
            wrong, copied = flight % 2 == 0, flight % 3 == 0
            claims += [Claim(item, DEP, "t", at(flight)),
                       Claim(item, DEP, "g", at(flight, 5 if wrong else 0)),
                       Claim(item, GATE, "g", f"G{flight}"),
                       Claim(item, GATE, "t", f"G{flight}t" if wrong else f"G{flight}")]
            own = flight % 5 == 1
            claims += [Claim(item, DEP, "s", at(flight, 3 if own else 0)),
                       Claim(item, GATE, "s", f"G{flight}s" if own else f"G{flight}")]
            for copier in ("c1", "c2"):
                claims += [Claim(item, DEP, copier, at(flight, 9 if copied else 0)),
                           Claim(item, GATE, copier, f"G{flight}c" if copied else f"G{flight}")]
    stored = _stored(estimate_trust_by_field(claims, tolerance_minutes=0), claims)
    held_out = {"t": {DEP: at(1), GATE: "G1t"}, "g": {DEP: at(1, 5), GATE: "G1"},
                "c1": {DEP: at(1, 9), GATE: "G1c"}, "c2": {DEP: at(1, 9), GATE: "G1c"},
                "s": {DEP: at(1, 3), GATE: "G1s"}}
    truth = {DEP: at(1), GATE: "G1"}
    chosen = resolve_leg(_policy("accuracy"), held_out, None, updated_at={}, ranks={},
                         **stored).values
    assert {name: chosen[name] for name in truth} == truth
    assert resolve_leg(_policy("majority"), held_out, None, updated_at={}, ranks={}).values \
        != truth
    for first in held_out:
        order = [first, *(s for s in held_out if s != first)]
        fixed = resolve_leg(_policy("priority", order), held_out, None, updated_at={},
                            ranks={}).values
        assert {name: fixed[name] for name in truth} != truth


def test_any_provider_name_gets_learned_trust_and_its_rejections_count() -> None:
    """Nothing in the estimate names providers: new adapters (aerodatabox, cirium,
    aviationstack) get figures like any other, and a value the plausibility checks rejected
    counts as that provider's mistake."""
    claims = []
    for item in range(30):
        claims += [Claim(item, DEP, s, at(item)) for s in ("aerodatabox", "cirium")]
        claims.append(Claim(item, DEP, "aviationstack", REJECTED if item % 3 == 0 else at(item)))
    model = estimate_trust_by_field(claims, tolerance_minutes=0)
    assert set(model.trust) == {"aerodatabox", "cirium", "aviationstack"}
    assert model.coverage["aviationstack"][DEP] == 30
    assert model.trust["aviationstack"][DEP] < model.trust["cirium"][DEP] - 0.2
