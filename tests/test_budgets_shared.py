"""Provider limits shared by every process of a host (the state directory) and by every host
(Redis): measured where the provider sees them, at the sandbox, from its request times."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests._e2e import FLIGHTSYNC, SandboxProcess, migrated_template, sandbox_process, write_config
from tests._redis import private_redis
from tests._sandbox_cli import batch_csv, only_providers

PER_SECOND = 5
PROVIDER = "flightaware"


def _config(tmp: Path, hourly: int) -> Path:
    return write_config(tmp / "budgets.yaml", providers={PROVIDER: {
        "limits": f"{PER_SECOND}/second;{hourly}/hour", "max_wait_seconds": 30}})


def _run_together(sandbox: SandboxProcess, config: Path, state_dirs: Sequence[Path],
                  flights_each: int, tmp: Path, extra: dict[str, str] | None = None,
                  ) -> list[dict[str, Any]]:
    """``batch`` in one process per state directory, all started at once, each with its own
    database and its own flights; their JSON results."""
    day = datetime.now(UTC).date().isoformat()
    template = migrated_template(tmp / "template")
    processes = []
    for index, state in enumerate(state_dirs):
        flights = [(f"UA{1000 + index * 100 + i}", day) for i in range(flights_each)]
        database = tmp / f"db{index}.sqlite"
        shutil.copyfile(template, database)
        batch = tmp / f"batch{index}.csv"
        batch.write_text(batch_csv(flights), encoding="utf-8")
        env = {**os.environ, **sandbox.environment(), **only_providers(PROVIDER),
               "FLIGHTSYNC_STATE_DIR": str(state),
               "FLIGHTSYNC_DATABASE_URL": f"sqlite:///{database}",
               **(extra or {})}
        processes.append(subprocess.Popen(
            [str(FLIGHTSYNC), "--config", str(config), "batch", str(batch)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err.decode()[-2000:]
        results.append(json.loads(out))
    return results


def _request_times(sandbox: SandboxProcess) -> list[float]:
    response = httpx.get(f"{sandbox.base_url}/_sandbox/requests", timeout=10)
    response.raise_for_status()
    return sorted(response.json()[PROVIDER])


def _most_in_one_window(times: Sequence[float], seconds: float = 1.0) -> int:
    """The most calls that arrived within any window of ``seconds`` (half-open)."""
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def _check(sandbox: SandboxProcess, results: list[dict[str, Any]], hourly: int,
           flights: int) -> None:
    times = _request_times(sandbox)
    assert _most_in_one_window(times) <= PER_SECOND
    assert len(times) == hourly  # the hourly quota used whole, never passed
    left = sum(r["summary"]["left_for_later"] for r in results)
    assert left == flights - hourly
    assert sum(r["summary"]["left_for_later_by_provider"].get(PROVIDER, 0)
               for r in results) == left
    assert all(r["summary"]["failed"] == 0 for r in results)


def test_two_processes_on_one_host_share_the_limits(tmp_path: Path) -> None:
    """Two batch processes sharing one state directory: the sandbox never sees more than 5
    calls within one second, and the hourly quota of 20 is used but never passed; the
    flights it could not take are left for later, none failed."""
    hourly = 20
    with sandbox_process(tmp_path) as sandbox:
        shared = tmp_path / "state"
        results = _run_together(sandbox, _config(tmp_path, hourly), [shared, shared],
                                flights_each=12, tmp=tmp_path)
        _check(sandbox, results, hourly, flights=24)
    assert (shared / "limits").stat().st_mode & 0o777 == 0o700


def test_four_hosts_share_the_limits_through_redis(tmp_path: Path) -> None:
    """Four processes with separate state directories (four hosts) sharing one Redis through
    FLIGHTSYNC_STATE_URL: at most 5 calls within any second at the sandbox, and the hourly
    quota of 25 used whole but never passed."""
    hourly = 25
    with private_redis(tmp_path / "redis") as url, sandbox_process(tmp_path) as sandbox:
        states = [tmp_path / f"host{i}" for i in range(4)]
        results = _run_together(sandbox, _config(tmp_path, hourly), states, flights_each=8,
                                tmp=tmp_path, extra={"FLIGHTSYNC_STATE_URL": url})
        _check(sandbox, results, hourly, flights=32)
    assert not any((state / "limits").exists() for state in states)  # all of it in Redis
