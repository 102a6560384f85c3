"""Learned source accuracy in the product (issue 9): `flightsync sources [--recompute]`, the
recompute after `batch`, the `accuracy` rule fed with the stored trust, and `explain` naming
the figures behind an accuracy-based choice.

Histories are seeded through the real CLI against the sandbox, whose scenario makes chosen
providers report a wrong departure gate on chosen flights.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from flightsync.cli import _status
from flightsync.engine._sources import uses_accuracy
from flightsync.policy import Policy
from flightsync.sandbox import Override, SandboxConfig
from flightsync.sandbox._truth import flight_truth
from flightsync.store import Database
from flightsync.store import repository as repo
from tests._sandbox_cli import SandboxCli, batch_csv, only_providers, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)   # the morning before: statuses stay put
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
GATE = "departure_gate"
WRONG = "Z99"      # no real gate: the sandbox's gates are a letter and 1..60
# The providers whose gate votes these tests count; later adapters stay out.
VOTERS = only_providers("amadeus", "lufthansa", "flightaware")
ACCURACY_POLICY = {
    "mode": "automatic",
    # The trustworthy provider comes last, so neither priority nor a vote would pick it.
    "priority": ["amadeus", "flightaware", "lufthansa"],
    "operating_carrier_first": False,
    "fields": {GATE: "accuracy"},
}
# The three sources of the vote these tests count (others that cover LH are left unconfigured).
LH_SOURCES = ("amadeus", "lufthansa", "flightaware")


def _wrong(provider: str, flights: list[str], gate: str) -> tuple[Override, ...]:
    return tuple(Override(fields={GATE: gate}, provider=provider, flight=f) for f in flights)


def _sync_all(cli: SandboxCli, flights: list[str], config: Path | None = None) -> None:
    for flight in flights:
        result = cli.sync(flight, DAY, config=config)
        assert result.exit_code == 0, result.stderr


def _gate_accuracy(data: dict[str, Any]) -> dict[str, float]:
    return {source: fields[GATE]["accuracy"] for source, fields in data["sources"].items()
            if GATE in fields}


def _true_gate(flight: str) -> str:
    return flight_truth("LH", int(flight[2:]), date.fromisoformat(DAY)).legs[0].departure_gate


def _legs(cli: SandboxCli) -> int:
    return int(cli.rows("SELECT count(*) AS n FROM flight")[0]["n"])


def _execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def _store_gate_scores(url: str, accuracy: dict[str, float]) -> None:
    """Departure-gate scores as a recompute would store them."""
    database = Database.open(url)
    try:
        with database.session() as session:
            repo.replace_source_scores(session, [
                {"source": source, "field": GATE, "accuracy": value, "coverage": 1.0,
                 "observations": 50} for source, value in accuracy.items()], now=NOW)
    finally:
        database.close()


def test_recompute_lowers_a_provider_persistently_wrong_on_a_field(
        state_dir: Path, pg_url: str) -> None:
    """FlightAware reporting a wrong gate on every flight ends with a lower departure-gate
    accuracy than the providers that agree on the real gate, and than its own accuracy on a
    field it gets right. `--recompute` learns this from the stored observations alone (the
    scores are dropped first), each figure resting on one observation per leg, and stores the
    figures, so a plain `sources` shows them again."""
    flights = [f"LH{n}" for n in range(400, 408)]
    config = SandboxConfig(now=NOW, overrides=(Override(fields={GATE: WRONG},
                                                        provider="flightaware"),))
    with sandbox_cli(state_dir, config, database_url=pg_url, extra_env=VOTERS) as cli:
        assert cli.run("migrate").exit_code == 0
        seeded = cli.run("batch", "-", stdin=batch_csv([(f, DAY) for f in flights]))
        assert seeded.exit_code == 0, seeded.stderr
        _execute(pg_url, "DELETE FROM source_score")
        assert cli.run("sources", "--json").data["sources"] == {}

        result = cli.run("sources", "--recompute", "--json")

        assert result.exit_code == 0, result.stderr
        gate = _gate_accuracy(result.data)
        # The three voters report LH's gates; every other provider is switched off.
        assert set(gate) == {"amadeus", "lufthansa", "flightaware"}
        assert gate["flightaware"] < min(gate["amadeus"], gate["lufthansa"])
        flightaware = result.data["sources"]["flightaware"]
        assert gate["flightaware"] < flightaware["scheduled_departure"]["accuracy"]
        assert flightaware[GATE]["observations"] == _legs(cli)
        assert flightaware[GATE]["coverage"] == 1.0
        assert result.data["history"]["legs"] == _legs(cli)
        again = cli.run("sources", "--json")
        assert again.data["sources"] == result.data["sources"]
        assert again.data["computed_at"] == result.data["computed_at"] is not None


def test_batch_recomputes_after_the_run(state_dir: Path) -> None:
    """A `batch` run leaves fresh scores behind: `sources` (without --recompute) shows the
    wrong provider's lower gate accuracy right after it; single syncs do not recompute."""
    flights = [f"LH{n}" for n in range(420, 425)]
    config = SandboxConfig(now=NOW, overrides=_wrong("flightaware", flights, WRONG))
    with sandbox_cli(state_dir, config) as cli:
        assert cli.sync("LH419", DAY).exit_code == 0
        assert cli.run("sources", "--json").data["computed_at"] is None
        batch = cli.run("batch", "-", stdin=batch_csv([(f, DAY) for f in flights]))
        assert batch.exit_code == 0, batch.stderr

        result = cli.run("sources", "--json")

        assert result.data["computed_at"] is not None
        gate = _gate_accuracy(result.data)
        assert gate["flightaware"] < min(gate["amadeus"], gate["lufthansa"])

        # Within the hour a second batch leaves the figures alone (relearning reads the
        # whole history; the 15-minute cron must not pay for it every run).
        again = cli.run("batch", "-", stdin=batch_csv([("LH430", DAY)]))  # a new flight
        assert again.exit_code == 0, again.stderr
        assert cli.run("sources", "--json").data["computed_at"] == result.data["computed_at"]


def test_accuracy_policy_picks_the_trusted_provider_when_outvoted(state_dir: Path) -> None:
    """With the gate decided by `accuracy`, a flight where Amadeus and FlightAware report the
    same wrong gate and Lufthansa the real one stores the wrong gate at a cold start (no
    scores: equal trust, two votes beat one) but Lufthansa's gate once the stored scores
    trust Lufthansa's gates far more; `explain` names the stored figures behind the choice."""
    cold, learned = "LH450", "LH451"
    config = SandboxConfig(now=NOW, overrides=(*_wrong("amadeus", [cold, learned], WRONG),
                                               *_wrong("flightaware", [cold, learned], WRONG)))
    trust = {"lufthansa": 0.97, "amadeus": 0.55, "flightaware": 0.6}
    with sandbox_cli(state_dir, config, extra_env=VOTERS) as cli:
        policy = cli.write_config("accuracy", {}, ACCURACY_POLICY)
        first = cli.sync(cold, DAY, config=policy)
        assert first.exit_code == 0, first.stderr
        assert first.data["flight"][GATE] == WRONG
        _store_gate_scores(cli.database_url, trust)

        result = cli.sync(learned, DAY, config=policy)

        assert result.exit_code == 0, result.stderr
        assert result.data["flight"][GATE] == _true_gate(learned)
        conflict = next(c for c in result.data["conflicts"] if c["field"] == GATE)
        assert conflict["rule"] == "accuracy"
        assert conflict["values"] == {"amadeus": WRONG, "flightaware": WRONG,
                                      "lufthansa": _true_gate(learned)}
        explained = cli.run("explain", learned, "--date", DAY, "--json", config=policy).data
        field = next(f for f in explained["legs"][0]["fields"] if f["field"] == GATE)
        assert (field["rule"], field["source"]) == ("accuracy", "lufthansa")
        assert field["trust"] == trust


def test_cold_start_shows_no_scores_and_recomputes_an_empty_history(state_dir: Path) -> None:
    """On a database without history, `sources` lists no scores and names the prior every
    provider starts from, and `--recompute` succeeds with nothing learned."""
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as cli:
        shown = cli.run("sources", "--json")
        computed = cli.run("sources", "--recompute", "--json")

    assert shown.exit_code == 0, shown.stderr
    assert shown.data == {"recomputed": False, "computed_at": None, "prior": 0.8,
                          "sources": {}}
    assert computed.exit_code == 0, computed.stderr
    assert computed.data["sources"] == {}
    assert (computed.data["history"]["legs"], computed.data["history"]["claims"]) == (0, 0)


def _keys(value: Any) -> set[str]:
    """Every key of a JSON document except those naming a provider or a field."""
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value)) if value else set()
    if not isinstance(value, dict):
        return set()
    keys: set[str] = set()
    for key, inner in value.items():
        keys.add(key)
        if key == "sources" and isinstance(inner, dict):
            keys |= _keys([figures for fields in inner.values() for figures in fields.values()])
        else:
            keys |= _keys(inner)
    return keys


def test_sources_json_keys_are_documented_in_the_readme(state_dir: Path) -> None:
    """Every key `sources --recompute --json` prints (scores, history, suspected copies) is
    named in the README's JSON section for `sources`."""
    flights = ["LH460", "LH461"]
    # Two providers sharing the same wrong gate on both flights: a suspected copy.
    config = SandboxConfig(now=NOW, overrides=(*_wrong("flightaware", flights, WRONG),
                                               *_wrong("amadeus", flights, WRONG)))
    with sandbox_cli(state_dir, config) as cli:
        _sync_all(cli, flights)
        data = cli.run("sources", "--recompute", "--json").data

    documented = next(line for line in re.split(r"\n- ", README) if line.startswith("`sources`"))
    keys = _keys(data)
    assert {"accuracy", "coverage", "observations", "history"} <= keys
    assert sorted(k for k in keys if f"`{k}`" not in documented) == []


def test_terminal_table_lists_each_score_and_the_prior() -> None:
    """At a terminal `sources` draws one row per provider and field and names the prior."""
    data = {"recomputed": False, "computed_at": "2026-02-25T05:00:00Z", "prior": 0.8,
            "sources": {"flightaware": {GATE: {"accuracy": 0.4321, "coverage": 1.0,
                                               "observations": 8}}}}
    out = io.StringIO()
    _status._sources_table(Console(file=out, width=200), data)
    text = out.getvalue()
    assert re.search(r"flightaware\s*│\s*departure_gate\s*│\s*0\.4321\s*│\s*1\.0\s*│\s*8", text)
    assert "prior accuracy 0.8" in text


def test_trust_is_read_only_for_policies_that_use_the_accuracy_rule() -> None:
    """The engine reads the stored scores only when some field can be decided by `accuracy`
    (the shipped policy's scheduled times), not in priority or manual mode
    where no field rule applies, nor when no field has the rule."""
    assert uses_accuracy(Policy())
    assert not uses_accuracy(Policy(fields={GATE: "most_recent"}))
    assert uses_accuracy(Policy(fields={GATE: "accuracy"}))
    assert uses_accuracy(Policy(fields={}, default_rule="accuracy"))
    assert not uses_accuracy(Policy(mode="priority", fields={GATE: "accuracy"}))
    assert not uses_accuracy(Policy(mode="manual", fields={GATE: "accuracy"}))
