"""Whole-process figures: the installed ``flightsync`` console script, run as cron runs it,
against baselines measured in the same rounds (``python -c pass``; ``import sqlmodel``).

Rounds interleave the commands, so that a busy moment of a shared machine lands on all of
them rather than on one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._env import Bench, queries
from benchmarks._report import Row, median
from benchmarks._sync import CACHED_FLIGHT


def console_script() -> Path:
    """``flightsync`` beside the interpreter running the benchmark (the venv's)."""
    script = Path(sys.executable).parent / "flightsync"
    if not script.exists():
        raise RuntimeError(f"{script} not found: pip install -e . into this environment")
    return script


def _wall_ms(command: list[str], env: dict[str, str], *, expect: int = 0) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    wall = (time.perf_counter() - started) * 1000
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(command[-4:])} exited {done.returncode}: "
                           f"{done.stderr[-1000:]}")
    return wall


def process_rows(bench: Bench, *, runs: int, warm_up: bool = True) -> list[Row]:
    """`sync` from the cache, `--help` and `status`, each as a whole process, after one
    untimed round (``warm_up``) that leaves the bytecode and the OS file cache warm."""
    env = bench.env()
    script = str(console_script())
    query = queries(CACHED_FLIGHT, 1)[0]
    sync = [script, "sync", query.designator, "--date", query.departure_date.isoformat(),
            "--json"]
    check = subprocess.run(sync, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    if check.returncode != 0 or not json.loads(check.stdout)["from_cache"]:
        raise RuntimeError(f"`flightsync sync` did not answer from the cache: {check.stdout}")
    commands = {
        "pass": [sys.executable, "-c", "pass"],
        "sqlmodel": [sys.executable, "-c", "import sqlmodel"],
        # The same without the interpreter's teardown, which flightsync skips (cli/_startup):
        # the figure against it shows what the skip is worth and what is left without it.
        "sqlmodel_no_teardown": [sys.executable, "-c", "import os, sqlmodel; os._exit(0)"],
        "help": [script, "--help"],
        "sync": sync,
        "status": [script, "status", "--json"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    if warm_up:
        for command in commands.values():
            _wall_ms(command, env)
    for _ in range(runs):
        for name, command in commands.items():
            walls[name].append(_wall_ms(command, env))
    ms = {name: median(values) for name, values in walls.items()}
    base = {"python_pass_ms": ms["pass"], "runs": runs}
    return [
        Row("cli_sync_cached", "`flightsync sync` from the cache, whole process",
            "wall ms minus `python -c pass`", "ms", 200, at_most=True,
            value=ms["sync"] - ms["pass"], detail={"wall_ms": ms["sync"], **base}),
        Row("cli_help", "`flightsync --help`, whole process",
            "wall ms minus `python -c pass`", "ms", 150, at_most=True,
            value=ms["help"] - ms["pass"], detail={"wall_ms": ms["help"], **base}),
        Row("cli_status", "`flightsync status`, whole process",
            "wall ms minus time to `import sqlmodel` alone", "ms", 150, at_most=True,
            value=ms["status"] - ms["sqlmodel"],
            detail={"wall_ms": ms["status"], "import_sqlmodel_ms": ms["sqlmodel"],
                    "minus_import_without_teardown_ms":
                        ms["status"] - ms["sqlmodel_no_teardown"],
                    "runs": runs}),
    ]
