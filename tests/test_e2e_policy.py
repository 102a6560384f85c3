"""Disagreements between providers, end to end (docs/CONTRACTS.md §8): a sandbox override makes
one provider report a different gate, delay or cancellation, and the policy file given to the
real CLI decides; manual mode hands the field to an operator through `conflicts`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flightsync.models import PROVIDER_NAMES
from flightsync.sandbox import SandboxConfig
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import SandboxCli, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)  # before LH400 departs: nothing moves
TRUTH = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0]
# Two providers that describe LH400 identically, so the only disagreement is the one we make.
PAIR = ("--source", "lufthansa", "--source", "amadeus")


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def override(cli: SandboxCli, provider: str, **fields: Any) -> None:
    cli.scenario(overrides=[{"provider": provider, "flight": "LH400", "fields": fields}])


def conflict_on(data: dict[str, Any], field: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in data["conflicts"] if c["field"] == field]
    assert len(found) == 1, data["conflicts"]
    return found[0]


def policy_config(cli: SandboxCli, name: str, **policy: Any) -> Path:
    return cli.write_config(name, {}, policy)


def test_priority_mode_takes_the_best_ranked_provider(cli: SandboxCli) -> None:
    """mode: priority stores the value of the provider first in the policy's list, whichever
    it is, and records the disagreement with rule priority."""
    override(cli, "flightaware", departure_gate="Z99")
    others = [n for n in PROVIDER_NAMES if n != "flightaware"]
    fa_first = policy_config(cli, "fa_first", mode="priority", operating_carrier_first=False,
                             priority=["flightaware", *others])
    lh_first = policy_config(cli, "lh_first", mode="priority", operating_carrier_first=False,
                             priority=["lufthansa", "flightaware", "amadeus"])

    first = cli.sync("LH400", DAY, config=fa_first)

    assert first.exit_code == 0, first.stderr
    assert first.data["flight"]["departure_gate"] == "Z99"
    gate = conflict_on(first.data, "departure_gate")
    assert gate["rule"] == "priority" and gate["chosen"] == "Z99"
    assert gate["values"]["flightaware"] == "Z99"
    assert gate["values"]["lufthansa"] == TRUTH.departure_gate
    assert first.data["sync_status"] == "synced"

    second = cli.sync("LH400", DAY, "--force", config=lh_first)

    assert second.data["flight"]["departure_gate"] == TRUTH.departure_gate
    assert second.data["flight"]["version"] == first.data["flight"]["version"] + 1
    [audit] = cli.rows("SELECT source, rule, new FROM flight_change WHERE field = "
                       "'departure_gate' ORDER BY id DESC LIMIT 1")
    assert audit == {"source": "lufthansa", "rule": "priority",
                     "new": f'"{TRUTH.departure_gate}"'}


def test_automatic_most_severe_picks_cancelled(cli: SandboxCli) -> None:
    """Automatic mode with status: most_severe (not escalated) stores `cancelled` when one
    provider reports the flight cancelled and the others do not."""
    config = policy_config(cli, "severe", mode="automatic", escalate=[],
                           fields={"status": "most_severe"})
    override(cli, "flightaware", cancelled=True)

    result = cli.sync("LH400", DAY, config=config)

    assert result.exit_code == 0, result.stderr
    assert result.data["flight"]["status"] == "cancelled"
    status = conflict_on(result.data, "status")
    assert status["rule"] == "most_severe" and status["chosen"] == "cancelled"
    assert status["values"]["flightaware"] == "cancelled"
    assert {v for s, v in status["values"].items() if s != "flightaware"} - {"cancelled"}
    assert result.data["sync_status"] == "synced"
    assert cli.count("conflict") == 0


def test_automatic_escalated_cancellation_opens_a_conflict(cli: SandboxCli) -> None:
    """The default policy escalates status: a cancellation reported by one provider opens a
    conflict row and the sync reports `conflict` (exit 0)."""
    override(cli, "flightaware", cancelled=True)

    result = cli.sync("LH400", DAY)

    assert result.exit_code == 0
    assert result.data["sync_status"] == "conflict"
    assert conflict_on(result.data, "status")["escalated"] is True
    [row] = cli.rows("SELECT field, status FROM conflict")
    assert row == {"field": "status", "status": "open"}


def test_automatic_times_take_earliest_departure_and_latest_arrival(cli: SandboxCli) -> None:
    """The default (automatic) policy: estimated_departure earliest, estimated_arrival latest,
    when one provider reports a 45-minute delay the others do not."""
    override(cli, "flightaware", departure_delay_minutes=TRUTH.departure_delay_minutes + 45,
             arrival_delay_minutes=TRUTH.arrival_delay_minutes + 45)

    result = cli.sync("LH400", DAY)

    assert result.exit_code == 0, result.stderr
    flight = result.data["flight"]
    late_arrival = TRUTH.estimated_arrival + timedelta(minutes=45)
    assert flight["estimated_departure"] == utc(TRUTH.estimated_departure)
    assert flight["estimated_arrival"] == utc(late_arrival)
    departure = conflict_on(result.data, "estimated_departure")
    arrival = conflict_on(result.data, "estimated_arrival")
    assert (departure["rule"], departure["chosen"]) == ("earliest", utc(TRUTH.estimated_departure))
    assert (arrival["rule"], arrival["chosen"]) == ("latest", utc(late_arrival))
    assert departure["values"]["flightaware"] == utc(
        TRUTH.estimated_departure + timedelta(minutes=45))


def test_manual_mode_keeps_the_value_and_an_operator_settles_it(cli: SandboxCli) -> None:
    """Manual mode: a disagreement keeps the stored value, opens a conflict and reports
    `conflict` (exit 0); `conflicts resolve --use` applies that source's value with an audit
    row (rule manual), bumps the version, closes the conflict and drops the cache. The same
    disagreement seen again while the conflict is open does not open a second one."""
    config = policy_config(cli, "manual", mode="manual")
    first = cli.sync("LH400", DAY, *PAIR, config=config)
    assert first.data["sync_status"] == "synced" and first.data["conflicts"] == []
    override(cli, "amadeus", departure_gate="Z99")

    held = cli.sync("LH400", DAY, "--force", *PAIR, config=config)

    assert held.exit_code == 0
    assert held.data["sync_status"] == "conflict"
    assert held.data["flight"]["departure_gate"] == TRUTH.departure_gate
    assert held.data["flight"]["version"] == first.data["flight"]["version"]
    assert conflict_on(held.data, "departure_gate")["escalated"] is True
    repeated = cli.sync("LH400", DAY, "--force", *PAIR, config=config)
    assert repeated.data["sync_status"] == "conflict"
    assert repeated.data["flight"]["departure_gate"] == TRUTH.departure_gate

    listed = cli.run("conflicts", "list", config=config)
    assert listed.exit_code == 0
    [conflict] = listed.data["conflicts"]
    assert (conflict["flight"], conflict["date"], conflict["field"], conflict["status"]) == (
        "LH400", DAY, "departure_gate", "open")
    assert conflict["values"] == {"lufthansa": TRUTH.departure_gate, "amadeus": "Z99"}

    resolved = cli.run("conflicts", "resolve", str(conflict["id"]), "--use", "amadeus",
                       config=config)

    assert resolved.exit_code == 0, resolved.stderr
    [row] = cli.rows("SELECT departure_gate, version, has_open_conflict FROM flight")
    assert row["departure_gate"] == "Z99"
    assert row["version"] == first.data["flight"]["version"] + 1
    assert not row["has_open_conflict"]
    [audit] = cli.rows("SELECT source, rule, old, new FROM flight_change ORDER BY id DESC "
                       "LIMIT 1")
    assert audit == {"source": "amadeus", "rule": "manual",
                     "old": f'"{TRUTH.departure_gate}"', "new": '"Z99"'}
    assert cli.run("conflicts", "list", config=config).data["conflicts"] == []
    [closed] = cli.run("conflicts", "list", "--all", config=config).data["conflicts"]
    assert closed["status"] == "resolved" and closed["resolution"] == "Z99"

    calls = cli.requests()
    after = cli.sync("LH400", DAY, *PAIR, config=config)
    assert after.data["from_cache"] is False
    assert cli.requests() > calls
    assert after.data["flight"]["departure_gate"] == "Z99"


def test_manual_resolution_with_an_operator_value(cli: SandboxCli) -> None:
    """`conflicts resolve ID --value V` stores the operator's value (source operator, rule
    manual); a value of the wrong type, an unknown id, an unknown source and an already
    resolved conflict are exit 2 and change nothing."""
    config = policy_config(cli, "manual", mode="manual")
    cli.sync("LH400", DAY, *PAIR, config=config)
    override(cli, "amadeus", departure_delay_minutes=TRUTH.departure_delay_minutes + 45)
    held = cli.sync("LH400", DAY, "--force", *PAIR, config=config)
    assert held.data["flight"]["estimated_departure"] == utc(TRUTH.estimated_departure)
    [conflict] = [c for c in cli.run("conflicts", "list", config=config).data["conflicts"]
                  if c["field"] == "estimated_departure"]
    cid = str(conflict["id"])
    counts = cli.counts()

    for argv in (["--value", "not-a-time"], ["--value", "2026-02-25T09:00:00"],
                 ["--use", "flightaware"]):
        refused = cli.run("conflicts", "resolve", cid, *argv, config=config)
        assert refused.exit_code == 2, argv
        assert len(refused.error_lines()) == 1
    assert cli.run("conflicts", "resolve", "99999", "--value", "x", config=config
                   ).exit_code == 2
    assert cli.counts() == counts

    chosen = "2026-02-25T09:00:00Z"
    done = cli.run("conflicts", "resolve", cid, "--value", "2026-02-25T10:00:00+01:00",
                   config=config)

    assert done.exit_code == 0, done.stderr
    [row] = cli.rows("SELECT estimated_departure FROM flight")
    assert row["estimated_departure"] is not None
    explained = cli.run("explain", "LH400", "--date", DAY, config=config).data
    fields = {f["field"]: f for f in explained["legs"][0]["fields"]}
    assert fields["estimated_departure"]["value"] == chosen
    assert (fields["estimated_departure"]["source"], fields["estimated_departure"]["rule"]) == (
        "operator", "manual")
    again = cli.run("conflicts", "resolve", cid, "--value", chosen, config=config)
    assert again.exit_code == 2
    assert again.data["error"]["code"] == "conflict_resolved"
