"""The engine's own guard on provider calls: a call still running a grace period past its
deadline is given up on, so the engine never waits on a provider thread beyond it.

The provider layer already ends every socket operation by the call's deadline
(providers/_transport.py); what it cannot interrupt is a worker blocked elsewhere (a DNS
lookup, a plugin waiting on something that is not its HTTP client). For those, one daemon
thread wakes at the earliest hard stop and hands each overdue call to ``on_overdue``, which
reports it as a timeout in the worker's place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")


class Watchdog(Generic[K]):
    """Calls ``on_overdue(key)`` once for each watched key not forgotten by its stop time."""

    def __init__(self, on_overdue: Callable[[K], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_overdue = on_overdue
        self._clock = clock
        self._stops: dict[K, float] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, key: K, stop_at: float) -> None:
        """Hand ``key`` to ``on_overdue`` unless it is forgotten by ``stop_at``."""
        with self._wake:
            if self._closed:
                return
            self._stops[key] = stop_at
            if self._thread is None:
                # A daemon: a watchdog must never be what keeps the process alive.
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="flightsync-watchdog")
                self._thread.start()
            self._wake.notify()

    def forget(self, key: K) -> None:
        with self._wake:
            self._stops.pop(key, None)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._stops.clear()
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._closed:
                    return
                now = self._clock()
                overdue = [key for key, stop in self._stops.items() if stop <= now]
                for key in overdue:
                    del self._stops[key]
                if not overdue:
                    soonest = min(self._stops.values(), default=None)
                    self._wake.wait(None if soonest is None else soonest - now)
                    continue
            for key in overdue:  # outside the lock: the handler may take its own
                self._on_overdue(key)
