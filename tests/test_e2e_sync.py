"""`flightsync sync` end to end: the real CLI, the real engine and store, the sandbox's providers
over loopback (docs/CONTRACTS.md sections 1-3 and 7)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from flightsync.models import OBSERVED_FIELDS, PROVIDER_NAMES
from flightsync.sandbox import Fault, SandboxConfig
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import SandboxCli, sandbox_cli

DAY = "2026-02-25"
# The sandbox's clock: the morning before LH400 departs, so statuses do not move under us.
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
FLIGHT_KEYS = {
    "carrier", "flight_number", "suffix", "departure_date", "leg_index", "origin",
    "destination", "status", "scheduled_departure", "estimated_departure", "actual_departure",
    "scheduled_arrival", "estimated_arrival", "actual_arrival", "departure_terminal",
    "departure_gate", "arrival_terminal", "arrival_gate", "baggage_belt", "aircraft_type",
    "aircraft_registration", "codeshares", "operating_carrier", "operating_flight_number",
    "diverted_to", "delay_minutes", "last_synced_at", "version",
}


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


def flight_ids(cli: SandboxCli, carrier: str, number: int) -> list[int]:
    rows = cli.rows("SELECT id FROM flight WHERE carrier = :c AND flight_number = :n "
                    "ORDER BY leg_index", c=carrier, n=number)
    return [row["id"] for row in rows]


def test_single_sync_writes_flight_audit_observations_and_run(cli: SandboxCli) -> None:
    """A first sync exits 0 with the section 3 keys, stores the leg, one audit row per field it
    set, one observation per answering provider, and one sync_run row."""
    result = cli.sync("LH400", DAY)

    assert result.exit_code == 0, result.stderr
    data = result.data
    assert {"success", "from_cache", "sync_status", "flight", "legs", "sources",
            "conflicts"} <= set(data)
    assert data["success"] is True and data["from_cache"] is False
    assert data["sync_status"] == "synced"
    assert set(data["flight"]) == FLIGHT_KEYS
    assert data["legs"] == [data["flight"]]
    flight = data["flight"]
    assert (flight["carrier"], flight["flight_number"], flight["departure_date"]) == (
        "LH", 400, DAY)
    truth = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0]
    assert (flight["origin"], flight["destination"]) == (truth.origin, truth.destination)
    assert flight["version"] == 1

    answered = sorted(s["name"] for s in data["sources"] if s["ok"])
    assert "lufthansa" in answered and set(answered) <= set(PROVIDER_NAMES)
    assert answered == sorted(name for name in PROVIDER_NAMES if cli.requests(name))

    [leg_id] = flight_ids(cli, "LH", 400)
    changes = cli.rows("SELECT field, old, run_id FROM flight_change WHERE flight_id = :i",
                       i=leg_id)
    set_fields = {name for name in OBSERVED_FIELDS if flight[name] not in (None, [])}
    assert sorted(c["field"] for c in changes) == sorted(set_fields)
    assert all(c["old"] is None for c in changes)
    observations = cli.rows("SELECT source FROM source_observation WHERE flight_id = :i",
                            i=leg_id)
    assert sorted(o["source"] for o in observations) == answered
    runs = cli.rows("SELECT run_id, kind, outcome FROM sync_run")
    assert len(runs) == 1 and runs[0]["kind"] == "sync" and runs[0]["outcome"] == "ok"
    assert {c["run_id"] for c in changes} == {runs[0]["run_id"]}


def test_identical_sync_is_served_from_the_cache(cli: SandboxCli) -> None:
    """The same sync again touches no provider, writes no audit row, keeps the version."""
    first = cli.sync("LH400", DAY)
    calls, changes = cli.requests(), cli.count("flight_change")

    again = cli.sync("LH400", DAY)

    assert again.exit_code == 0
    assert again.data["from_cache"] is True
    assert again.data["flight"]["version"] == first.data["flight"]["version"]
    assert again.data["flight"]["departure_gate"] == first.data["flight"]["departure_gate"]
    assert cli.requests() == calls
    assert cli.count("flight_change") == changes


def test_force_refetches_and_unchanged_data_writes_no_audit(cli: SandboxCli) -> None:
    """--force asks every provider again; identical answers bump no version, add no audit
    rows and store no new observation: each provider's stored one is only confirmed (issue
    16, store what changed)."""
    first = cli.sync("LH400", DAY)
    calls, counts = cli.requests(), cli.counts()

    forced = cli.sync("LH400", DAY, "--force")

    assert forced.exit_code == 0
    assert forced.data["from_cache"] is False
    assert cli.requests() == calls + len(first.data["sources"])
    assert forced.data["flight"]["version"] == first.data["flight"]["version"] == 1
    after = cli.counts()
    assert after["flight_change"] == counts["flight_change"]
    assert after["source_observation"] == counts["source_observation"]
    assert after["sync_run"] == counts["sync_run"] + 1


def test_changed_data_writes_one_audit_row_and_bumps_the_version(cli: SandboxCli) -> None:
    """When every provider reports a new gate, a forced sync stores it, writes exactly one
    audit row (old -> new) and bumps the version by one."""
    first = cli.sync("LH400", DAY)
    old_gate = first.data["flight"]["departure_gate"]
    changes = cli.count("flight_change")
    cli.scenario(overrides=[{"flight": "LH400", "fields": {"departure_gate": "Q77"}}])

    forced = cli.sync("LH400", DAY, "--force")

    assert forced.data["flight"]["departure_gate"] == "Q77" != old_gate
    assert forced.data["flight"]["version"] == first.data["flight"]["version"] + 1
    assert cli.count("flight_change") == changes + 1
    [row] = cli.rows("SELECT field, old, new FROM flight_change ORDER BY id DESC LIMIT 1")
    assert row == {"field": "departure_gate", "old": f'"{old_gate}"', "new": '"Q77"'}


def test_source_limits_the_providers(cli: SandboxCli) -> None:
    """--source NAME asks only that provider and reports only it."""
    result = cli.sync("LH400", DAY, "--source", "lufthansa")

    assert result.exit_code == 0
    assert [s["name"] for s in result.data["sources"]] == ["lufthansa"]
    assert cli.requests("lufthansa") == 1
    assert cli.requests() == 1
    [leg_id] = flight_ids(cli, "LH", 400)
    sources = cli.rows("SELECT source FROM source_observation WHERE flight_id = :i", i=leg_id)
    assert [s["source"] for s in sources] == ["lufthansa"]


def test_unknown_source_is_exit_2_and_writes_nothing(cli: SandboxCli) -> None:
    """An unknown --source is invalid input: exit 2, one error line, no provider called."""
    result = cli.sync("LH400", DAY, "--source", "nosuchprovider")

    assert result.exit_code == 2
    assert len(result.error_lines()) == 1 and "nosuchprovider" in result.error_lines()[0]
    assert result.data["error"]["code"] == "invalid_source"
    assert cli.requests() == 0
    assert cli.count("flight") == 0 and cli.count("sync_run") == 0


BAD_INPUTS = [("LH", DAY), ("12345", DAY), ("LH12345", DAY), ("L-H1", DAY),
              ("LH400", "2026-13-01"), ("LH400", "yesterday")]


def test_bad_designator_or_date_is_exit_2_and_writes_nothing(cli: SandboxCli) -> None:
    """A bad designator or date: exit 2, one error line naming the problem, rows unchanged
    and no provider called."""
    cli.sync("LH400", DAY)
    counts, calls = cli.counts(), cli.requests()

    for flight, day in BAD_INPUTS:
        result = cli.sync(flight, day)

        assert result.exit_code == 2, (flight, day)
        [line] = result.error_lines()
        code = result.data["error"]["code"]
        assert code == ("invalid_date" if flight == "LH400" else "invalid_flight")
        assert (day if code == "invalid_date" else flight) in line
        assert cli.counts() == counts
        assert cli.requests() == calls


def test_multi_leg_flight_returns_every_leg_in_order(cli: SandboxCli) -> None:
    """KL419 flies three legs: `legs` lists them in flying order, `flight` is the first."""
    result = cli.sync("KL419", DAY)

    assert result.exit_code == 0, result.stderr
    legs = result.data["legs"]
    truth = flight_truth("KL", 419, date.fromisoformat(DAY)).legs
    assert len(legs) == len(truth) == 3
    assert [leg["leg_index"] for leg in legs] == [0, 1, 2]
    assert [(leg["origin"], leg["destination"]) for leg in legs] == [
        (t.origin, t.destination) for t in truth]
    assert legs[0]["origin"] == legs[-1]["destination"]
    assert all(a["destination"] == b["origin"] for a, b in pairwise(legs))
    assert result.data["flight"] == legs[0]
    assert {leg["departure_date"] for leg in legs} == {DAY}
    assert len(flight_ids(cli, "KL", 419)) == 3


def test_flight_no_provider_knows_is_exit_1(state_dir: Path) -> None:
    """When every provider answers "no such flight", sync exits 1 with flight_not_found and
    stores nothing."""
    config = SandboxConfig(now=NOW, faults=(Fault(provider="*", kind="not_found",
                                                  flight="LH9876"),))
    with sandbox_cli(state_dir, config) as cli:
        result = cli.sync("LH9876", DAY)

        assert result.exit_code == 1
        assert result.data["success"] is False
        assert result.data["error"]["code"] == "flight_not_found"
        [line] = result.error_lines()
        assert "no provider knows" in line
        assert cli.requests() > 0
        assert cli.count("flight") == 0


def test_cache_clear_for_one_flight_and_for_all(cli: SandboxCli) -> None:
    """`cache clear FLIGHT --date D` drops only that flight's entries; `cache clear` drops
    every entry: the next sync of a cleared flight asks the providers again."""
    cli.sync("LH400", DAY)
    cli.sync("LH402", DAY)

    one = cli.run("cache", "clear", "LH400", "--date", DAY)
    assert one.exit_code == 0 and one.data["cleared"] > 0
    calls = cli.requests()
    assert cli.sync("LH402", DAY).data["from_cache"] is True
    assert cli.requests() == calls
    assert cli.sync("LH400", DAY).data["from_cache"] is False
    assert cli.requests() > calls

    everything = cli.run("cache", "clear")
    assert everything.exit_code == 0 and everything.data["cleared"] > 0
    calls = cli.requests()
    assert cli.sync("LH402", DAY).data["from_cache"] is False
    assert cli.requests() > calls


def test_gate_from_one_provider_shows_in_explain(cli: SandboxCli) -> None:
    """`explain` names per field the stored value, the provider and rule that chose it, and
    what every provider said."""
    cli.scenario(overrides=[{"provider": "flightaware", "flight": "LH400",
                             "fields": {"departure_gate": "Z99"}}])
    stored = cli.sync("LH400", DAY).data["flight"]

    result = cli.run("explain", "LH400", "--date", DAY)

    assert result.exit_code == 0, result.stderr
    [leg] = result.data["legs"]
    fields = {f["field"]: f for f in leg["fields"]}
    gate = fields["departure_gate"]
    assert gate["value"] == stored["departure_gate"]
    assert gate["observations"]["flightaware"] == "Z99"
    others = {v for s, v in gate["observations"].items() if s != "flightaware"}
    assert others and "Z99" not in others
    assert gate["source"] in gate["observations"]
    assert gate["observations"][gate["source"]] == gate["value"]
    assert gate["rule"] == "most_recent"  # the default policy's rule for the gate
    destination = fields["destination"]
    assert destination["value"] == stored["destination"] and destination["rule"] == "agree"


@pytest.mark.postgres
def test_single_sync_on_postgresql(state_dir: Path, pg_url: str) -> None:
    """The same sync against PostgreSQL (after `flightsync migrate`) stores the flight, its
    audit rows and its run, and a repeat is served from the cache."""
    with sandbox_cli(state_dir, SandboxConfig(now=NOW), database_url=pg_url) as cli:
        assert cli.run("migrate").exit_code == 0
        result = cli.sync("LH400", DAY)
        assert result.exit_code == 0, result.stderr
        assert cli.count("flight") == 1
        assert cli.count("flight_change") > 0
        assert cli.count("sync_run") == 1
        assert cli.sync("LH400", DAY).data["from_cache"] is True
