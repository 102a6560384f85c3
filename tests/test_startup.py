"""The console script's start and end (cli/_startup): the garbage collector paused while a
command starts, and the exit that skips the interpreter's teardown but nothing a command
relies on: exit status, flushed output, other exit handlers, waiting threads."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flightsync.cli import _startup


def _python(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLIGHTSYNC_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False, cwd=tmp_path)


def _run_main(before: str = "", after: str = "") -> str:
    """A probe that runs ``flightsync.cli.main`` with the probe's arguments, between two
    pieces of code of its own, and catches the command's SystemExit."""
    return ("import atexit, gc, json, sys, threading\n"
            "from flightsync.cli import main\n"
            "sys.argv = ['flightsync', *sys.argv[1:]]\n"
            f"{before}\n"
            "try:\n"
            "    main()\n"
            "except SystemExit:\n"
            "    pass\n"
            f"{after}\n")


@pytest.mark.parametrize(("args", "status", "stream", "text"), [
    (("--help",), 0, "stdout", "Usage: flightsync"),
    (("sync",), 2, "stderr", "Missing argument 'FLIGHT'"),
    (("sync", "LH4000000", "--date", "2026-02-25"), 2, "stderr", "invalid flight designator"),
])
def test_the_command_status_and_its_whole_output_survive_the_fast_exit(
        tmp_path: Path, args: tuple[str, ...], status: int, stream: str, text: str) -> None:
    """Through pipes (block-buffered), every byte a command printed arrives and the process
    exits with the command's status."""
    done = subprocess.run([sys.executable, "-m", "flightsync", *args], capture_output=True,
                          text=True, timeout=120, check=False, cwd=tmp_path,
                          env={**os.environ, "FLIGHTSYNC_STATE_DIR": str(tmp_path / "s")})
    assert done.returncode == status
    assert text in getattr(done, stream)
    if status:
        assert json.loads(done.stdout)["error"]["code"]  # the JSON error, whole


def test_exit_handlers_and_threads_of_the_command_still_run(tmp_path: Path) -> None:
    """An atexit handler registered during the command runs, a non-daemon thread is waited
    for, and the status is still the command's (2 here, though the probe ends normally)."""
    after = ("def late():\n"
             "    import time; time.sleep(0.2); open('thread', 'w').write('waited')\n"
             "threading.Thread(target=late).start()\n"
             "atexit.register(lambda: open('handler', 'w').write('ran'))\n")
    done = _python(_run_main(after=after), tmp_path, "sync", "LH400")
    assert done.returncode == 2
    assert (tmp_path / "handler").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "waited"


def test_a_handler_registered_before_the_command_keeps_the_normal_shutdown(
        tmp_path: Path) -> None:
    """A handler that predates main (coverage, started from a .pth file) would run after the
    fast exit, so the process shuts down as Python always does: the handler runs and the
    probe's own status (0) stands."""
    before = "atexit.register(lambda: open('early', 'w').write('ran'))"
    done = _python(_run_main(before=before), tmp_path, "sync", "LH400")
    assert done.returncode == 0
    assert (tmp_path / "early").read_text() == "ran"


def test_a_short_command_runs_no_collection_and_the_engine_resumes_the_collector(
        tmp_path: Path) -> None:
    """`--help` starts and ends without one pass of the collector (without the pause Python
    makes dozens while the libraries import); `status` opens the engine, where the collector
    is back on, the startup objects frozen, and collects while it works."""
    before = ("passes = []\n"
              "gc.callbacks.append(lambda phase, info: passes.append(phase == 'start'))\n")
    after = ("sys.stderr.write(json.dumps({'passes': sum(passes), 'enabled': gc.isenabled(),"
             " 'frozen': gc.get_freeze_count()}) + '\\n')\n")
    probe = _run_main(before=before, after=after)

    helped = _python(probe, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    figures = json.loads(helped.stderr.splitlines()[-1])
    assert figures["passes"] == 0 and figures["enabled"] is True

    status = _python(probe, tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    figures = json.loads(status.stderr.splitlines()[-1])
    assert figures["passes"] > 0 and figures["enabled"] is True
    assert figures["frozen"] > 10_000


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()  # what the pause froze goes back to the collector
    gc.enable() if was else gc.disable()


@pytest.mark.usefixtures("collector_on")
def test_pause_and_resume_in_process() -> None:
    """The pause ends with its block; resume outside a pause changes nothing; a caller that
    had switched the collector off keeps it off."""
    with _startup.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()

    _startup.resume_collector()
    assert gc.isenabled()

    with _startup.collector_paused():
        _startup.resume_collector()
        assert gc.isenabled()  # resumed early: the work that follows is collected
    assert gc.isenabled()

    gc.disable()
    with _startup.collector_paused():
        _startup.resume_collector()
        assert not gc.isenabled()
    assert not gc.isenabled()
