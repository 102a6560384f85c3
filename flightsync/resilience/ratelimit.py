"""Client-side rate limits per provider, shared by the worker threads of one process.

Each limiter is a token bucket in its GCRA form: one "theoretical arrival time" advanced by
``1 / per_second`` per call, so the state is a single float under a lock and a caller sleeps
exactly until its slot, outside the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from flightsync.config import ProviderSettings, Settings


class RateLimiter:
    """At most ``per_second`` calls per second, with bursts of up to ``burst`` calls."""

    def __init__(self, per_second: float, *, burst: int = 1,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.per_second = per_second
        self._interval = 1.0 / per_second
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = float("-inf")

    def acquire(self) -> float:
        """Block until this caller may go; returns how long it waited, in seconds."""
        with self._lock:
            now = self._clock()
            slot = max(self._next_slot, now)
            self._next_slot = slot + self._interval
        wait = slot - self._tolerance - now
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0


class RateLimiters:
    """One limiter per provider whose settings give ``rate_limit_per_second``."""

    def __init__(self, settings: Settings | Mapping[str, ProviderSettings]) -> None:
        providers = settings.providers if isinstance(settings, Settings) else settings
        self._limiters = {
            name: RateLimiter(conf.rate_limit_per_second)
            for name, conf in providers.items()
            if conf.rate_limit_per_second is not None
        }

    def get(self, provider: str) -> RateLimiter | None:
        """The provider's limiter, or None when it has no limit."""
        return self._limiters.get(provider)

    def acquire(self, provider: str) -> float:
        """Wait for ``provider``'s limiter (no wait without a limit); returns the wait."""
        limiter = self._limiters.get(provider)
        return 0.0 if limiter is None else limiter.acquire()
