"""Breakers per provider, persisted in the state store and shared by every process (and,
with ``state_url``, every host): a breaker opened by one is open for all.

Each decision is one atomic read-modify-write of the store (``Bucket.update``: a diskcache
transaction, or a Redis ``WATCH``/``MULTI``), so when several runs race for the half-open
probe exactly one wins. The common case, a closed breaker, is a single read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import structlog

from flightsync.config import BreakerSettings
from flightsync.models import to_json_value
from flightsync.resilience._backend import Bucket
from flightsync.resilience._state import StateStore, read_entry, unreadable
from flightsync.resilience.breaker import (
    CLOSED,
    BreakerState,
    BreakerStatus,
    decide,
    next_probe_at,
    on_failure,
    on_success,
)

log = structlog.get_logger(__name__)

_Row = tuple[str, int, float | None, float | None, float | None]
_Transition = Callable[[BreakerState, float, BreakerSettings], BreakerState]


@dataclass(frozen=True, slots=True)
class BreakerView:
    """One breaker as ``status`` shows it (docs/CONTRACTS.md section 3)."""

    state: str
    failures: int
    opened_at: datetime | None
    open_since: datetime | None
    next_probe_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures,
                "opened_at": to_json_value(self.opened_at),
                "open_since": to_json_value(self.open_since),
                "next_probe_at": to_json_value(self.next_probe_at)}


def _to_row(state: BreakerState) -> _Row:
    # Plain values rather than a pickled dataclass: state written by one release must read
    # back in the next even if the class moves.
    return (state.state.value, state.failures, state.opened_at, state.open_since,
            state.probe_started_at)


def _from_row(provider: str, row: object) -> BreakerState:
    """The stored row as a state; a row that is not one (damaged, or written by something
    else) starts closed, with a warning, rather than block a provider or crash every run."""
    try:
        status, failures, opened_at, open_since, probe = cast(_Row, row)
        times = (opened_at, open_since, probe)
        if not (isinstance(failures, int) and not isinstance(failures, bool) and failures >= 0
                and all(_is_time(t) for t in times)):
            raise ValueError("a count or time of the wrong type")
        return BreakerState(BreakerStatus(status), failures, opened_at, open_since, probe)
    except (TypeError, ValueError) as exc:
        unreadable("breakers", provider, exc)
        return CLOSED


def _is_time(value: object) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool)
                             and math.isfinite(value))


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class Breakers:
    """The breakers of all providers. Only ProviderErrors whose ``counts_for_breaker`` holds
    should be reported through :meth:`record_failure`; the engine decides that."""

    def __init__(self, store: StateStore, settings: BreakerSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    @property
    def _bucket(self) -> Bucket:
        return self._store.breakers

    def _read(self, provider: str) -> BreakerState:
        row = read_entry(self._bucket, provider, part="breakers")
        return CLOSED if row is None else _from_row(provider, row)

    def _change(self, provider: str, transition: _Transition,
                ) -> tuple[BreakerState, BreakerState]:
        """Apply ``transition`` atomically; (the state it saw, the state it left)."""
        seen: list[BreakerState] = []

        def change(row: object | None) -> object | None:
            state = CLOSED if row is None else _from_row(provider, row)
            new = transition(state, self._clock(), self._settings)
            seen[:] = [state, new]
            return row if new == state else _to_row(new)

        self._bucket.update(provider, change)
        return seen[0], seen[1]

    def before_call(self, provider: str) -> bool:
        """True: call the provider. False: skip it (open, or a half-open probe is out)."""
        seen = self._read(provider)
        allowed, wanted = decide(seen, self._clock(), self._settings)
        if wanted == seen:
            # Closed, or refused without a change: no write, so no lock for the common cases.
            return allowed
        granted: list[bool] = []

        def grant(state: BreakerState, now: float, settings: BreakerSettings) -> BreakerState:
            allowed, new = decide(state, now, settings)
            granted[:] = [allowed]
            return new

        state, _ = self._change(provider, grant)
        allowed = granted[0]
        if allowed:
            # A half-open breaker granting again means the previous probe never reported back.
            log.info("breaker.probe", provider=provider,
                     replaces_lost_probe=state.state is BreakerStatus.HALF_OPEN)
        return allowed

    def record_success(self, provider: str) -> None:
        """The provider answered (a "no such flight" answer included)."""
        if self._read(provider) == CLOSED:
            return
        self._update(provider, on_success)

    def record_failure(self, provider: str) -> None:
        """A call failed after its retries."""
        self._update(provider, on_failure)

    def _update(self, provider: str, transition: _Transition) -> None:
        state, new = self._change(provider, transition)
        if new.state is not state.state:
            log.warning("breaker.state", provider=provider, old=state.state.value,
                        new=new.state.value, failures=new.failures)

    def state(self, provider: str) -> BreakerState:
        """The stored state of one provider's breaker (closed if never written)."""
        return self._read(provider)

    def snapshot(self, providers: Iterable[str] = ()) -> dict[str, BreakerView]:
        """Every breaker with stored state, plus ``providers`` (closed when never written)."""
        names = sorted({*self._bucket.keys(), *providers})
        views: dict[str, BreakerView] = {}
        for name in names:
            state = self._read(name)
            views[name] = BreakerView(
                state=state.state.value, failures=state.failures,
                opened_at=_when(state.opened_at), open_since=_when(state.open_since),
                next_probe_at=_when(next_probe_at(state, self._settings)))
        return views

    def reset(self, provider: str | None = None) -> None:
        """Close one provider's breaker, or all of them."""
        if provider is None:
            self._bucket.clear()
        else:
            self._bucket.delete(provider)
        log.info("breaker.reset", provider=provider or "all")
