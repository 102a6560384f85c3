"""Crash safety (issue 8): a `flightsync batch` process killed with SIGKILL at random moments
leaves a consistent database and state directory, and the next run completes the work.

One state directory lives through every trial. Each trial changes what the providers say (a
new gate for every flight, so each run rewrites every leg with audit rows), starts the real
CLI as a subprocess and kills it after a random delay within the length of an unkilled run.
After each kill: SQLite's integrity check, the audit trail replayed against every row, no
half-written flight, the diskcache state opens and reads as `flightsync status` reads it,
and diskcache's own consistency check passes. A final unkilled run must sync every flight.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import diskcache
import pytest

from flightsync.config import BreakerSettings, CacheSettings
from flightsync.resilience import Breakers, ObservationCache, StateStore
from tests._e2e import (
    DAY,
    FLIGHTSYNC,
    SandboxProcess,
    integrity_problems,
    invoke,
    run,
    sandbox_process,
    sqlite_file,
    write_config,
)

TRIALS = 10
HEAVY_TRIALS = 60
# Single- and three-leg flights (KL numbers ending in 9 fly three legs in the sandbox).
FLIGHTS = ([f"LH{n}" for n in range(400, 418)] + ["KL1009", "KL1019", "KL1029", "AF1006",
                                                  "BA117", "BA118"])
SEED = int(os.environ.get("FLIGHTSYNC_CRASH_SEED", "20260301"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    # Some latency spreads a run's writes over time, so kills land between and inside them.
    with sandbox_process(tmp_path, {"default_latency_ms": 15}) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, sandbox: SandboxProcess, state_dir: Path) -> dict[str, str]:
    # No caching: every run fetches and rewrites every flight.
    config = write_config(
        tmp_path / "flightsync.yaml",
        cache={"ttl_active_seconds": 0.001, "ttl_future_seconds": 0.001,
               "ttl_arrived_seconds": 0.001},
        http={"timeout_seconds": 10, "max_workers": 4},
        retry={"attempts": 2, "backoff_initial_seconds": 0, "backoff_max_seconds": 0})
    return {**sandbox.environment(), "FLIGHTSYNC_CONFIG": str(config),
            "FLIGHTSYNC_STATE_DIR": str(state_dir)}


def _batch_file(tmp_path: Path) -> Path:
    path = tmp_path / "flights.csv"
    path.write_text("flight,date\n" + "".join(f"{f},{DAY}\n" for f in FLIGHTS),
                    encoding="utf-8")
    return path


def _kill_after(args: list[str], env: dict[str, str], delay: float) -> int | None:
    """Start the CLI, SIGKILL it after ``delay`` seconds; its exit code if it ended first."""
    process = subprocess.Popen([str(FLIGHTSYNC), *args], env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return None


def _state_problems(state_dir: Path) -> list[str]:
    """The diskcache state opens and reads as `flightsync status` reads it, and each of its
    folders passes diskcache's own consistency check."""
    problems = []
    with StateStore(state_dir) as store:
        ObservationCache(store, CacheSettings()).stats()
        Breakers(store, BreakerSettings()).snapshot()
    for folder in sorted(p.parent for p in state_dir.glob("*/cache.db")):
        with diskcache.Cache(str(folder)) as cache:
            warnings = cache.check()
        if warnings:
            problems.append(f"{folder.name}: {[str(w.message) for w in warnings][:3]}")
    return problems


def _kill_trials(trials: int, tmp_path: Path, sandbox: SandboxProcess, env: dict[str, str],
                 state_dir: Path) -> None:
    rng = random.Random(SEED)
    batch = ["batch", str(_batch_file(tmp_path))]
    sandbox.scenario(overrides=[{"fields": {"departure_gate": "G0"}}])
    started = time.monotonic()
    first = run(batch, env)
    span = time.monotonic() - started
    assert first.exit_code == 0, first.stderr[-2000:]
    killed = 0
    for trial in range(1, trials + 1):
        sandbox.scenario(overrides=[{"fields": {"departure_gate": f"G{trial}"}}])
        delay = rng.uniform(0.05, span)
        code = _kill_after(batch, env, delay)
        killed += code is None
        context = f"trial {trial} (seed {SEED}, killed after {delay:.2f}s: {code is None})"
        assert code in (None, 0), f"{context}: exit {code}"
        problems = integrity_problems(sqlite_file(state_dir))
        problems += _state_problems(state_dir)
        assert not problems, f"{context}: {problems}"
    final = invoke(batch, env)
    assert final.exit_code == 0, final.stderr[-2000:]
    summary = final.json["summary"]
    assert summary["failed"] == 0 and summary["synced"] == len(FLIGHTS), summary
    gates = {leg["departure_gate"] for result in final.json["successful"]
             for leg in result["legs"]}
    assert gates == {f"G{trials}"}, gates
    assert not integrity_problems(sqlite_file(state_dir))
    status = invoke(["status"], env)
    assert status.exit_code == 0, status.stderr[-2000:]
    print(f"crash safety: {trials} trials, {killed} killed mid-run, seed {SEED}, "
          f"0 flights lost of {len(FLIGHTS)}")


def test_sigkill_at_random_points_loses_nothing(tmp_path: Path, sandbox: SandboxProcess,
                                                env: dict[str, str], state_dir: Path) -> None:
    """After every SIGKILL the database and diskcache state are consistent, and a final run
    syncs every flight with the providers' latest values."""
    _kill_trials(TRIALS, tmp_path, sandbox, env, state_dir)


@pytest.mark.slow
def test_sigkill_many_trials(tmp_path: Path, sandbox: SandboxProcess, env: dict[str, str],
                             state_dir: Path) -> None:
    """The same as above over many more kill points (--heavy)."""
    _kill_trials(HEAVY_TRIALS, tmp_path, sandbox, env, state_dir)
