"""`sync --source NAME` end to end: the providers not asked still count, through the latest
observation each of them stored, so a sync limited to one provider cannot undo what the full
set of providers established (docs/CONTRACTS.md sections 1 and 8; webhooks resolve the same way).

The sandbox clock stands after LH410 (FRA-NCE on 2026-11-23) arrived: Lufthansa then reports
`landed` while Amadeus and FlightAware report `arrived`, and the default policy's most_severe
rule stores `arrived`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from flightsync.sandbox import SandboxConfig
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import SandboxCli, sandbox_cli

DAY = "2026-11-23"
TRUTH = flight_truth("LH", 410, date.fromisoformat(DAY)).legs[0]
NOW = TRUTH.estimated_arrival + timedelta(hours=2)  # arrived; nothing moves any more
LUFTHANSA_ONLY = ("--source", "lufthansa")


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


def source_names(data: dict[str, Any]) -> list[str]:
    return [source["name"] for source in data["sources"]]


def latest_observation(cli: SandboxCli, source: str) -> dict[str, Any]:
    [row] = cli.rows("SELECT id, \"values\" FROM source_observation WHERE source = :s "
                     "ORDER BY id DESC LIMIT 1", s=source)
    values = row["values"]
    return {"id": row["id"],
            "values": json.loads(values) if isinstance(values, str) else values}


def test_source_limited_sync_keeps_what_all_providers_established(cli: SandboxCli) -> None:
    """Sync, then `--force --source lufthansa`, then a plain sync: Lufthansa's `landed` is
    resolved against the stored `arrived` of the others, so the flight stays `arrived` at
    version 1 throughout, no audit row is added, only Lufthansa is asked and its observation
    confirmed, and the result lists Lufthansa alone."""
    first = cli.sync("LH410", DAY, "--force")
    assert first.exit_code == 0, first.stderr
    assert first.data["flight"]["status"] == "arrived"
    assert first.data["flight"]["version"] == 1
    assert {"lufthansa", "amadeus"} <= set(source_names(first.data))
    assert latest_observation(cli, "lufthansa")["values"]["status"] == "landed"
    audit_rows = cli.count("flight_change")
    observations = cli.count("source_observation")
    amadeus_before = latest_observation(cli, "amadeus")
    amadeus_calls = cli.requests("amadeus")

    limited = cli.sync("LH410", DAY, "--force", *LUFTHANSA_ONLY)

    assert limited.exit_code == 0, limited.stderr
    assert limited.data["flight"]["status"] == "arrived"
    assert limited.data["flight"]["version"] == 1
    assert limited.data["sync_status"] == "synced"
    assert limited.data["from_cache"] is False
    assert source_names(limited.data) == ["lufthansa"]
    assert cli.count("flight_change") == audit_rows
    # Lufthansa's unchanged answer confirms its stored observation (no new row); the others'
    # stored observations are not copied.
    assert cli.count("source_observation") == observations
    [confirmed] = cli.rows("SELECT observed_at, confirmed_at FROM source_observation "
                           "WHERE source = 'lufthansa'")
    assert confirmed["confirmed_at"] > confirmed["observed_at"]
    assert latest_observation(cli, "lufthansa")["values"]["status"] == "landed"
    assert latest_observation(cli, "amadeus") == amadeus_before
    assert cli.requests("amadeus") == amadeus_calls

    plain = cli.sync("LH410", DAY)

    assert plain.exit_code == 0, plain.stderr
    assert plain.data["flight"]["status"] == "arrived"
    assert plain.data["flight"]["version"] == 1
    assert cli.count("flight_change") == audit_rows
    [row] = cli.rows("SELECT status, version FROM flight WHERE carrier = 'LH' "
                     "AND flight_number = 410")
    assert row == {"status": "arrived", "version": 1}


def test_source_limited_sync_with_new_information_still_changes_the_flight(
        cli: SandboxCli) -> None:
    """When Lufthansa (first in the policy, and LH's own adapter) reports a new arrival gate,
    `--force --source lufthansa` stores it (version 2, audit row by lufthansa under the
    priority rule) against the others' stored gate, and a later plain sync keeps it."""
    first = cli.sync("LH410", DAY, "--force")
    assert first.exit_code == 0, first.stderr
    assert first.data["flight"]["arrival_gate"] == TRUTH.arrival_gate
    cli.scenario(overrides=[{"provider": "lufthansa", "flight": "LH410",
                             "fields": {"arrival_gate": "Z9"}}])

    limited = cli.sync("LH410", DAY, "--force", *LUFTHANSA_ONLY)

    assert limited.exit_code == 0, limited.stderr
    assert limited.data["flight"]["arrival_gate"] == "Z9"
    assert limited.data["flight"]["status"] == "arrived"
    assert limited.data["flight"]["version"] == 2
    assert source_names(limited.data) == ["lufthansa"]
    [gate] = [c for c in limited.data["conflicts"] if c["field"] == "arrival_gate"]
    assert gate["chosen"] == "Z9" and gate["rule"] == "priority"
    # The disagreement was with what the others had stored: they were part of the decision.
    assert gate["values"]["lufthansa"] == "Z9"
    assert gate["values"]["amadeus"] == TRUTH.arrival_gate
    [audit] = cli.rows("SELECT field, old, new, source, rule FROM flight_change "
                       "ORDER BY id DESC LIMIT 1")
    assert audit == {"field": "arrival_gate", "old": f'"{TRUTH.arrival_gate}"',
                     "new": '"Z9"', "source": "lufthansa", "rule": "priority"}

    plain = cli.sync("LH410", DAY)

    assert plain.exit_code == 0, plain.stderr
    assert plain.data["flight"]["arrival_gate"] == "Z9"
    assert plain.data["flight"]["version"] == 2


def test_source_limited_first_sync_resolves_from_that_provider_alone(
        cli: SandboxCli) -> None:
    """A flight never synced before, synced with `--source lufthansa`: nothing is stored to
    add, so it is stored as Lufthansa alone reports it (`landed`), with one observation."""
    result = cli.sync("LH410", DAY, *LUFTHANSA_ONLY)

    assert result.exit_code == 0, result.stderr
    assert result.data["flight"]["status"] == "landed"
    assert result.data["flight"]["version"] == 1
    assert result.data["conflicts"] == []
    assert source_names(result.data) == ["lufthansa"]
    assert cli.rows("SELECT source FROM source_observation") == [{"source": "lufthansa"}]
    assert cli.requests("amadeus") == 0 and cli.requests("flightaware") == 0


def test_a_partial_sync_that_changed_the_flight_retires_the_cached_whole_result(
        cli: SandboxCli) -> None:
    """A plain sync caches its whole result. A later forced sync where Amadeus fails and
    Lufthansa brings a new gate is partial and stores the gate: the next plain sync must not
    answer with the older cached result (it would show the old gate and version)."""
    first = cli.sync("LH410", DAY)
    assert first.exit_code == 0 and first.data["flight"]["version"] == 1
    assert cli.sync("LH410", DAY).data["from_cache"] is True
    cli.scenario(overrides=[{"provider": "lufthansa", "flight": "LH410",
                             "fields": {"arrival_gate": "Z9"}}],
                 faults=[{"provider": "amadeus", "kind": "status_5xx", "status": 503}])

    partial = cli.sync("LH410", DAY, "--force")

    assert partial.data["sync_status"] == "partial"
    assert partial.data["flight"]["arrival_gate"] == "Z9"
    assert partial.data["flight"]["version"] == 2

    plain = cli.sync("LH410", DAY)

    assert plain.data["flight"]["arrival_gate"] == "Z9"
    assert plain.data["flight"]["version"] == 2
