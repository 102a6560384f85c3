"""Detected copying in the product (issue 9): `sources --recompute` stores which providers copy
each other beside the scores, the engine reads it back with the trust, and the `accuracy`
rule counts a family of copiers once between them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flightsync.engine._sources import load_learned, recompute
from flightsync.models import OBSERVED_FIELDS, FlightQuery
from flightsync.policy import Policy, resolve_leg
from flightsync.policy.accuracy import Claim, estimate_trust_by_field
from flightsync.sandbox import Override, SandboxConfig
from flightsync.store import Database, migrate
from flightsync.store import repository as repo
from flightsync.store.repository import LegWrite
from tests._sandbox_cli import only_providers, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
GATE = "departure_gate"
WRONG = "Z99"      # no real gate: the sandbox's gates are a letter and 1..60
COPIERS = ("copier1", "copier2", "copier3")
ACCURACY_POLICY = {
    "mode": "automatic",
    "priority": ["amadeus", "flightaware", "lufthansa"],
    "operating_carrier_first": False,
    "fields": {GATE: "accuracy"},
}


def _history(items: int = 200, seed: int = 7) -> list[Claim]:
    """Gates of ``items`` legs: ``good`` right 95 % of the time on its own; three copiers
    repeating one 70 %-accurate feed, mistakes included; three independent mediocre sources."""
    rnd = random.Random(seed)
    claims: list[Claim] = []
    for item in range(items):
        truth = f"A{item}"

        def said(accuracy: float, truth: str = truth) -> str:
            return truth if rnd.random() < accuracy else f"W{rnd.randrange(1000)}"

        claims.append(Claim(item, GATE, "good", said(0.95)))
        family = said(0.7)
        claims.extend(Claim(item, GATE, copier, family) for copier in COPIERS)
        claims.extend(Claim(item, GATE, source, said(0.6)) for source in ("m1", "m2", "m3"))
    return claims


def test_a_copier_family_outvoting_an_accurate_source_loses_once_dependence_is_known() -> None:
    """Three sources copying one feed outvote a more accurate independent source on accuracy
    alone (three votes against one); with the dependence learned from the same history,
    passed to resolve_leg, they count about once and the accurate source's gate wins."""
    model = estimate_trust_by_field(_history(), tolerance_minutes=0)
    policy = Policy(fields={GATE: "accuracy"}, operating_carrier_first=False)
    observed = {"good": {GATE: "B7"}, **{copier: {GATE: WRONG} for copier in COPIERS}}
    assert model.trust["good"][GATE] > model.trust["copier1"][GATE]
    assert {pair.sources for pair in model.copies} >= {("copier1", "copier2"),
                                                        ("copier2", "copier3")}

    trust_only = resolve_leg(policy, observed, None, updated_at={}, ranks={},
                             trust=model.trust)
    with_copies = resolve_leg(policy, observed, None, updated_at={}, ranks={},
                              trust=model.trust, dependence=model.dependence)

    assert trust_only.values[GATE] == WRONG
    assert with_copies.values[GATE] == "B7"
    assert with_copies.decisions[GATE].source == "good"
    assert with_copies.decisions[GATE].rule == "accuracy"


def _store_history(database: Database, claims: list[Claim]) -> None:
    """Each item of ``claims`` as one stored leg with every source's observation of it."""
    by_item: dict[Any, dict[str, Any]] = {}
    for claim in claims:
        by_item.setdefault(claim.item, {})[claim.source] = claim.value
    with database.session() as session:
        for item, by_source in by_item.items():
            values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
            values[GATE] = by_source["good"]
            leg = LegWrite(leg_index=0, origin="FRA", values=values, decisions={},
                           observations={source: ({GATE: value}, None, "")
                                         for source, value in by_source.items()})
            repo.write_flight(session, FlightQuery("LH", 1000 + int(item), NOW.date()), [leg],
                              [], run_id="history", now=NOW, sync_status="synced",
                              next_due=NOW, tracked=True, source_of_truth=None)


def test_recompute_stores_the_detected_copies_and_the_engine_reads_them(tmp_path: Path) -> None:
    """Recomputing from stored observations stores, beside the scores and in the same
    estimate (same computed_at), one row per dependent pair: the copier family's pairs near
    certain, the independent accurate source in no pair with them, each reported copy with its
    figure. Reading the rows back gives the symmetric mapping the engine passes to the
    accuracy rule, with which the family's shared gate loses to the accurate source's; a
    second recompute replaces the rows instead of adding to them."""
    url = f"sqlite:///{tmp_path / 'flightsync.db'}"
    migrate.upgrade(url)
    database = Database.open(url)
    policy = Policy(fields={GATE: "accuracy"}, operating_carrier_first=False)
    try:
        _store_history(database, _history(items=120))
        recompute(database, policy, now=NOW)
        result = recompute(database, policy, now=NOW)
        with database.session() as session:
            rows = repo.source_dependence(session)
            scores = repo.source_scores(session)
            trust, dependence = load_learned(session)
    finally:
        database.close()

    stored = {(row["source"], row["other"]): row["dependence"] for row in rows}
    assert len(stored) == len(rows)
    assert all(a < b for a, b in stored)
    family = {("copier1", "copier2"), ("copier1", "copier3"), ("copier2", "copier3")}
    assert all(stored[pair] > 0.99 for pair in family)
    assert not any("good" in pair and set(pair) & set(COPIERS) for pair in stored)
    for pair in result["history"]["copies"]:
        assert round(stored[tuple(pair["sources"])], 4) == pair["dependence"]
    assert {row["computed_at"] for row in rows} == {row["computed_at"] for row in scores}
    assert trust is not None and dependence is not None
    for (a, b), probability in stored.items():
        assert dependence[a][b] == dependence[b][a] == probability
    assert sum(len(others) for others in dependence.values()) == 2 * len(stored)
    observed = {"good": {GATE: "B7"}, **{copier: {GATE: WRONG} for copier in COPIERS}}
    chosen = resolve_leg(policy, observed, None, updated_at={}, ranks={}, trust=trust,
                         dependence=dependence)
    assert chosen.values[GATE] == "B7"


def test_sync_resolves_with_the_stored_dependence(state_dir: Path) -> None:
    """With the same stored gate scores, two providers reporting the same wrong gate outvote
    Lufthansa while nothing says they are dependent, and lose to it once a recompute has
    stored them as copies of each other: each sync's engine reads the stored dependence."""
    outvoted, corrected = "LH470", "LH471"
    config = SandboxConfig(now=NOW, overrides=tuple(
        Override(fields={GATE: WRONG}, provider=provider, flight=flight)
        for provider in ("amadeus", "flightaware") for flight in (outvoted, corrected)))
    scores = {"lufthansa": 0.95, "amadeus": 0.85, "flightaware": 0.85}
    with sandbox_cli(state_dir, config,
                     extra_env=only_providers("amadeus", "lufthansa", "flightaware")) as cli:
        policy = cli.write_config("accuracy", {}, ACCURACY_POLICY)
        assert cli.run("migrate").exit_code == 0
        database = Database.open(cli.database_url)
        try:
            with database.session() as session:
                repo.replace_source_scores(session, [
                    {"source": source, "field": GATE, "accuracy": value, "coverage": 1.0,
                     "observations": 50} for source, value in scores.items()], now=NOW)
            first = cli.sync(outvoted, DAY, config=policy)
            with database.session() as session:
                repo.replace_source_dependence(session, [
                    {"source": "amadeus", "other": "flightaware", "dependence": 0.99}], now=NOW)
            second = cli.sync(corrected, DAY, config=policy)
        finally:
            database.close()

    assert first.exit_code == 0 and second.exit_code == 0, (first.stderr, second.stderr)
    assert first.data["flight"][GATE] == WRONG
    assert second.data["flight"][GATE] not in (WRONG, None)
    conflict = next(c for c in second.data["conflicts"] if c["field"] == GATE)
    assert conflict["rule"] == "accuracy"
    assert conflict["values"]["lufthansa"] == second.data["flight"][GATE]


def test_estimate_pools_times_within_the_tolerance() -> None:
    """A source always two minutes off the others' times is as accurate as they are once the
    tolerance covers two minutes, and among the least accurate without it; one giving far-off
    times stays the least accurate either way."""
    start = datetime(2026, 2, 25, 8, 0, tzinfo=UTC)
    rnd = random.Random(3)
    claims: list[Claim] = []
    for item in range(60):
        truth = start + timedelta(minutes=7 * item)
        claims.extend(Claim(item, "actual_arrival", source, truth) for source in ("a", "b"))
        claims.append(Claim(item, "actual_arrival", "late", truth + timedelta(minutes=2)))
        claims.append(Claim(item, "actual_arrival", "far",
                            truth + timedelta(minutes=rnd.randrange(30, 300))))

    tolerant = estimate_trust_by_field(claims, tolerance_minutes=3).trust
    exact = estimate_trust_by_field(claims, tolerance_minutes=0).trust

    def accuracy(trust: Any, source: str) -> float:
        return float(trust[source]["actual_arrival"])

    assert accuracy(tolerant, "late") == pytest.approx(accuracy(tolerant, "a"))
    assert accuracy(exact, "late") < accuracy(exact, "a") - 0.3
    assert accuracy(tolerant, "far") < accuracy(tolerant, "late") - 0.3


def test_estimate_does_not_depend_on_the_order_of_the_claims() -> None:
    """Shuffling the claims changes no learned accuracy, dependence or chosen value."""
    claims = _history(items=80)
    shuffled = claims[:]
    random.Random(5).shuffle(shuffled)

    first = estimate_trust_by_field(claims, tolerance_minutes=0)
    second = estimate_trust_by_field(shuffled, tolerance_minutes=0)

    assert second.trust.keys() == first.trust.keys()
    for source, fields in first.trust.items():
        assert second.trust[source][GATE] == pytest.approx(fields[GATE], abs=1e-12)
    assert {pair.sources for pair in second.copies} == {pair.sources for pair in first.copies}
    assert second.truths == first.truths
