"""`flightsync status --check` (docs/CONTRACTS.md section 7): each alert holds after the real engine
(against the sandbox), the breakers or the store reach its condition, exits 3 naming it on
stderr and in the JSON `alerts` list, and stays quiet (exit 0) when the condition does not
hold. Thresholds come from the `alerts:` section of the config."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.config import BreakerSettings
from flightsync.resilience import Breakers, StateStore
from flightsync.sandbox import Fault, Override, Sandbox, SandboxConfig, sandbox_environment
from flightsync.store import Database
from flightsync.store.tables import Flight

runner = CliRunner()
TODAY = datetime.now(UTC).date()



def use_sandbox(monkeypatch: pytest.MonkeyPatch, config: SandboxConfig | None = None
                ) -> Iterator[Sandbox]:
    with Sandbox(config or SandboxConfig()) as sandbox:
        for name, value in sandbox_environment(sandbox.base_url).items():
            monkeypatch.setenv(name, value)
        yield sandbox


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    yield from use_sandbox(monkeypatch)


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "flightsync.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("FLIGHTSYNC_CONFIG", str(path))
    return path


def cli(*args: str) -> Any:
    return runner.invoke(app, ["--json", *args])


def check() -> tuple[int, list[str], list[str]]:
    """Run `status --check`: exit code, the JSON alerts, the `alert:` lines on stderr."""
    result = cli("status", "--check")
    assert result.exit_code in (0, 3), result.output
    alerts = json.loads(result.stdout)["alerts"]
    lines = [line for line in result.stderr.splitlines() if line.startswith("alert: ")]
    return result.exit_code, alerts, lines


def names(alerts: list[str]) -> set[str]:
    return {alert.split(":", 1)[0] for alert in alerts}


def age_flights(state_dir: Path, **values: datetime) -> None:
    """Move every stored flight's sync times back, as the passing of time would."""
    database = Database.open(f"sqlite:///{state_dir / 'flightsync.db'}")
    try:
        with database.session() as session:
            session.execute(update(Flight.__table__).values(**values))  # type: ignore[attr-defined]
    finally:
        database.close()


def batch_file(tmp_path: Path, flights: list[str], day: date) -> Path:
    path = tmp_path / "flights.csv"
    path.write_text("flight,date\n" + "".join(f"{f},{day.isoformat()}\n" for f in flights),
                    encoding="utf-8")
    return path


def test_a_fresh_installation_has_no_alert() -> None:
    """With nothing stored and no breaker open, `status --check` exits 0 and lists no alert,
    while `status` still shows every part of the status object."""
    code, alerts, lines = check()
    assert (code, alerts, lines) == (0, [], [])
    data = json.loads(cli("status").stdout)
    assert set(data) >= {"breakers", "cache", "tokens", "database", "last_run", "alerts"}


def test_breaker_open_longer_than_the_threshold_alerts(state_dir: Path) -> None:
    """A breaker that opened more than `breaker_open_seconds` ago alerts (exit 3, its
    provider named); one that opened just now does not."""
    settings = BreakerSettings()
    recent = Breakers(StateStore(state_dir), settings)
    old = Breakers(StateStore(state_dir), settings, clock=lambda: time.time() - 600)
    for _ in range(settings.failure_threshold):
        recent.record_failure("amadeus")
    assert check()[0] == 0
    for _ in range(settings.failure_threshold):
        old.record_failure("lufthansa")
    code, alerts, lines = check()
    assert code == 3
    assert names(alerts) == {"breaker_open"}
    assert "lufthansa" in alerts[0] and "amadeus" not in alerts[0]
    assert lines == [f"alert: {alerts[0]}"]


def test_low_batch_success_rate_alerts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    """A last batch where fewer than 90 % of the flights synced alerts; a later batch where
    all synced clears the alert (only the last batch counts). The minimum sample is lowered
    to 1 flight (tests/test_alert_samples.py holds the default's boundary)."""
    write_config(tmp_path, monkeypatch, "alerts: {batch_success_min_sample: 1}\n")
    failing = ["LH400", "LH402"]
    flights = [f"LH{400 + i}" for i in range(10)]
    faults = tuple(Fault(provider="*", kind="not_found", flight=f) for f in failing)
    for _ in use_sandbox(monkeypatch, SandboxConfig(faults=faults)):
        done = cli("batch", str(batch_file(tmp_path, flights, TODAY)))
        assert done.exit_code == 1, done.output
        summary = json.loads(done.stdout)["summary"]
        assert summary["failed"] == len(failing)
    code, alerts, _ = check()
    assert code == 3
    assert "batch_success_rate" in names(alerts)
    rate = next(a for a in alerts if a.startswith("batch_success_rate"))
    assert f"{len(flights) - len(failing)} of {len(flights)}" in rate
    for _ in use_sandbox(monkeypatch):
        assert cli("batch", str(batch_file(tmp_path, ["LH404"], TODAY))).exit_code == 0
    assert "batch_success_rate" not in names(check()[1])


def test_cache_hit_rate_counts_syncs_and_file_batches_not_due_runs(
        sandbox: Sandbox, state_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One first sync (every provider a miss) puts the hit rate under 50 %: alert. Repeating
    it from the cache lifts the rate to 50 %: no alert. A `batch --due` run, which misses the
    cache by design, leaves the rate alone. (Minimum sample lowered to one lookup.)"""
    write_config(tmp_path, monkeypatch, "alerts: {cache_hit_min_sample: 1}\n")
    day = TODAY + timedelta(days=1)
    assert cli("sync", "LH400", "--date", day.isoformat()).exit_code == 0
    code, alerts, _ = check()
    assert code == 3 and names(alerts) == {"cache_hit_rate"}
    again = cli("sync", "LH400", "--date", day.isoformat())
    assert json.loads(again.stdout)["from_cache"] is True
    assert "cache_hit_rate" not in names(check()[1])
    age_flights(state_dir, next_sync_due_at=datetime.now(UTC) - timedelta(minutes=1))
    due = cli("batch", "--due")
    assert due.exit_code == 0 and json.loads(due.stdout)["summary"]["synced"] == 1
    assert "cache_hit_rate" not in names(check()[1])


def test_open_conflicts_over_the_threshold_alert(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Escalated conflicts (a provider reports the flight cancelled) above
    `alerts.open_conflicts_max` alert; at the threshold they do not."""
    write_config(tmp_path, monkeypatch, "alerts: {open_conflicts_max: 1}\n")
    day = TODAY + timedelta(days=2)
    overrides = tuple(Override(provider="flightaware", flight=f, fields={"cancelled": True})
                      for f in ("LH410", "LH412"))
    for _ in use_sandbox(monkeypatch, SandboxConfig(overrides=overrides)):
        first = cli("sync", "LH410", "--date", day.isoformat())
        assert json.loads(first.stdout)["sync_status"] == "conflict"
        assert "open_conflicts" not in names(check()[1])
        assert cli("sync", "LH412", "--date", day.isoformat()).exit_code == 0
    listed = json.loads(cli("conflicts", "list").stdout)
    open_count = len(listed["conflicts"])
    assert open_count > 1
    code, alerts, _ = check()
    assert code == 3 and "open_conflicts" in names(alerts)
    assert f"{open_count} conflicts" in next(a for a in alerts
                                             if a.startswith("open_conflicts"))


def test_tracked_flights_departing_soon_and_not_synced_for_an_hour_alert(
        sandbox: Sandbox, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Legs departing within 24 h whose last sync is over an hour old alert, counted; legs
    synced just now do not."""
    flights = [f"LH{420 + i}" for i in range(6)]
    now = datetime.now(UTC)
    soon = 0
    for day in (TODAY, TODAY + timedelta(days=1)):
        done = cli("batch", str(batch_file(tmp_path, flights, day)))
        assert done.exit_code == 0, done.output
        for result in json.loads(done.stdout)["successful"]:
            for leg in result["legs"]:
                departure = datetime.fromisoformat(leg["scheduled_departure"])
                soon += now <= departure <= now + timedelta(hours=24)
    assert soon > 0, "the sandbox gave no flight departing within 24 h"
    assert "unsynced_departing" not in names(check()[1])
    age_flights(state_dir, last_synced_at=datetime.now(UTC) - timedelta(hours=2))
    code, alerts, _ = check()
    assert code == 3
    unsynced = [a for a in alerts if a.startswith("unsynced_departing")]
    assert unsynced and unsynced[0].startswith(f"unsynced_departing: {soon} ")
    assert unsynced[0].endswith("not synced for over 60 min")  # the default, 3600 s
