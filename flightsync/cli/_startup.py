"""The console script: a command's start and end, where most of a short command's time goes.

Start: importing the libraries, reading the settings and parsing the arguments make a few
hundred thousand objects that live as long as the process, and next to no cyclic garbage;
every pass of the garbage collector over them is wasted. So the collector is paused before the
first import and resumed where long work begins (the engine opened, the sandbox serving), after
``gc.freeze`` has moved the objects made so far out of the generations later passes walk, so a
batch's collections are cheaper too. A short command that never gets there finishes without a
pass: reference counting frees all but cycles, and it exits within a second.

An interrupted run (exit 130) exits that way at once, without joining the fetch threads a
hanging provider still holds (cli/_interrupt.py).

End: tearing the interpreter down (clearing every module, collecting what is left) takes
40-70 ms once SQLAlchemy or pydantic are loaded, for a process about to vanish. Once the
command has finished, the process exits with its code right after the usual shutdown steps
(other threads joined, ``atexit`` handlers run, stdout and stderr flushed), skipping only the
teardown. Every write is committed, and every file closed, before a command returns.

benchmarks/RESULTS.md has what each of these bought.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_paused = False
# The finished command's exit status; None until then (a crash keeps the normal shutdown).
_exit_status: int | None = None
# Python's own status when flushing stdout fails at exit.
_FLUSH_FAILED = 120
_INTERRUPTED = 130  # cli/_interrupt.py


def main() -> None:
    """Console-script entry point (`flightsync`, `python -m flightsync`).

    The process then exits with the command's status, even when a caller (a test) runs more
    code after this returns.
    """
    # Registered before anything is imported, so it runs after every other atexit handler;
    # unless some were registered earlier (coverage, from a .pth file): those would be
    # skipped, so that process keeps the normal shutdown.
    if _atexit_handlers() == 0:
        atexit.register(_exit_without_teardown)
    with collector_paused():
        from flightsync.cli._app import run  # noqa: PLC0415 - imported under the pause

        try:
            run(sys.argv[1:])
        except SystemExit as done:
            _finished(done.code)
            if _exit_status == _INTERRUPTED:
                # Interrupted: everything finished is written and printed; fetch threads
                # may still hang on the wire, and the normal shutdown would join them.
                _exit_without_teardown()
            raise
        _finished(0)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector for the body, unless the caller had switched it off already; it
    resumes (:func:`resume_collector`) when the body ends, if nothing resumed it before."""
    global _paused  # noqa: PLW0603 - one process-wide switch, like the collector itself
    if not gc.isenabled():
        yield
        return
    gc.disable()
    _paused = True
    try:
        yield
    finally:
        resume_collector()


def resume_collector() -> None:
    """End the startup pause: freeze what startup made, collect from here on. A no-op when
    nothing is paused (in-process callers, tests, a second call).

    Without the freeze, the first allocation after the pause would start a pass over every
    object the pause let pile up in the youngest generation.
    """
    global _paused  # noqa: PLW0603
    if not _paused:
        return
    _paused = False
    gc.freeze()
    gc.enable()


def _atexit_handlers() -> int:
    count = getattr(atexit, "_ncallbacks", None)  # CPython's; elsewhere assume some
    return int(count()) if callable(count) else 1


def _finished(code: object) -> None:
    global _exit_status  # noqa: PLW0603 - read once, at exit
    # SystemExit's rules: None is success, an int is the status, anything else was printed
    # as a message and means 1.
    if code is None:
        _exit_status = 0
    elif isinstance(code, int):
        _exit_status = code
    else:
        _exit_status = 1


def _exit_without_teardown() -> None:
    if _exit_status is None:
        return
    status = _exit_status
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            status = status or _FLUSH_FAILED
    os._exit(status & 0xFF)
