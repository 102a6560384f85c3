"""The engine's clock (``Engine.clock``): the instants a run stamps on what it writes, due
selection and leases read, and the seconds its time budgets count.

``SystemClock`` is the real one. ``ManualClock`` is set by its owner: the storage benchmark
(``python -m benchmarks --storage``) moves it forward together with the sandbox's ``now`` so
45 simulated days take minutes, and tests fix it to place rows on exact horizons.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for budgets and deadlines)."""


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """Instants that move only when told; ``monotonic`` stays real (a time budget counts
    the seconds a slice of work really takes, not simulated ones)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return time.monotonic()

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)

    def advance(self, by: timedelta) -> None:
        self._now += by


__all__ = ["Clock", "ManualClock", "SystemClock"]
