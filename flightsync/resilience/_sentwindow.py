"""The sent-window limit: its values, the storage interface it needs, and its arithmetic.

Light on purpose (no ``limits``, no diskcache, no Redis): a run whose providers have no budget
imports only this. The storages live in :mod:`flightsync.resilience._limits`, whose docstring
says why a call counts from its admission until one window after it finished.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BUCKETS = 100  # finished calls are counted in this many buckets per window


@dataclass(frozen=True, slots=True)
class Window:
    """``amount`` calls per ``seconds`` (a moving window)."""

    amount: int
    seconds: int

    @property
    def name(self) -> str:
        return f"{self.amount}-{self.seconds}"


@dataclass(frozen=True, slots=True)
class Charge:
    """Add ``amount`` to counter ``key`` (kept ``expiry`` seconds after it is created); refuse
    the call instead when the counter would pass ``cap``."""

    key: str
    amount: int
    expiry: int
    cap: int | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """What :meth:`acquire_sent` decided: ``ok``; ``wait`` (a window is full: ``wait``
    seconds at least before a slot frees, 0 when calls in flight fill it); ``cap`` (charge
    ``charge`` would pass its cap); or ``blocked`` (the block key exists for ``wait`` more
    seconds)."""

    verdict: str
    wait: float = 0.0
    charge: int = -1


def _bucket_width(window: Window) -> float:
    return window.seconds / BUCKETS


class SentWindowStorage:
    """The operations the budget code needs beyond ``limits``' ``Storage``."""

    def acquire_sent(self, key: str, windows: Sequence[Window], token: str, hold: float, *,
                     charges: Sequence[Charge] = (), block: str | None = None) -> Admission:
        """Admit one call under every window, or say why not; on ``ok`` the charges are
        added and the call counts as in flight (for at most ``hold`` seconds)."""
        raise NotImplementedError

    def settle_sent(self, key: str, windows: Sequence[Window], token: str) -> None:
        """The call ``token`` has finished: count it from now on by its finishing time."""
        raise NotImplementedError

    def sent_counts(self, key: str, windows: Sequence[Window]) -> list[int]:
        """How many calls each window counts now (in flight included)."""
        raise NotImplementedError

    def counter(self, key: str) -> int:
        """A charge counter's value (0 when absent)."""
        raise NotImplementedError

    def block_for(self, key: str, seconds: float) -> None:
        """Make ``key`` block calls for ``seconds`` (extended, never shortened)."""
        raise NotImplementedError

    def blocked_until(self, key: str) -> float | None:
        """The epoch time ``key`` stops blocking, or None."""
        raise NotImplementedError

    def close(self) -> None:
        """Close this process's connection."""


# -- the pure window arithmetic, shared by the diskcache backend and mirrored in Lua ---------

def prune(state: dict[str, Any], windows: Sequence[Window], now: float) -> None:
    """Drop buckets out of their window; an in-flight call past its hold (its process died)
    counts as finished at the end of its hold."""
    flying: dict[str, float] = state.setdefault("f", {})
    for token, until in list(flying.items()):
        if until <= now:
            del flying[token]
            count_finished(state, windows, until)
    for window in windows:
        buckets: dict[int, int] = state.setdefault("w", {}).setdefault(window.name, {})
        width = _bucket_width(window)
        for bucket in [b for b in buckets if (b + 1) * width <= now - window.seconds]:
            del buckets[bucket]


def count_finished(state: dict[str, Any], windows: Sequence[Window], at: float) -> None:
    for window in windows:
        buckets = state.setdefault("w", {}).setdefault(window.name, {})
        bucket = math.floor(at / _bucket_width(window))
        buckets[bucket] = buckets.get(bucket, 0) + 1


def window_wait(state: dict[str, Any], window: Window, now: float) -> float | None:
    """None when ``window`` has room; else the least time before it may have some."""
    flying = len(state.get("f", {}))
    buckets: dict[int, int] = state.get("w", {}).get(window.name, {})
    count = flying + sum(buckets.values())
    if count < window.amount:
        return None
    width = _bucket_width(window)
    for bucket in sorted(buckets):
        count -= buckets[bucket]
        if count < window.amount:
            return max((bucket + 1) * width + window.seconds - now, 0.0)
    # Full of calls still in flight: when one finishes is not known yet, so the caller
    # polls (0) until its own wait allowance runs out.
    return 0.0


