"""flightsync.resilience: what wraps every provider call (docs/CONTRACTS.md section 7).

- :class:`StateStore` / :func:`open_state`: where breakers, tokens and the cache live: the
  private state directory, or Redis shared by every host (``state_url``), each part a
  :class:`Bucket` (the interface in :mod:`flightsync.resilience._backend`).
- :class:`Breakers`: one circuit breaker per provider, persisted and shared across processes,
  driven by the pure state machine in :mod:`flightsync.resilience.breaker`.
- :func:`call_with_retry`: retries with backoff, jitter, ``Retry-After`` and a time budget.
- :class:`ObservationCache`: provider observations per (provider, flight, date), TTL tiers.
- :class:`Budgets`: each provider's rate limits, quota and money, shared by every process
  (state directory) or host (Redis, ``state_url``); :func:`provider_budgets` reads them.

The names load on first use (PEP 562): a cached ``sync`` needs the cache alone, and retry
brings stamina and tenacity (~15 ms of a process that must start in well under 200 ms), so
:func:`call_with_retry` loads them on its first call: importing the engine (``status``,
``explain``, ...) does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flightsync._lazy import lazy_exports

if TYPE_CHECKING:
    from flightsync.config import RetrySettings
    from flightsync.resilience._backend import Backend, Bucket
    from flightsync.resilience._breakers import Breakers, BreakerView
    from flightsync.resilience._budget import Budgets, ProviderBudget, provider_budgets
    from flightsync.resilience._limits import open_storage
    from flightsync.resilience._sentwindow import SentWindowStorage
    from flightsync.resilience._state import StateStore, open_state
    from flightsync.resilience._tiers import Tier, TimedLeg, tier
    from flightsync.resilience.breaker import (
        BreakerState,
        BreakerStatus,
        decide,
        next_probe_at,
        on_failure,
        on_success,
    )
    from flightsync.resilience.cache import ObservationCache, cache_namespace
    from flightsync.resilience.retry import PlannedWait, backoff_seconds

_HOMES: dict[str, str] = {
    "Backend": "_backend", "Bucket": "_backend",
    "Breakers": "_breakers", "BreakerView": "_breakers", "StateStore": "_state",
    "open_state": "_state",
    "Tier": "_tiers", "TimedLeg": "_tiers", "tier": "_tiers",
    "BreakerState": "breaker", "BreakerStatus": "breaker", "decide": "breaker",
    "next_probe_at": "breaker", "on_failure": "breaker", "on_success": "breaker",
    "ObservationCache": "cache", "cache_namespace": "cache",
    "Budgets": "_budget", "ProviderBudget": "_budget", "provider_budgets": "_budget",
    "open_storage": "_limits", "SentWindowStorage": "_sentwindow",
    "PlannedWait": "retry", "backoff_seconds": "retry",
}

__all__ = [
    "Backend",
    "BreakerState",
    "BreakerStatus",
    "BreakerView",
    "Breakers",
    "Bucket",
    "Budgets",
    "ObservationCache",
    "PlannedWait",
    "ProviderBudget",
    "SentWindowStorage",
    "StateStore",
    "Tier",
    "TimedLeg",
    "backoff_seconds",
    "cache_namespace",
    "call_with_retry",
    "decide",
    "next_probe_at",
    "on_failure",
    "on_success",
    "open_state",
    "open_storage",
    "provider_budgets",
    "tier",
]


_T = TypeVar("_T")


def call_with_retry(fn: Callable[[], _T], settings: RetrySettings, *, provider: str,
                    on_wait: Callable[[PlannedWait], None] | None = None,
                    clock: Callable[[], float] = time.monotonic,
                    deadline: float | None = None) -> _T:
    """Call ``fn`` with retries per ``settings``; raise its last error when they run out
    (:func:`flightsync.resilience.retry.call_with_retry`, loaded on the first call)."""
    from flightsync.resilience import retry  # noqa: PLC0415 - see the module docstring

    return retry.call_with_retry(fn, settings, provider=provider, on_wait=on_wait, clock=clock,
                                 deadline=deadline)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _HOMES)
