"""The Prometheus text file (docs/CONTRACTS.md §7): written after each sync and batch run when
`metrics.textfile` is configured, parseable, with totals read from the database (so they
add up across processes), breaker states per provider, no foreign metrics from the default
registry, and never seen half-written."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.config import BreakerSettings, load_settings
from flightsync.engine import open_engine, write_metrics
from flightsync.models import FlightQuery
from flightsync.resilience import Breakers, StateStore
from flightsync.sandbox import Fault, Sandbox, SandboxConfig, sandbox_environment

runner = CliRunner()
DAY = datetime.now(UTC).date() + timedelta(days=1)
FAMILIES = {"flightsync_syncs", "flightsync_sync_failures", "flightsync_cache_hits",
            "flightsync_breaker_state", "flightsync_conflicts_open",
            "flightsync_last_success_timestamp_seconds", "flightsync_run_duration_seconds"}



@pytest.fixture
def textfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "textfile" / "flightsync.prom"
    config = tmp_path / "flightsync.yaml"
    config.write_text(f"metrics: {{textfile: {path}}}\n", encoding="utf-8")
    monkeypatch.setenv("FLIGHTSYNC_CONFIG", str(config))
    return path


def start_sandbox(monkeypatch: pytest.MonkeyPatch, config: SandboxConfig) -> Iterator[Sandbox]:
    with Sandbox(config) as sandbox:
        for name, value in sandbox_environment(sandbox.base_url).items():
            monkeypatch.setenv(name, value)
        yield sandbox


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    # One 503 for Lufthansa: a retry happens, so stamina's own counter has something to show.
    yield from start_sandbox(monkeypatch, SandboxConfig(
        faults=(Fault(provider="lufthansa", kind="status_5xx", times=1),)))


def read(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """family name -> {sorted labels: value} (counters by their `_total` sample)."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            out.setdefault(family.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(metrics: dict[str, Any], name: str, **labels: str) -> float:
    return float(metrics[name][tuple(sorted(labels.items()))])


def cli(*args: str) -> Any:
    result = runner.invoke(app, ["--json", *args])
    assert result.exit_code == 0, result.output
    return result


def test_no_file_without_a_configured_path(sandbox: Sandbox, tmp_path: Path) -> None:
    """Without `metrics.textfile`, a run writes no metrics file anywhere."""
    cli("sync", "LH400", "--date", DAY.isoformat())
    assert not list(tmp_path.rglob("*.prom"))


def test_each_run_rewrites_totals_from_the_database(
        sandbox: Sandbox, textfile: Path, tmp_path: Path) -> None:
    """A file batch, then a sync served from the cache (another engine, as another process
    would be): the totals add up both runs, cache hits count, every provider's breaker is
    closed, and the last success lies within the runs."""
    flights = [f"LH{400 + i}" for i in range(4)]
    batch = tmp_path / "flights.csv"
    batch.write_text("flight,date\n" + "".join(f"{f},{DAY}\n" for f in flights),
                     encoding="utf-8")
    before = time.time()
    summary = json.loads(cli("batch", str(batch)).stdout)["summary"]
    first = read(textfile)
    assert set(first) >= FAMILIES
    assert value(first, "flightsync_syncs") == summary["synced"] == len(flights)
    assert value(first, "flightsync_sync_failures") == 0
    again = json.loads(cli("sync", flights[0], "--date", DAY.isoformat()).stdout)
    assert again["from_cache"] is True
    second = read(textfile)
    after = time.time()
    assert value(second, "flightsync_syncs") == len(flights) + 1
    assert value(second, "flightsync_cache_hits") == (
        value(first, "flightsync_cache_hits") + len(again["sources"]))
    providers = {dict(labels)["provider"] for labels in second["flightsync_breaker_state"]}
    assert providers >= {s["name"] for s in again["sources"]}
    assert set(second["flightsync_breaker_state"].values()) == {0}
    assert before <= value(second, "flightsync_last_success_timestamp_seconds") <= after
    assert {dict(labels)["kind"] for labels in second["flightsync_run_duration_seconds"]} == {
        "batch", "sync"}
    assert value(second, "flightsync_conflicts_open") == 0


def test_the_file_holds_only_flightsync_metrics(sandbox: Sandbox, textfile: Path) -> None:
    """Retries happened (stamina counts them in the default registry), yet the file holds
    flightsync's metrics only."""
    cli("sync", "LH400", "--date", DAY.isoformat(), "--source", "lufthansa")
    assert {name for name in read(textfile) if not name.startswith("flightsync_")} == set()
    assert "stamina" not in textfile.read_text(encoding="utf-8")


def test_an_open_breaker_shows_in_its_gauge(sandbox: Sandbox, textfile: Path,
                                            state_dir: Path) -> None:
    """An open breaker is 1 in `flightsync_breaker_state{provider}`, the others 0."""
    breakers = Breakers(StateStore(state_dir), BreakerSettings())
    for _ in range(BreakerSettings().failure_threshold):
        breakers.record_failure("amadeus")
    cli("sync", "LH400", "--date", DAY.isoformat())
    states = {dict(labels)["provider"]: v
              for labels, v in read(textfile)["flightsync_breaker_state"].items()}
    assert states["amadeus"] == 1
    assert {v for name, v in states.items() if name != "amadeus"} == {0}


def test_a_reader_never_sees_a_partial_file(sandbox: Sandbox, textfile: Path) -> None:
    """While runs rewrite the file over and over, a reader polling it always parses a whole
    file with every metric family, and no temporary file is left behind."""
    settings = load_settings(None, dict(os.environ))
    stop = threading.Event()
    reads: list[int] = []
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            try:
                text = textfile.read_text(encoding="utf-8")
            except FileNotFoundError:
                continue
            names = {f.name for f in text_string_to_metric_families(text)}
            if not names >= FAMILIES or not text.endswith("\n"):
                problems.append(text)
            reads.append(len(text))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for number in range(400, 404):
            with open_engine(settings, run_kind="sync") as engine:
                engine.sync(FlightQuery(carrier="LH", number=number, suffix="",
                                        departure_date=DAY), force=True)
                for _ in range(10):  # more writes than runs alone would give
                    write_metrics(engine)
    finally:
        stop.set()
        thread.join()
    assert reads and problems == []
    assert [p.name for p in textfile.parent.iterdir()] == [textfile.name]
