"""An operator's resolution sticks (docs/CONTRACTS.md §8), end to end through the real CLI and
the sandbox: once `conflicts resolve` settles a disagreement, later syncs (and webhooks) that
bring exactly the same values by source do not open it again; they list it with rule
`operator`, not escalated, and keep the operator's value. Any change in what the providers
say (a changed value, a new source) opens a conflict as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flightsync.sandbox import SandboxConfig
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import CliResult, SandboxCli, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)  # before LH400 departs: nothing moves
TRUTH = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0]
# Two providers that describe LH400 identically, so the only disagreement is the one we make.
PAIR = ("--source", "lufthansa", "--source", "amadeus")


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


@pytest.fixture
def manual(cli: SandboxCli) -> Path:
    """A config whose policy holds every disagreement for an operator."""
    return cli.write_config("manual", {}, policy={"mode": "manual"})


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL every database connection in this process runs while the test does."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def resolved_reads(statements: list[str]) -> int:
    """How many of ``statements`` read resolved conflicts' candidates."""
    return sum(1 for sql in statements
               if sql.startswith("SELECT") and ".resolved_at" in sql and ".candidates" in sql)


def override(cli: SandboxCli, provider: str, **fields: Any) -> None:
    cli.scenario(overrides=[{"provider": provider, "flight": "LH400", "fields": fields}])


def conflict_on(data: dict[str, Any], field: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in data["conflicts"] if c["field"] == field]
    assert len(found) == 1, data["conflicts"]
    return found[0]


def conflict_rows(cli: SandboxCli, field: str) -> list[dict[str, Any]]:
    rows = cli.rows("SELECT id, status, candidates FROM conflict WHERE field = :field "
                    "ORDER BY id", field=field)
    return [{**row, "candidates": json.loads(row["candidates"])} for row in rows]


def resolve_open(cli: SandboxCli, field: str, source: str, config: Path) -> None:
    """Settle the one open conflict on ``field`` with ``source``'s value."""
    [conflict] = [c for c in cli.run("conflicts", "list", config=config).data["conflicts"]
                  if c["field"] == field]
    done = cli.run("conflicts", "resolve", str(conflict["id"]), "--use", source, config=config)
    assert done.exit_code == 0, done.stderr


def gate_disagreement_resolved(cli: SandboxCli, config: Path) -> CliResult:
    """Amadeus says gate Z99 where Lufthansa says the true gate; the first sync opens a
    conflict and the operator settles it with Amadeus's Z99. Returns the first sync."""
    override(cli, "amadeus", departure_gate="Z99")
    first = cli.sync("LH400", DAY, *PAIR, config=config)
    assert first.exit_code == 0, first.stderr
    assert first.data["sync_status"] == "conflict"
    assert conflict_on(first.data, "departure_gate")["escalated"] is True
    resolve_open(cli, "departure_gate", "amadeus", config)
    [row] = cli.rows("SELECT departure_gate FROM flight")
    assert row["departure_gate"] == "Z99"
    return first


def test_a_settled_disagreement_stays_settled_on_resync(cli: SandboxCli, manual: Path) -> None:
    """Manual mode: after `conflicts resolve --use amadeus`, a forced re-sync in which the
    providers say exactly what the operator saw opens no conflict row, lists nothing open,
    exits 0 with sync_status synced, keeps the operator's value (no new version), and lists
    the disagreement with rule `operator`, not escalated."""
    gate_disagreement_resolved(cli, manual)
    [before] = cli.rows("SELECT version FROM flight")
    rows_before = cli.count("conflict")

    again = cli.sync("LH400", DAY, "--force", *PAIR, config=manual)

    assert again.exit_code == 0, again.stderr
    assert again.data["from_cache"] is False
    assert again.data["sync_status"] == "synced"
    assert again.data["flight"]["departure_gate"] == "Z99"
    assert again.data["flight"]["version"] == before["version"]
    gate = conflict_on(again.data, "departure_gate")
    assert (gate["escalated"], gate["rule"], gate["chosen"]) == (False, "operator", "Z99")
    assert gate["values"] == {"lufthansa": TRUTH.departure_gate, "amadeus": "Z99"}
    assert cli.count("conflict") == rows_before
    assert cli.run("conflicts", "list", config=manual).data["conflicts"] == []
    [row] = cli.rows("SELECT departure_gate, sync_status, has_open_conflict FROM flight")
    assert row == {"departure_gate": "Z99", "sync_status": "synced", "has_open_conflict": 0}


def test_a_changed_value_opens_a_new_conflict(cli: SandboxCli, manual: Path) -> None:
    """After the operator settled Lufthansa's gate against Amadeus's Z99, Amadeus reporting
    Z98 is a new disagreement: a second conflict row opens with the new candidates, the sync
    reports `conflict` and the flight keeps the operator's Z99 until someone decides."""
    gate_disagreement_resolved(cli, manual)
    override(cli, "amadeus", departure_gate="Z98")

    changed = cli.sync("LH400", DAY, "--force", *PAIR, config=manual)

    assert changed.exit_code == 0, changed.stderr
    assert changed.data["sync_status"] == "conflict"
    assert changed.data["flight"]["departure_gate"] == "Z99"
    gate = conflict_on(changed.data, "departure_gate")
    assert gate["escalated"] is True and gate["rule"] != "operator"
    [settled, reopened] = conflict_rows(cli, "departure_gate")
    assert settled["status"] == "resolved"
    assert reopened["status"] == "open"
    assert reopened["candidates"] == {"lufthansa": TRUTH.departure_gate, "amadeus": "Z98"}
    [listed] = cli.run("conflicts", "list", config=manual).data["conflicts"]
    assert listed["id"] == reopened["id"]


def test_a_new_source_opens_a_new_conflict(cli: SandboxCli, manual: Path) -> None:
    """The operator settled what Lufthansa and Amadeus said; a sync that also hears
    FlightAware on that field has candidates the operator never saw, so it opens a new
    conflict on the field."""
    gate_disagreement_resolved(cli, manual)

    wider = cli.sync("LH400", DAY, "--force", *PAIR, "--source", "flightaware",
                     config=manual)

    assert wider.exit_code == 0, wider.stderr
    assert wider.data["sync_status"] == "conflict"
    gate = conflict_on(wider.data, "departure_gate")
    assert gate["escalated"] is True
    assert set(gate["values"]) == {"lufthansa", "amadeus", "flightaware"}
    [_, reopened] = conflict_rows(cli, "departure_gate")
    assert reopened["status"] == "open"
    assert set(reopened["candidates"]) == {"lufthansa", "amadeus", "flightaware"}


def test_automatic_escalated_status_settled_by_an_operator_stays_settled(
        cli: SandboxCli) -> None:
    """Automatic mode with `escalate: [status]`: FlightAware says cancelled where the others
    say scheduled, which opens a conflict; the operator takes FlightAware's `cancelled`. A
    forced re-sync with the same reports keeps `cancelled`, opens nothing, exits 0 with
    sync_status synced and lists the status disagreement with rule `operator`."""
    config = cli.write_config("escalate", {}, policy={
        "mode": "automatic", "escalate": ["status"], "fields": {"status": "most_severe"}})
    override(cli, "flightaware", cancelled=True)
    first = cli.sync("LH400", DAY, config=config)
    assert first.exit_code == 0, first.stderr
    assert first.data["sync_status"] == "conflict"
    assert conflict_on(first.data, "status")["escalated"] is True
    resolve_open(cli, "status", "flightaware", config)
    rows_before = cli.count("conflict")

    again = cli.sync("LH400", DAY, "--force", config=config)

    assert again.exit_code == 0, again.stderr
    assert again.data["sync_status"] == "synced"
    assert again.data["flight"]["status"] == "cancelled"
    status = conflict_on(again.data, "status")
    assert (status["escalated"], status["rule"], status["chosen"]) == (
        False, "operator", "cancelled")
    assert status["values"]["flightaware"] == "cancelled"
    assert "scheduled" in status["values"].values()
    assert cli.count("conflict") == rows_before
    assert cli.run("conflicts", "list", config=config).data["conflicts"] == []


def webhook(cli: SandboxCli, config: Path, event_id: str, gate: str) -> CliResult:
    body = {"type": "flight.updated", "provider": "amadeus", "flight": "LH400", "date": DAY,
            "occurred_at": datetime.now(UTC).isoformat(), "id": event_id,
            "changes": {"departure_gate": gate}}
    return cli.run("ingest-webhook", "-", "--insecure", stdin=json.dumps(body), config=config)


def test_webhooks_follow_the_operators_resolution(cli: SandboxCli, manual: Path) -> None:
    """A webhook goes through the same write path: Amadeus restating the settled Z99 opens
    nothing and is listed with rule `operator`; Amadeus then pushing Z98 opens a new
    conflict."""
    gate_disagreement_resolved(cli, manual)
    rows_before = cli.count("conflict")

    same = webhook(cli, manual, "evt_same", "Z99")

    assert same.exit_code == 0, same.stderr
    assert same.data["status"] == "applied"
    gate = conflict_on(same.data, "departure_gate")
    assert (gate["escalated"], gate["rule"]) == (False, "operator")
    assert cli.count("conflict") == rows_before
    [row] = cli.rows("SELECT departure_gate, sync_status FROM flight")
    assert row == {"departure_gate": "Z99", "sync_status": "synced"}

    moved = webhook(cli, manual, "evt_moved", "Z98")

    assert moved.exit_code == 0, moved.stderr
    assert conflict_on(moved.data, "departure_gate")["escalated"] is True
    [_, reopened] = conflict_rows(cli, "departure_gate")
    assert reopened["status"] == "open"
    assert reopened["candidates"] == {"lufthansa": TRUTH.departure_gate, "amadeus": "Z98"}


def test_history_is_read_once_and_only_for_an_escalation(
        cli: SandboxCli, manual: Path, statements: list[str]) -> None:
    """The operator's past decisions are read in one query, and only when a stored leg has
    an escalated disagreement: a sync where the providers agree reads nothing, and neither
    does a first sync (a new leg has no history)."""
    first = cli.sync("LH400", DAY, *PAIR, config=manual)
    assert first.exit_code == 0, first.stderr
    agreeing = cli.sync("LH400", DAY, "--force", *PAIR, config=manual)
    assert agreeing.data["conflicts"] == []
    assert resolved_reads(statements) == 0

    override(cli, "amadeus", departure_gate="Z99")
    held = cli.sync("LH400", DAY, "--force", *PAIR, config=manual)
    assert held.data["sync_status"] == "conflict"
    assert resolved_reads(statements) == 1
    resolve_open(cli, "departure_gate", "amadeus", manual)
    statements.clear()

    settled = cli.sync("LH400", DAY, "--force", *PAIR, config=manual)

    assert conflict_on(settled.data, "departure_gate")["rule"] == "operator"
    assert resolved_reads(statements) == 1
