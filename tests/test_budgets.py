"""Provider budgets end to end through the real CLI and the sandbox (README "Provider
budgets"): a month budget running out in the middle of `batch --due`, a provider's own quota
answer shared with another process, and what `status`, `status --check` and the metrics file
say about them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flightsync.engine._due import most_urgent_first
from flightsync.models import FlightQuery
from flightsync.sandbox import Fault, SandboxConfig
from flightsync.store import Database
from flightsync.store import repository as repo
from tests._e2e import FLIGHTSYNC
from tests._sandbox_cli import SandboxCli, batch_csv, only_providers, sandbox_cli

DAY = datetime.now(UTC).date().isoformat()
PAID = "flightaware"
FLIGHTS = [(f"UA{900 + i}", DAY) for i in range(10)]


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, extra_env=only_providers(PAID)) as running:
        yield running


def _budget_config(cli: SandboxCli, month: float, **more: Any) -> Path:
    # One worker: the calls start one at a time in the order the run gives them, so which
    # flights the budget reaches is decided by that order alone.
    return cli.write_config(f"budget{month}", {
        "http": {"max_workers": 1},
        "providers": {PAID: {"cost_per_call": 0.5, "budget": {"month": month}, **more}}})


def _seed_due(cli: SandboxCli, tmp_path: Path) -> list[FlightQuery]:
    """Sync FLIGHTS once without a budget, then make all of them due; returns them in the
    order `batch --due` must spend a budget on them (most urgent first)."""
    batch = tmp_path / "flights.csv"
    batch.write_text(batch_csv(FLIGHTS), encoding="utf-8")
    seeded = cli.run("batch", str(batch))
    assert seeded.exit_code == 0, seeded.stderr
    past = datetime.now(UTC) - timedelta(hours=1)
    engine = sa.create_engine(cli.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE flight SET next_sync_due_at = :t"), {"t": past})
    finally:
        engine.dispose()
    database = Database.open(cli.database_url, create_default=False)
    try:
        with database.session() as session:
            queries = repo.due_flights(session, now=datetime.now(UTC), limit=100)
            stored = repo.load_legs(session, [repo.key_of(q) for q in queries])
    finally:
        database.close()
    assert len(queries) == len(FLIGHTS)
    return most_urgent_first(queries, stored, datetime.now(UTC))


def test_a_month_budget_running_out_mid_batch_leaves_the_rest_due(
        cli: SandboxCli, tmp_path: Path) -> None:
    """A month budget of 2.0 at 0.5 a call runs out after 4 calls of `batch --due`: the 4 most
    urgent flights were synced, the other 6 are counted as left for later (per provider),
    stay due, are not marked failed, the run exits 0 and the provider's breaker stays
    closed; `status --check` then alerts that the month budget is spent."""
    ordered = _seed_due(cli, tmp_path)
    before = cli.requests(PAID)
    config = _budget_config(cli, month=2.0)
    run = cli.run("batch", "--due", config=config)
    assert run.exit_code == 0, run.stderr
    summary = run.data["summary"]
    assert summary["synced"] == 4
    assert summary["failed"] == 0 and run.data["failed"] == []
    assert summary["left_for_later"] == 6
    assert summary["left_for_later_by_provider"] == {PAID: 6}
    assert cli.requests(PAID) - before == 4
    synced = {(r["flight"]["carrier"], r["flight"]["flight_number"])
              for r in run.data["successful"]}
    assert synced == {(q.carrier, q.number) for q in ordered[:4]}
    rows = cli.rows("SELECT carrier, flight_number, next_sync_due_at, last_error FROM flight "
                    "WHERE leg_index = 0")
    now = datetime.now(UTC).replace(tzinfo=None)
    left = [r for r in rows if (r["carrier"], r["flight_number"]) not in synced]
    assert len(left) == 6
    assert all(r["last_error"] is None for r in left)
    assert all(_naive(r["next_sync_due_at"]) <= now for r in left)  # still due
    status = cli.run("status", "--check", config=config)
    assert status.exit_code == 3
    assert status.data["breakers"][PAID]["state"] == "closed"
    assert status.data["breakers"][PAID]["failures"] == 0
    figures = status.data["budgets"][PAID]
    assert figures["spend"]["month"] == 2.0 and figures["budget"] == {"month": 2.0}
    assert figures["calls"]["month"] == 4
    assert any(a.startswith(f"budget_spent: {PAID}") for a in status.data["alerts"])
    assert not any(a.startswith("batch_success_rate") for a in status.data["alerts"])
    run_row = cli.rows("SELECT outcome, failed, synced FROM sync_run WHERE run_id = :r",
                       r=run.data["run_id"])
    assert run_row == [{"outcome": "ok", "failed": 0, "synced": 4}]
    # The next run finds them due; with the budget spent it leaves them again, fails none.
    again = cli.run("batch", "--due", config=config)
    assert again.exit_code == 0
    assert again.data["summary"]["left_for_later"] == 6
    assert cli.requests(PAID) - before == 4


def test_a_budget_running_out_across_overlapping_rounds_leaves_the_rest_due(
        cli: SandboxCli, tmp_path: Path) -> None:
    """Rounds of 3 flights, each claimed while the one before still has calls queued: the
    month budget's 4 calls sync 4 flights; the 6 others, whichever round they were in, are
    left for later, still due, unleased and not failed, and the run exits 0."""
    _seed_due(cli, tmp_path)
    before = cli.requests(PAID)
    config = cli.write_config("rounds", {
        "http": {"max_workers": 1}, "batch": {"size": 3},
        "providers": {PAID: {"cost_per_call": 0.5, "budget": {"month": 2.0}}}})
    run = cli.run("batch", "--due", config=config)
    assert run.exit_code == 0, run.stderr
    summary = run.data["summary"]
    assert (summary["synced"], summary["failed"], summary["left_for_later"]) == (4, 0, 6)
    assert cli.requests(PAID) - before == 4
    synced = {(r["flight"]["carrier"], r["flight"]["flight_number"])
              for r in run.data["successful"]}
    rows = cli.rows("SELECT carrier, flight_number, next_sync_due_at, last_error, lease_owner "
                    "FROM flight WHERE leg_index = 0")
    now = datetime.now(UTC).replace(tzinfo=None)
    left = [r for r in rows if (r["carrier"], r["flight_number"]) not in synced]
    assert len(left) == 6
    assert all(r["last_error"] is None and r["lease_owner"] is None for r in left)
    assert all(_naive(r["next_sync_due_at"]) <= now for r in left)  # still due
    assert all(r["lease_owner"] is None for r in rows)


def test_status_check_warns_at_80_percent_of_a_budget(cli: SandboxCli) -> None:
    """4 calls at 0.5 against a month budget of 2.5 is 80 %: `status --check` exits 3 with a
    `budget_warning` naming the provider; below 80 % it raises none."""
    config = _budget_config(cli, month=2.5)
    for flight, day in FLIGHTS[:3]:
        assert cli.sync(flight, day, config=config).exit_code == 0
    quiet = cli.run("status", "--check", config=config)
    assert not any(a.startswith("budget_") for a in quiet.data["alerts"])
    assert cli.sync(*FLIGHTS[3], config=config).exit_code == 0
    status = cli.run("status", "--check", config=config)
    assert status.exit_code == 3
    assert [a for a in status.data["alerts"] if a.startswith("budget_")] == [
        f"budget_warning: {PAID} has spent 2 of its month budget of 2.5 (80%, UTC calendar "
        "month)"]
    assert f"alert: budget_warning: {PAID}" in status.stderr


def test_status_and_metrics_show_calls_spend_and_what_each_limit_has_left(
        cli: SandboxCli, tmp_path: Path) -> None:
    """After 3 syncs against `10/second;100/hour` at 0.25 a call: status shows 3 calls in the
    minute, hour, day and month, 0.75 spent in the day and month, and each limit 3 used;
    the metrics file carries the same figures per provider and window."""
    textfile = tmp_path / "flightsync.prom"
    config = cli.write_config("figures", {
        "metrics": {"textfile": str(textfile)},
        "providers": {PAID: {"limits": "10/second;100/hour", "cost_per_call": 0.25,
                             "budget": {"day": 10}}}})
    for flight, day in FLIGHTS[:3]:
        assert cli.sync(flight, day, "--force", config=config).exit_code == 0
    figures = cli.run("status", config=config).data["budgets"][PAID]
    assert figures["calls"] == {"minute": 3, "hour": 3, "day": 3, "month": 3}
    assert figures["spend"] == {"day": 0.75, "month": 0.75}
    hourly = figures["limits"][1]
    assert (hourly["limit"], hourly["used"], hourly["remaining"]) == ("100 per 1 hour", 3, 97)
    assert figures["limits"][0]["limit"] == "10 per 1 second"  # its calls leave the window
    text = textfile.read_text(encoding="utf-8")
    assert f'flightsync_provider_calls_total{{provider="{PAID}",window="hour"}} 3.0' in text
    assert f'flightsync_provider_spend_total{{provider="{PAID}",window="month"}} 0.75' in text
    assert (f'flightsync_provider_quota_remaining{{provider="{PAID}",window="100 per 1 hour"}}'
            " 97.0") in text


def test_a_provider_quota_answer_stops_every_process_until_it_resets(
        state_dir: Path, tmp_path: Path) -> None:
    """Aviationstack answers `usage_limit_reached` once: that flight resolves from the other
    provider, the outcome is `provider_quota_exhausted` and the breaker does not count it;
    another process sharing the state directory then makes no call to Aviationstack (its
    outcome `quota_exhausted`), and `status --check` names the block."""
    quota = Fault(provider="aviationstack", kind="quota", times=1)
    with sandbox_cli(state_dir, SandboxConfig(faults=(quota,)),
                     extra_env=only_providers("aviationstack", PAID)) as cli:
        first = cli.sync("UA901", DAY)
        assert first.exit_code == 0, first.stderr
        sources = {s["name"]: s for s in first.data["sources"]}
        assert sources["aviationstack"]["error"] == "provider_quota_exhausted"
        assert sources[PAID]["ok"] is True
        assert cli.requests("aviationstack") == 1
        env = {**os.environ, **cli.env}
        env.pop("FLIGHTSYNC_RAISE_ERRORS", None)
        other = subprocess.run([str(FLIGHTSYNC), "--json", "sync", "UA902", "--date", DAY],
                               env=env, capture_output=True, text=True, timeout=120,
                               check=False)
        assert other.returncode == 0, other.stderr
        assert cli.requests("aviationstack") == 1  # no call made by the other process
        assert '"error": "quota_exhausted"' in other.stdout
        assert '"sync_status": "synced"' in other.stdout  # a skip is not a failure
        status = cli.run("status", "--check")
        assert status.exit_code == 3
        assert status.data["breakers"]["aviationstack"]["failures"] == 0
        assert status.data["budgets"]["aviationstack"]["quota_exhausted_until"] is not None
        assert any(a.startswith("quota_exhausted: aviationstack")
                   for a in status.data["alerts"])


def _naive(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=None) if moment.tzinfo is None else (
        moment.astimezone(UTC).replace(tzinfo=None))


def test_an_unreachable_state_url_is_exit_5_and_blames_no_provider(cli: SandboxCli) -> None:
    """With FLIGHTSYNC_STATE_URL naming a Redis nothing listens on, a sync of a budgeted
    provider stops with one `error:` line and exit 5 (a local resource unavailable); no call
    reaches the provider and its breaker records nothing."""
    from tests._e2e import closed_port  # noqa: PLC0415

    config = _budget_config(cli, month=10)
    url = f"redis://127.0.0.1:{closed_port()}/0"
    cli.env.pop("FLIGHTSYNC_RAISE_ERRORS", None)
    result = cli.run("sync", FLIGHTS[0][0], "--date", DAY, config=config,
                     env={"FLIGHTSYNC_STATE_URL": url})
    assert result.exit_code == 5, result.stderr
    assert len(result.error_lines()) == 1
    assert "state store unavailable" in result.error_lines()[0]
    assert cli.requests(PAID) == 0
    status = cli.run("status", config=config)
    assert status.data["breakers"][PAID]["failures"] == 0
