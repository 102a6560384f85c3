"""Alerts need evidence (issue 16): a rate alert fires only on its minimum sample, at its
threshold's boundary, and says the figure and the sample; a fresh install that synced one
flight is healthy through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.config import AlertSettings
from flightsync.engine._alerts import batch_alerts, cache_alerts
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment

runner = CliRunner()


def _batch(ok: int, failed: int) -> dict[str, Any]:
    return {"kind": "batch_due", "run_id": "r1", "synced": ok, "from_cache": 0,
            "failed": failed}


def _lookups(hits: int, misses: int) -> list[dict[str, Any]]:
    return [{"cache_hits": hits, "cache_misses": misses}]


def test_batch_success_rate_needs_its_minimum_sample() -> None:
    """Defaults (20 flights, 90 %): 19 flights all failed is no evidence; 20 flights with
    one more failure than 90 % allows alert, naming the figure and the sample."""
    limits = AlertSettings()
    assert limits.batch_success_min_sample == 20
    assert batch_alerts(limits, _batch(0, 19)) == []
    [line] = batch_alerts(limits, _batch(17, 3))
    assert line.startswith("batch_success_rate: ")
    assert "17 of 20 flights (85%" in line
    assert "sample 20 flights, at least 20 needed" in line


def test_batch_success_rate_threshold_boundary() -> None:
    """Exactly at the threshold is healthy; just under it alerts; the sample and the
    threshold are configurable."""
    limits = AlertSettings(batch_success_rate_min=0.9, batch_success_min_sample=10)
    assert batch_alerts(limits, _batch(9, 1)) == []          # 90 %: at the threshold
    assert len(batch_alerts(limits, _batch(89, 11))) == 1    # 89 %
    assert batch_alerts(limits.model_copy(update={"batch_success_min_sample": 101}),
                        _batch(89, 11)) == []                # 100 flights: under the sample


def test_cache_hit_rate_needs_its_minimum_sample() -> None:
    """Defaults (50 lookups, 50 %): 49 misses are no evidence; 50 misses alert with the
    figure and the sample."""
    limits = AlertSettings()
    assert limits.cache_hit_min_sample == 50
    assert cache_alerts(limits, _lookups(0, 49)) == []
    [line] = cache_alerts(limits, _lookups(0, 50))
    assert line.startswith("cache_hit_rate: 0% of 50 provider lookups")
    assert "sample 50 lookups, at least 50 needed" in line


def test_cache_hit_rate_threshold_boundary() -> None:
    """A hit rate equal to the threshold is healthy; one lookup fewer hit alerts."""
    limits = AlertSettings(cache_hit_rate_min=0.5, cache_hit_min_sample=50)
    assert cache_alerts(limits, _lookups(30, 30)) == []
    assert len(cache_alerts(limits, _lookups(29, 31))) == 1
    assert cache_alerts(AlertSettings(cache_hit_rate_min=0.4), _lookups(29, 31)) == []


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as running:
        for name, value in sandbox_environment(running.base_url).items():
            monkeypatch.setenv(name, value)
        yield running


def test_a_fresh_install_that_synced_one_flight_is_healthy(
        sandbox: Sandbox, state_dir: Path) -> None:
    """`migrate`, one `sync` against the sandbox (every provider a cache miss: a 0 % hit
    rate on a handful of lookups), then `status --check`: exit 0, no alert."""
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    day = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    synced = runner.invoke(app, ["--json", "sync", "LH400", "--date", day])
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout)["from_cache"] is False

    checked = runner.invoke(app, ["--json", "status", "--check"])

    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["alerts"] == []
