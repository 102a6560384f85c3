"""Operators' commands at a million flights (issue 17: "`flightsync status` and `conflicts
list` stay fast at a million flights"): each command's whole process, run against a seeded
PostgreSQL database and against one of 100 flights seeded the same way (every one due), in the
same run. The small database is the floor: the same process start, imports, connection,
statements and output (the listings limited to 50 rows in both), over a few rows; the ratio
floor / seeded says how much of the command's time the million rows add.

    .venv/bin/python -m benchmarks._reads [FLIGHTS]      # default 1,000,000: ~1 min of seeding

Inside the scale benchmark the seeded database is the scale run's own (``read_rows``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

from benchmarks._env import PYCACHE, private_postgres
from benchmarks._report import Row
from benchmarks._seed import key_of, seed
from flightsync.store import migrate

REPEATS = 7
SMALL = 100  # the floor's flights, all due
SHOWN = 50  # rows the listing commands print: the same in both databases


def _commands(day: str) -> dict[str, list[str]]:
    carrier, number, _, _ = key_of(1, ("LH",))
    return {
        "status": ["status"],
        "conflicts list": ["conflicts", "list"],
        "flights list --due": ["flights", "list", "--due", "--limit", str(SHOWN)],
        "flights show": ["flights", "show", f"{carrier}{number}", "--date", day],
        "batch --due --dry-run": ["batch", "--due", "--dry-run", "--limit", str(SHOWN)],
    }


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLIGHTSYNC_", "FLIGHT_SYNC_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(PYTHONPYCACHEPREFIX=str(PYCACHE), FLIGHTSYNC_DATABASE_URL=url)
    return env


def _run(url: str, args: list[str]) -> float:
    """Wall seconds of one ``flightsync --json ARGS`` process (exit 0 or 1)."""
    command = [sys.executable, "-m", "flightsync", "--json", *args]
    started = time.perf_counter()
    done = subprocess.run(command, env=_env(url), capture_output=True, text=True, timeout=120,
                          check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall


def _medians(small_url: str, seeded_url: str, args: list[str]) -> tuple[float, float]:
    """Median wall seconds of the command on each database, the two runs alternating (a
    change of the machine's load touches both alike), after one warm-up run each."""
    small: list[float] = []
    seeded: list[float] = []
    for attempt in range(REPEATS + 1):
        pair = (_run(small_url, args), _run(seeded_url, args))
        if attempt:  # the first pair warms the disk cache and the bytecode
            small.append(pair[0])
            seeded.append(pair[1])
    return statistics.median(small), statistics.median(seeded)


def _seed(url: str, flights: int, first_day: date) -> float:
    """Migrate and seed the database at ``url`` (LH flights from ``first_day``, one in a
    hundred due, every one in the small database); the seed's seconds."""
    import psycopg  # noqa: PLC0415 - only this benchmark needs the driver

    migrate.upgrade(url)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        due = flights if flights <= SMALL else min(10_000, flights // 100)
        return seed(conn, flights=flights, due=due,
                    now=datetime.now(UTC), carriers=("LH",), first_day=first_day).seconds


def read_rows(seeded_url: str, *, flights: int, first_day: date) -> list[Row]:
    """One row per command: floor (100 flights) / seeded, with both medians."""
    rows = []
    with private_postgres("fs_reads_small") as small_url:
        _seed(small_url, SMALL, first_day)
        for name, args in _commands(first_day.isoformat()).items():
            floor, wall = _medians(small_url, seeded_url, args)
            rows.append(Row(
                f"scale_read_{name.replace(' ', '_').replace('-', '')}",
                f"`flightsync {name}` at {flights:,} flights (whole process, median of "
                f"{REPEATS})", f"{SMALL}-flight database / seeded (same command)", "ratio", None,
                at_most=False, value=floor / wall,
                detail={"seeded_ms": wall * 1000, "small_ms": floor * 1000,
                        "added_ms": (wall - floor) * 1000}))
    return rows


def main() -> None:  # pragma: no cover - `python -m benchmarks._reads [FLIGHTS]`
    flights = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps({"load_avg_1m": round(os.getloadavg()[0], 2)}))
    first_day = datetime.now(UTC).date() + timedelta(days=1)
    with private_postgres("fs_reads") as url:
        seconds = _seed(url, flights, first_day)
        print(json.dumps({"seeded": flights, "seconds": round(seconds, 1)}))
        for row in read_rows(url, flights=flights, first_day=first_day):
            print(json.dumps(row.to_json()))
    print(json.dumps({"load_avg_1m_end": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
