"""Plausibility end to end (issue 13): one provider sends an impossible landing through the
sandbox; the real CLI drops it before it counts, stores the flight with the other providers'
values, logs a warning, `explain` lists the rejection, and `sources --recompute` holds it
against that provider. A pushed event passes the same checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from flightsync.cli._status import _explain_table
from flightsync.sandbox import SandboxConfig
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import SandboxCli, sandbox_cli

DAY = "2026-02-25"
TRUTH = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0]
# Half an hour after LH400 took off: every provider has it in the air...
NOW = (TRUTH.estimated_departure + timedelta(minutes=30)).astimezone(UTC)
BLOCK = int((TRUTH.scheduled_arrival - TRUTH.scheduled_departure).total_seconds() // 60)
# ...except FlightAware, which has it at the gate 15 minutes after it left.
EARLY_LANDING = {"arrival_delay_minutes": TRUTH.departure_delay_minutes + 15 - BLOCK}


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        running.scenario(overrides=[{"provider": "flightaware", "flight": "LH400",
                                     "fields": EARLY_LANDING}])
        yield running


def rejected_events(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == "provider.value.rejected"]


def test_an_impossible_landing_is_dropped_and_the_others_values_are_stored(
        cli: SandboxCli) -> None:
    """FlightAware reports LH400 arrived 15 minutes after take-off. Its landing time and its
    status are dropped with a warning each; the stored flight keeps what the other providers
    said (Lufthansa's in-flight status and estimates), and FlightAware's other values (its
    departure time, its gate) still count."""
    assert BLOCK > 60  # the scheduled block is long enough for 15 minutes to be absurd

    result = cli.sync("LH400", DAY)

    assert result.exit_code == 0, result.stderr
    flight = result.data["flight"]
    # The others' in-flight status (Lufthansa's departed, the newer sources' airborne), never
    # FlightAware's "arrived".
    assert flight["status"] in {"departed", "airborne"}
    assert flight["actual_arrival"] is None
    assert flight["estimated_arrival"] == utc(TRUTH.estimated_arrival)
    assert flight["actual_departure"] == utc(TRUTH.estimated_departure)
    warned = {(e["provider"], e["flight"], e["leg"], e["field"], e["reason"])
              for e in rejected_events(result.stderr)}
    assert warned == {
        ("flightaware", "LH400/2026-02-25", TRUTH.origin, "actual_arrival",
         "block_time_too_short"),
        ("flightaware", "LH400/2026-02-25", TRUTH.origin, "estimated_arrival",
         "block_time_too_short"),
        ("flightaware", "LH400/2026-02-25", TRUTH.origin, "status", "status_without_arrival"),
    }
    assert all(e["level"] == "warning" for e in rejected_events(result.stderr))
    [row] = cli.rows("SELECT \"values\" FROM source_observation WHERE source = 'flightaware'")
    stored = json.loads(row["values"]) if isinstance(row["values"], str) else row["values"]
    assert "actual_arrival" not in stored and "status" not in stored
    assert stored["actual_departure"] == utc(TRUTH.estimated_departure)
    assert stored["departure_gate"] == TRUTH.departure_gate
    assert {r["field"] for r in stored["_rejected"]} == {
        "actual_arrival", "estimated_arrival", "status"}


def test_explain_shows_the_rejection_with_its_reason(cli: SandboxCli) -> None:
    """`explain` lists each dropped value under the leg's `rejected` (source, field, value,
    reason, detail), leaves it out of the field's observations, and the table view prints it."""
    assert cli.sync("LH400", DAY).exit_code == 0

    explained = cli.run("explain", "LH400", "--date", DAY)

    assert explained.exit_code == 0, explained.stderr
    [leg] = explained.data["legs"]
    landing = utc(TRUTH.estimated_departure + timedelta(minutes=15))
    by_field = {r["field"]: r for r in leg["rejected"]}
    assert set(by_field) == {"actual_arrival", "estimated_arrival", "status"}
    assert by_field["actual_arrival"]["source"] == "flightaware"
    assert by_field["actual_arrival"]["value"] == landing
    assert by_field["actual_arrival"]["reason"] == "block_time_too_short"
    assert f"under 0.5 of the scheduled {BLOCK} minutes" in by_field["actual_arrival"]["detail"]
    assert by_field["status"] == {**by_field["status"], "value": "arrived",
                                  "reason": "status_without_arrival"}
    status = next(f for f in leg["fields"] if f["field"] == "status")
    assert "flightaware" not in status["observations"]
    assert status["observations"]["lufthansa"] == "departed"

    console = Console(record=True, width=200)
    _explain_table(console, explained.data)
    text = console.export_text()
    assert "rejected as implausible" in text
    assert "block_time_too_short" in text and "status_without_arrival" in text


def test_learned_trust_counts_the_rejection_against_the_provider(cli: SandboxCli) -> None:
    """`sources --recompute` counts each dropped value as FlightAware's mistake: its status
    accuracy falls below Lufthansa's (which agreed with the others), and its arrival time,
    which no one else reported, scores below the prior instead of at it."""
    assert cli.sync("LH400", DAY).exit_code == 0

    learned = cli.run("sources", "--recompute")

    assert learned.exit_code == 0, learned.stderr
    sources = learned.data["sources"]
    prior = learned.data["prior"]
    assert sources["flightaware"]["actual_arrival"]["observations"] == 1
    assert sources["flightaware"]["actual_arrival"]["accuracy"] < prior
    assert "actual_arrival" not in sources["lufthansa"]
    assert sources["flightaware"]["status"]["accuracy"] < sources["lufthansa"]["status"][
        "accuracy"]
    # Its plausible values count as before: the departure agrees with Lufthansa's.
    assert sources["flightaware"]["actual_departure"]["accuracy"] >= prior


def test_a_cached_answer_keeps_its_rejections(cli: SandboxCli) -> None:
    """A sync limited to FlightAware whose answer comes from the per-provider cache confirms
    the stored observation with its rejections (the same claim: no new row): the cache holds
    the cleaned answer, and no warning repeats for a value already rejected."""
    assert cli.sync("LH400", DAY).exit_code == 0
    requests = cli.requests("flightaware")

    again = cli.sync("LH400", DAY, "--source", "flightaware")

    assert again.exit_code == 0, again.stderr
    assert cli.requests("flightaware") == requests          # answered from the cache
    assert rejected_events(again.stderr) == []
    assert again.data["flight"]["actual_arrival"] is None
    rows = cli.rows("SELECT \"values\", observed_at, confirmed_at FROM source_observation "
                    "WHERE source = 'flightaware' ORDER BY id")
    assert len(rows) == 1
    assert rows[0]["confirmed_at"] > rows[0]["observed_at"]
    latest = rows[-1]["values"]
    latest = json.loads(latest) if isinstance(latest, str) else latest
    assert {r["field"] for r in latest["_rejected"]} == {
        "actual_arrival", "estimated_arrival", "status"}


def test_a_pushed_event_passes_the_same_checks(cli: SandboxCli) -> None:
    """A webhook event from Lufthansa claiming a landing before the take-off is a provider
    observation like any other: the landing and the status are dropped with a warning, the
    gate it also brings is applied, and the rejection is stored with the event's observation."""
    assert cli.sync("LH400", DAY).exit_code == 0
    landing = TRUTH.estimated_departure - timedelta(minutes=5)
    body = json.dumps({
        "type": "flight.updated", "provider": "lufthansa", "flight": "LH400", "date": DAY,
        "origin": TRUTH.origin, "id": "evt-impossible",
        "occurred_at": datetime.now(UTC).isoformat(),
        "changes": {"status": "landed", "actual_arrival": utc(landing),
                    "departure_gate": "Z9"},
    })

    pushed = cli.run("ingest-webhook", "-", "--insecure", stdin=body)

    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.data["status"] == "applied"
    assert pushed.data["flight"]["departure_gate"] == "Z9"
    assert pushed.data["flight"]["actual_arrival"] is None
    assert pushed.data["flight"]["status"] in {"departed", "airborne"}  # not "landed"
    assert {(e["provider"], e["field"], e["reason"]) for e in rejected_events(pushed.stderr)} == {
        ("lufthansa", "actual_arrival", "arrival_not_after_departure"),
        ("lufthansa", "status", "status_without_arrival"),
    }
    explained = cli.run("explain", "LH400", "--date", DAY).data
    assert {(r["source"], r["field"]) for r in explained["legs"][0]["rejected"]} >= {
        ("lufthansa", "actual_arrival"), ("lufthansa", "status")}


def test_a_bad_plausibility_threshold_is_refused_before_anything_is_written(
        cli: SandboxCli) -> None:
    """An out-of-range threshold in the policy file stops the command with exit 2 and one
    error line naming the key; no provider is asked and nothing is stored."""
    config = cli.write_config("bad", {}, policy={"plausibility": {"min_block_time_share": 2}})

    refused = cli.sync("LH400", DAY, config=config)

    assert refused.exit_code == 2
    [line] = refused.error_lines()
    assert "invalid policy" in line and "plausibility.min_block_time_share" in line
    assert cli.requests() == 0
    assert cli.counts()["flight"] == 0
