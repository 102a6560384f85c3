"""Crash points for the tests: ``FLIGHTSYNC_TEST_KILL_AT=<step>[:<n>]`` makes the process
SIGKILL itself the n-th time (default the first) it reaches ``<step>``.

The spool's promise (any kill at any instant is harmless) is only checkable if a test can
place the kill between two given steps, every time, instead of at a random moment; the steps
are named where the code reaches them (``reached``). Unset, the check is one dictionary
lookup. Nothing but the tests sets the variable; it is not a user-facing setting.
"""

from __future__ import annotations

import os
import signal

ENV = "FLIGHTSYNC_TEST_KILL_AT"
_seen: dict[str, int] = {}


def reached(step: str) -> None:
    """Mark ``step`` as reached; die here (SIGKILL, no clean-up) when the variable says so."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    if _seen[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
