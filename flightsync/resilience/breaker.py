"""The circuit breaker as a pure state machine (no I/O, no clock of its own).

    CLOSED --failure_threshold consecutive failures--> OPEN
    OPEN --reset_timeout passed, next caller gets the probe--> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED
    HALF_OPEN --probe fails--> OPEN (open_since kept)

While half-open exactly one probe is out; a probe that never reports back (its process was
killed) is given up after ``reset_timeout`` so that another caller may probe. Times are epoch
seconds so that state written by one process means the same in the next.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from flightsync.config import BreakerSettings


class BreakerStatus(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One provider's breaker.

    ``opened_at``: the latest opening; ``open_since``: the first opening since the breaker was
    last closed (the "open for more than 5 minutes" alert reads it); ``probe_started_at``: when
    the half-open probe was granted, None when no probe is out.
    """

    state: BreakerStatus = BreakerStatus.CLOSED
    failures: int = 0
    opened_at: float | None = None
    open_since: float | None = None
    probe_started_at: float | None = None


CLOSED = BreakerState()


def probe_timeout(settings: BreakerSettings) -> float:
    """How long a granted probe may stay silent before another caller may probe."""
    return settings.reset_timeout_seconds


def decide(state: BreakerState, now: float,
           settings: BreakerSettings) -> tuple[bool, BreakerState]:
    """May a call go out now? Returns (allowed, the state to store)."""
    if state.state is BreakerStatus.CLOSED:
        return True, state
    if state.state is BreakerStatus.OPEN:
        opened_at = state.opened_at if state.opened_at is not None else now
        if now < opened_at + settings.reset_timeout_seconds:
            return False, state
        return True, replace(state, state=BreakerStatus.HALF_OPEN, probe_started_at=now)
    if (state.probe_started_at is None
            or now >= state.probe_started_at + probe_timeout(settings)):
        return True, replace(state, probe_started_at=now)
    return False, state


def on_success(state: BreakerState, now: float, settings: BreakerSettings) -> BreakerState:
    """A call answered: the provider works, whatever the breaker thought."""
    del now, settings  # part of the uniform signature; a success needs neither
    return state if state == CLOSED else CLOSED


def on_failure(state: BreakerState, now: float, settings: BreakerSettings) -> BreakerState:
    """A call failed after its retries (and the error counts for the breaker)."""
    failures = state.failures + 1
    if state.state is BreakerStatus.HALF_OPEN:
        return replace(state, state=BreakerStatus.OPEN, failures=failures, opened_at=now,
                       probe_started_at=None)
    if state.state is BreakerStatus.OPEN:
        # A late failure from a call granted before the opening: counted, timeout not extended.
        return replace(state, failures=failures)
    if failures >= settings.failure_threshold:
        return BreakerState(state=BreakerStatus.OPEN, failures=failures, opened_at=now,
                            open_since=now)
    return replace(state, failures=failures)


def next_probe_at(state: BreakerState, settings: BreakerSettings) -> float | None:
    """When a caller may next be granted a probe (None while closed)."""
    if state.state is BreakerStatus.OPEN and state.opened_at is not None:
        return state.opened_at + settings.reset_timeout_seconds
    if state.state is BreakerStatus.HALF_OPEN and state.probe_started_at is not None:
        return state.probe_started_at + probe_timeout(settings)
    return None
