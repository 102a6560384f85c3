"""The README's quick start works: its flightsync commands, run as written (with the venv's
own flightsync binary), exit 0 in a fresh directory with a fresh state directory."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FLIGHTSYNC = Path(sys.executable).parent / "flightsync"


def quick_start_commands() -> list[list[str]]:
    """The flightsync invocations of README.md's first line, in order."""
    first = (REPO / "README.md").read_text(encoding="utf-8").splitlines()[0]
    commands = []
    for step in first.split("&&"):
        words = shlex.split(step)
        if words and words[0] == ".venv/bin/flightsync":
            commands.append([str(FLIGHTSYNC), *words[1:]])
    return commands


def test_readme_quick_start(tmp_path: Path, state_dir: Path) -> None:
    """Every flightsync command of the quick start exits 0 against the bundled sandbox, and
    its last, the cron job (`batch --due`), syncs at least one flight: the quick start shows
    the cron job doing work."""
    commands = quick_start_commands()
    assert len(commands) >= 1
    assert commands[-1][-2:] == ["batch", "--due"]
    env = {**os.environ, "FLIGHTSYNC_STATE_DIR": str(state_dir)}
    done = None
    for command in commands:
        done = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (
            f"{shlex.join(command[1:])} exited {done.returncode}\n"
            f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}")
    assert done is not None
    # Not a terminal: the batch's JSON result is on stdout.
    assert json.loads(done.stdout)["summary"]["synced"] >= 1
