"""A batch in a process of its own, so that its peak RSS is the batch's alone.

``python -m benchmarks._child START COUNT DAYS`` with the environment of benchmarks._env.Bench:
opens the engine, runs ``Engine.batch`` over COUNT LH flights from number START, DAYS days
ahead, and
prints one JSON line (elapsed seconds of the batch call, outcome counts, peak RSS in KiB).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from datetime import timedelta

from benchmarks._env import flight_day, queries
from flightsync import logs
from flightsync.config import load_settings
from flightsync.engine import open_engine


def main(argv: list[str]) -> int:
    start, count, days = int(argv[0]), int(argv[1]), int(argv[2])
    logs.configure_logging(verbosity=-1, json=True, run_id=None)  # as the CLI, quietly
    settings = load_settings(None, os.environ)
    flights = queries(start, count, flight_day() + timedelta(days=days))
    with open_engine(settings, run_kind="batch") as engine:
        started = time.perf_counter()
        result = engine.batch(flights)
        elapsed = time.perf_counter() - started
    summary = result.to_json()["summary"]
    print(json.dumps({
        "elapsed_s": elapsed, "synced": summary["synced"], "failed": summary["failed"],
        "from_cache": summary["from_cache"], "concurrency": settings.http.max_workers,
        "rate_limits": {name: p.rate_limit_per_second for name, p in settings.providers.items()
                        if p.rate_limit_per_second},
        "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
