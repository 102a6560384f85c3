"""Retries around one provider call, through stamina.

Only a ProviderError whose ``retryable`` holds is retried (timeouts, connection errors, 5xx,
429); anything else is raised at once. Each wait is computed here and handed to stamina as a
custom backoff: exponential from ``backoff_initial_seconds`` with jitter, capped at
``backoff_max_seconds``, and at least the provider's ``Retry-After``. A wait that would not fit
in what is left of ``budget_seconds``, or before the call's ``deadline`` (the hard end the
provider layer enforces on every exchange), ends the retries and the last error is raised.

``stamina.set_testing(True)`` removes the sleeping (tests add ``attempts=N, cap=True`` to keep
the configured attempts); the planned waits still reach ``on_wait`` so tests can assert them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina
import structlog

from flightsync.config import RetrySettings
from flightsync.errors import ProviderError, ProviderRateLimited

log = structlog.get_logger(__name__)

# stamina's own hooks log `stamina.retry_scheduled` with `callable='<context block>'` and no
# provider: _Plan logs `provider.retry.scheduled` instead, naming provider, attempt and wait.
stamina.instrumentation.set_on_retry_hooks(())

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PlannedWait:
    """A wait before attempt ``attempt`` (2 = the first retry), and why."""

    provider: str
    attempt: int
    seconds: float
    error: str                   # the error code of the failed attempt
    retry_after: float | None    # what the provider asked for, if it did


def backoff_seconds(failed_attempt: int, settings: RetrySettings) -> float:
    """Exponential backoff with jitter after attempt ``failed_attempt`` (1-based), capped."""
    # The exponent is capped so a huge attempt count cannot overflow; the cap applies anyway.
    base = settings.backoff_initial_seconds * 2.0 ** min(failed_attempt - 1, 64)
    # Jitter up to one initial step spreads out workers that failed together (not security).
    jitter = random.uniform(0, settings.backoff_initial_seconds)  # noqa: S311
    return min(settings.backoff_max_seconds, base + jitter)


class _Plan:
    """Decides after each failed attempt whether and how long to wait (stamina's backoff hook).

    Time spent counts both the clock and the planned waits, so the budget holds when test
    mode skips the sleeping.
    """

    def __init__(self, settings: RetrySettings, provider: str,
                 clock: Callable[[], float], deadline: float | None = None) -> None:
        self.settings = settings
        self.provider = provider
        self.clock = clock
        self.deadline = deadline
        self.started = clock()
        self.failed = 0
        self.waited = 0.0
        self.pending: PlannedWait | None = None

    def __call__(self, exc: Exception) -> bool | float:
        if not isinstance(exc, ProviderError) or not exc.retryable:
            return False
        self.failed += 1
        if self.failed >= self.settings.attempts:
            return False
        retry_after = exc.retry_after if isinstance(exc, ProviderRateLimited) else None
        wait = backoff_seconds(self.failed, self.settings)
        if retry_after is not None:
            wait = max(wait, retry_after)
        spent = max(self.clock() - self.started, self.waited)
        left = self.settings.budget_seconds - spent
        if self.deadline is not None:
            left = min(left, self.deadline - self.clock())
        if wait > left:
            log.warning("provider.retry.budget_exhausted", provider=self.provider,
                        attempt=self.failed, wait=round(wait, 3), error=exc.code,
                        budget=self.settings.budget_seconds)
            return False
        self.waited += wait
        self.pending = PlannedWait(self.provider, self.failed + 1, wait, exc.code, retry_after)
        log.warning("provider.retry.scheduled", provider=self.provider,
                    attempt=self.failed + 1, of=self.settings.attempts,
                    wait_seconds=round(wait, 3), error=exc.code)
        return wait


def call_with_retry(fn: Callable[[], T], settings: RetrySettings, *, provider: str,
                    on_wait: Callable[[PlannedWait], None] | None = None,
                    clock: Callable[[], float] = time.monotonic,
                    deadline: float | None = None) -> T:
    """Call ``fn`` with retries per ``settings``; raise its last error when they run out.

    ``on_wait`` sees every wait just before the attempt it precedes (after the sleep).
    ``deadline`` (on ``clock``) is when the whole call must be over: no retry starts that
    would have to wait past it.
    """
    plan = _Plan(settings, provider, clock, deadline)
    for attempt in stamina.retry_context(on=plan, attempts=settings.attempts,
                                         timeout=settings.budget_seconds):
        with attempt:
            waited, plan.pending = plan.pending, None
            if waited is not None:
                log.info("provider.retry", provider=provider, attempt=waited.attempt,
                         waited=round(waited.seconds, 3), error=waited.error)
                if on_wait is not None:
                    on_wait(waited)
            return fn()
    raise AssertionError("unreachable: stamina re-raises the last error")
