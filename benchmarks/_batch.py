"""Batches against the ideal: each run syncs flights never synced before, in a child process
(benchmarks._child) so that its peak RSS can be read.

ideal = latency x requests / allowed concurrency (http.max_workers), or the time the
configured rate limits force, whichever is longer; the figure is ideal / actual.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks._env import PROVIDERS, Bench
from benchmarks._report import Row, median

_REPO = Path(__file__).resolve().parents[1]
# Each batch size gets its own range of flight numbers, each run its own date: every flight
# of every run is fresh.
_RANGE_START = 1000
_RANGE_WIDTH = 3000


def ideal_seconds(latency_s: float, per_provider: dict[str, int], concurrency: int,
                  rate_limits: dict[str, float]) -> float:
    """The shortest possible batch: every worker always busy with a call of ``latency_s``,
    and no provider asked faster than its rate limit allows."""
    requests = sum(per_provider.values())
    bound = latency_s * requests / concurrency
    for name, per_second in rate_limits.items():
        bound = max(bound, per_provider.get(name, 0) / per_second)
    return bound


def _run_child(bench: Bench, start: int, count: int, days_ahead: int) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks._child", str(start), str(count),
                           str(days_ahead)],
                          cwd=_REPO, env=bench.env(), capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"batch child failed ({done.returncode}): {done.stderr[-2000:]}")
    outcome: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome


def batch_row(bench: Bench, *, flights: int, runs: int, slot: int) -> Row:
    """``runs`` batches of ``flights`` fresh flights x 4 providers; median ratio, max RSS."""
    latency = bench.latency_ms / 1000
    ratios: list[float] = []
    elapsed: list[float] = []
    rss: list[float] = []
    calls: list[int] = []
    ideal = 0.0
    for run in range(runs):
        if flights > _RANGE_WIDTH:
            raise ValueError(f"at most {_RANGE_WIDTH} flights per batch")
        before = bench.requests()
        outcome = _run_child(bench, _RANGE_START + slot * _RANGE_WIDTH, flights, 2 + run)
        made = bench.requests() - before
        if outcome["failed"] or outcome["synced"] != flights:
            raise RuntimeError(f"batch of {flights}: {outcome}")
        ideal = ideal_seconds(latency, dict.fromkeys(PROVIDERS, flights),
                              outcome["concurrency"], outcome["rate_limits"])
        ratios.append(ideal / outcome["elapsed_s"])
        elapsed.append(outcome["elapsed_s"])
        rss.append(outcome["maxrss_kib"] / 1024)
        calls.append(made)
    row = Row(f"batch_{flights}", f"batch of {flights} flights x {len(PROVIDERS)} providers",
              "ideal / actual", "ratio", 0.8, at_most=False,
              value=median(ratios) if latency else None,
              detail={"median_s": median(elapsed), "ideal_s": ideal,
                      "requests": flights * len(PROVIDERS), "sandbox_calls": max(calls),
                      "concurrency": outcome["concurrency"], "peak_rss_mb": max(rss),
                      "runs": runs},
              note="" if latency else "latency 0: no ratio")
    return row


def rss_row(batch: Row, flights: int) -> Row:
    """The peak RSS of the largest batch as a row of its own (target 200 MB)."""
    return Row(f"batch_{flights}_rss", f"batch of {flights} flights: peak RSS",
               "max ru_maxrss of the batch child", "MB", 200, at_most=True,
               value=batch.detail["peak_rss_mb"])
