"""``python -m benchmarks [--json] [--quick] [--runs N] [--latency-ms 100]`` from the repo root.

Starts the sandbox at the given latency, runs every scenario ``--runs`` times and prints a
table of medians against their targets (``--json``: the same rows as JSON; ``--save FILE``
writes the JSON beside the table; ``--compare FILE`` adds an earlier saved run's values and
the change). ``--quick`` shrinks the sizes to finish within a minute.
Exit 0 whether or not targets are met: the figures are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._batch import batch_row, rss_row
from benchmarks._env import Bench
from benchmarks._policy import conflict_row
from benchmarks._process import process_rows
from benchmarks._report import Row, change, load_before, render
from benchmarks._state import state_rows
from benchmarks._sync import single_syncs
from benchmarks._writes import write_rows
from flightsync import logs


@dataclass(frozen=True)
class Sizes:
    batches: tuple[int, int]
    db_flights: int
    conflict_flights: int
    cached_calls: int
    runs: int


FULL = Sizes(batches=(100, 1000), db_flights=10_000, conflict_flights=5000, cached_calls=2000,
             runs=3)
QUICK = Sizes(batches=(20, 60), db_flights=640, conflict_flights=1000, cached_calls=300, runs=2)


def _sizes(text: str) -> tuple[int, int]:
    small, _, large = text.partition(",")
    return int(small), int(large or small)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--runs", type=int, default=None, help="repeats per scenario")
    parser.add_argument("--latency-ms", type=float, default=100.0,
                        help="sandbox latency per provider call (default 100)")
    parser.add_argument("--batch-flights", type=_sizes, default=None, metavar="SMALL,LARGE",
                        help="flights in the two batch scenarios (default 100,1000)")
    parser.add_argument("--db-flights", type=int, default=None, metavar="N",
                        help="changed flights in the database scenario (default 10000)")
    parser.add_argument("--save", type=Path, default=None, metavar="FILE",
                        help="also write the JSON result to FILE")
    parser.add_argument("--compare", type=Path, default=None, metavar="FILE",
                        help="an earlier run saved with --save: show its values and the change")
    # The storage scenario (benchmarks/_storage.py, issue 16): simulated days of batch --due.
    parser.add_argument("--storage", action="store_true",
                        help="only the storage scenario: simulated days of batch --due rounds")
    parser.add_argument("--storage-mode", choices=("before", "after", "both"), default="both",
                        help="before: main's write path emulated; after: this code")
    parser.add_argument("--days", type=int, default=45, help="storage: simulated days")
    parser.add_argument("--before-days", type=int, default=5,
                        help="storage: simulated days of the before run (it grows linearly)")
    parser.add_argument("--round-minutes", type=int, default=480,
                        help="storage: minutes between batch --due rounds (15 is cron's "
                        "cadence; the default keeps the run near 12 minutes)")
    parser.add_argument("--new-per-day", type=int, default=250,
                        help="storage: flights entering each simulated day (about 2.5 days "
                        "tracked each)")
    # The scale benchmark (issue 17): heavy, PostgreSQL and Redis on 127.0.0.1, run alone.
    parser.add_argument("--scale", action="store_true",
                        help="only the scale benchmark: a million flights on PostgreSQL, "
                        "batch --due on one host and on 1, 2 and 4 workers (benchmarks/_scale.py)")
    parser.add_argument("--scale-flights", type=int, default=1_000_000, metavar="N",
                        help="tracked flights seeded (default 1000000)")
    parser.add_argument("--scale-due", type=int, default=10_000, metavar="N",
                        help="due flights of the one-host run (default 10000)")
    parser.add_argument("--scale-workers-due", type=int, default=40_000, metavar="N",
                        help="due flights of each workers run (default 40000)")
    parser.add_argument("--scale-workers", default="1,2,4", metavar="N,N,...",
                        help="worker counts (default 1,2,4)")
    return parser.parse_args(argv)


def storage(args: argparse.Namespace, note: Callable[[str], None]) -> int:
    from benchmarks._storage import render, run_storage  # noqa: PLC0415

    modes = ("before", "after") if args.storage_mode == "both" else (args.storage_mode,)
    runs = [run_storage(mode=mode, days=(args.before_days or args.days) if mode == "before"
                        else args.days, round_minutes=args.round_minutes,
                        new_per_day=args.new_per_day, note=note) for mode in modes]
    payload = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
               "python": platform.python_version(), "cpu": _cpu_model(),
               "nproc": os.cpu_count(), "runs": [run.to_json() for run in runs]}
    if args.save is not None:
        args.save.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(payload, indent=2) if args.json else render(runs))
    return 0


def run(args: argparse.Namespace, note: Callable[[str], None]) -> dict[str, Any]:
    if args.scale:
        return _run_scale(args, note)
    sizes = QUICK if args.quick else FULL
    runs = args.runs or sizes.runs
    small, large = args.batch_flights or sizes.batches
    db_flights = args.db_flights or sizes.db_flights
    # Medians want three samples; --quick takes what it is given.
    rounds = runs if args.quick else max(runs, 3)
    started = time.perf_counter()
    rows: list[Row] = []
    with Bench(latency_ms=args.latency_ms) as bench:
        note("single syncs")
        rows += single_syncs(bench, runs=rounds, cached_calls=sizes.cached_calls)
        note("whole processes")
        rows += process_rows(bench, runs=rounds, warm_up=not args.quick)
        for slot, flights in enumerate((small, large)):
            note(f"batch of {flights}")
            rows.append(batch_row(bench, flights=flights, runs=runs, slot=slot))
        rows.append(rss_row(rows[-1], large))
        note("conflict resolution")
        rows.append(conflict_row(flights=sizes.conflict_flights, runs=rounds))
        note("database writes")
        rows += write_rows(bench.root, flights=db_flights)
        note("state store")
        rows += state_rows(bench.root, calls=sizes.cached_calls)
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "python": platform.python_version(), "cpu": _cpu_model(), "nproc": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "latency_ms": args.latency_ms,
        "runs": runs, "quick": args.quick,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    return {"header": header, "rows": rows}


def _run_scale(args: argparse.Namespace, note: Callable[[str], None]) -> dict[str, Any]:
    from benchmarks._scale import ScaleSizes, scale_rows  # noqa: PLC0415 - --scale only

    started = time.perf_counter()
    load = round(os.getloadavg()[0], 2)
    sizes = ScaleSizes(flights=args.scale_flights, due=args.scale_due,
                       worker_due=args.scale_workers_due,
                       workers=tuple(int(n) for n in args.scale_workers.split(",")))
    rows = scale_rows(args.latency_ms, sizes, note)
    header = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "python": platform.python_version(), "cpu": _cpu_model(), "nproc": os.cpu_count(),
        "load_avg_1m": load, "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "latency_ms": args.latency_ms, "scale": True,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    return {"header": header, "rows": rows}


def _cpu_model() -> str:
    """The processor's name where Linux tells it (figures differ by machine), else its
    architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return "_".join(line.partition(":")[2].split())
    except OSError:
        pass
    return platform.machine() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # Quiet, as the CLI runs by default: warnings and errors only, as JSON lines on stderr.
    logs.configure_logging(verbosity=-1, json=True, run_id=None)

    began = time.perf_counter()

    def note(step: str) -> None:
        print(f"benchmarks: {time.perf_counter() - began:6.1f} s  {step}", file=sys.stderr,
              flush=True)

    if args.storage:
        return storage(args, note)
    before = None
    if args.compare is not None:
        try:
            before = load_before(args.compare)  # read first: a bad file fails before the run
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    result = run(args, note)
    scenarios = [r.to_json() for r in result["rows"]]
    if before is not None:
        for row in scenarios:
            row["before"] = before.get(row["scenario"])
            row["change"] = change(row["value"], row["before"]) or None
    payload = {**result["header"], "scenarios": scenarios}
    if args.save is not None:
        args.save.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(payload, indent=2) if args.json
          else render(result["rows"], result["header"], before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
