"""flightsync.resilience: what wraps every provider call (DESIGN.md section 7).

- :class:`StateStore`: the private state directory and its diskcache folders.
- :class:`Breakers`: one circuit breaker per provider, persisted and shared across processes,
  driven by the pure state machine in :mod:`flightsync.resilience.breaker`.
- :func:`call_with_retry`: retries with backoff, jitter, ``Retry-After`` and a time budget.
- :class:`ObservationCache`: provider observations per (provider, flight, date), TTL tiers.
- :class:`RateLimiter` / :class:`RateLimiters`: client-side request rates per provider.
"""

from flightsync.resilience._breakers import Breakers, BreakerView
from flightsync.resilience._state import StateStore
from flightsync.resilience._tiers import Tier, TimedLeg, tier
from flightsync.resilience.breaker import (
    BreakerState,
    BreakerStatus,
    decide,
    next_probe_at,
    on_failure,
    on_success,
)
from flightsync.resilience.cache import ObservationCache
from flightsync.resilience.ratelimit import RateLimiter, RateLimiters
from flightsync.resilience.retry import PlannedWait, backoff_seconds, call_with_retry

__all__ = [
    "BreakerState",
    "BreakerStatus",
    "BreakerView",
    "Breakers",
    "ObservationCache",
    "PlannedWait",
    "RateLimiter",
    "RateLimiters",
    "StateStore",
    "Tier",
    "TimedLeg",
    "backoff_seconds",
    "call_with_retry",
    "decide",
    "next_probe_at",
    "on_failure",
    "on_success",
    "tier",
]
