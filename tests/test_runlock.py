"""The per-host run lock of `batch --due` (docs/CONTRACTS.md section 7): an overlapping run exits 0
saying another run is in progress, `--wait` waits for the holder, a lock left by a killed
run is recovered at once, and other commands never take it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.engine import BUSY_MESSAGE, RunLockBusy, run_lock

runner = CliRunner()



def due(*extra: str) -> tuple[int, dict[str, object], str]:
    result = runner.invoke(app, ["--json", "batch", "--due", *extra])
    return result.exit_code, json.loads(result.stdout.splitlines()[-1]), result.stderr


def test_an_overlapping_due_run_exits_0_and_says_why(state_dir: Path) -> None:
    """While another process holds the lock, `batch --due` does nothing, exits 0, prints a
    `skipped` JSON object and logs "another run is in progress"; afterwards it runs."""
    with run_lock(state_dir, owner="test"):
        code, data, stderr = due()
    assert code == 0
    assert data == {"skipped": True, "reason": BUSY_MESSAGE}
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [e["reason"] for e in logged if e["event"] == "batch.due.skipped"] == [BUSY_MESSAGE]
    code, data, _ = due()
    assert code == 0 and "run_id" in data and "skipped" not in data


def test_wait_runs_once_the_holder_lets_go(state_dir: Path) -> None:
    """`--wait SECONDS` polls the lock and runs as soon as the holder releases it."""
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with run_lock(state_dir, owner="holder"):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        threading.Timer(0.3, release.set).start()
        code, data, _ = due("--wait", "60")
    finally:
        release.set()
        thread.join()
    assert code == 0 and "run_id" in data and "skipped" not in data


def test_wait_gives_up_after_its_time(state_dir: Path) -> None:
    """With `--wait` shorter than the holder's run, the run is skipped like an immediate
    overlap (exit 0)."""
    with run_lock(state_dir, owner="holder"):
        code, data, _ = due("--wait", "0.2")
    assert (code, data) == (0, {"skipped": True, "reason": BUSY_MESSAGE})


def test_a_lock_left_by_a_killed_run_is_recovered(state_dir: Path) -> None:
    """A process killed with SIGKILL while holding the lock leaves its lock file behind,
    yet the next `batch --due` runs: the kernel released the flock with the process."""
    script = ("import sys, time\nfrom pathlib import Path\nfrom flightsync.engine import run_lock\n"
              "with run_lock(Path(sys.argv[1]), owner='doomed'):\n"
              "    print('locked', flush=True)\n    time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script, str(state_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert holder.stdout is not None
    try:
        # Unconfigured structlog prints to stdout too: read until the holder says it holds.
        assert "locked" in (line.strip() for line in holder.stdout)
        with pytest.raises(RunLockBusy) as busy, run_lock(state_dir):
            pass
        assert f"pid={holder.pid}" in str(busy.value)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    assert (state_dir / "batch-due.lock").exists()
    code, data, _ = due()
    assert code == 0 and "run_id" in data and "skipped" not in data


def test_other_commands_do_not_take_the_lock(state_dir: Path) -> None:
    """`status` runs normally while a due run holds the lock."""
    with run_lock(state_dir, owner="holder"):
        result = runner.invoke(app, ["--json", "status"])
    assert result.exit_code == 0 and "breakers" in json.loads(result.stdout)
