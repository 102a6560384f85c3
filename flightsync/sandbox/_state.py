"""Mutable run-time state behind one lock: the scenario in force, issued tokens, how often each
scripted fault has fired, the seeded RNG of random failures and the request counters."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime

from flightsync.sandbox._base import Provider, Target
from flightsync.sandbox._config import ANY_PROVIDER, Fault, SandboxConfig
from flightsync.sandbox._truth import FlightTruth, flight_truth, with_overrides

_COUNTERS = ("requests", "token_requests", "faults")
# Receipt times kept per provider (``/_sandbox/requests``): the newest this many.
REQUEST_TIMES_KEPT = 100_000


class SandboxState:
    def __init__(self, config: SandboxConfig, providers: Mapping[str, Provider]) -> None:
        self._lock = threading.Lock()
        self._providers = providers
        self._tokens: dict[str, tuple[str, float]] = {}   # token -> (provider, expires, monotonic)
        self._config = config
        self._fault_uses: dict[int, int] = {}
        self._rng = random.Random(config.seed)  # noqa: S311 - reproducible, not security
        self._stats = self._empty_stats()
        self._times: dict[str, deque[float]] = self._empty_times()

    def _empty_times(self) -> dict[str, deque[float]]:
        return {name: deque(maxlen=REQUEST_TIMES_KEPT) for name in self._providers}

    def _empty_stats(self) -> dict[str, dict[str, int]]:
        return {name: dict.fromkeys(_COUNTERS, 0) for name in self._providers}

    @property
    def config(self) -> SandboxConfig:
        return self._config

    def set_config(self, config: SandboxConfig) -> None:
        """Put a new scenario in force; scripted faults start counting from zero again."""
        with self._lock:
            self._config = config
            self._fault_uses.clear()
            self._rng = random.Random(config.seed)  # noqa: S311 - reproducible, not security

    def reset(self) -> None:
        """Zero the counters and the scripted faults' use counts (tokens stay valid)."""
        with self._lock:
            self._stats = self._empty_stats()
            self._times = self._empty_times()
            self._fault_uses.clear()
            self._rng = random.Random(self._config.seed)  # noqa: S311 - reproducible

    def stats(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: dict(counters) for name, counters in self._stats.items()}

    def count(self, provider: str, counter: str) -> None:
        with self._lock:
            self._stats[provider][counter] += 1
            if counter == "requests":  # when each data call arrived (epoch seconds)
                self._times[provider].append(time.time())

    def request_times(self) -> dict[str, list[float]]:
        with self._lock:
            return {name: list(times) for name, times in self._times.items()}

    def now(self) -> datetime:
        return self._config.now or datetime.now(UTC)

    def plan(self, provider: str) -> str:
        return self._config.plan_of(provider)

    def issue_token(self, provider: str) -> tuple[str, int]:
        token = secrets.token_urlsafe(24)
        ttl = self._config.token_ttl_seconds
        with self._lock:
            self._tokens[token] = (provider, time.monotonic() + ttl)
        return token, int(ttl)

    def token_state(self, provider: str, token: str) -> str:
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or issued[0] != provider:
            return "unknown"
        return "valid" if time.monotonic() < issued[1] else "expired"

    def expire(self, token: str) -> None:
        """Make ``token`` expired now, as a provider does when it revokes one early."""
        with self._lock:
            if token in self._tokens:
                self._tokens[token] = (self._tokens[token][0], time.monotonic())

    def truth(self, provider: str, carrier: str, number: int, day: date) -> FlightTruth | None:
        return self.truth_under(self._config, provider, carrier, number, day)

    def truth_under(self, config: SandboxConfig, provider: str, carrier: str, number: int,
                    day: date) -> FlightTruth | None:
        """The flight as ``provider`` reports it under the scenario ``config``."""
        if not self._providers[provider].covers(carrier):
            return None
        truth = flight_truth(carrier, number, day)
        designator = truth.designator
        overrides = [o for o in config.overrides
                     if o.provider in (ANY_PROVIDER, provider)
                     and o.flight in (None, designator) and o.date in (None, day)]
        if not overrides:
            return truth
        legs = list(truth.legs)
        for override in overrides:
            for index, leg in enumerate(legs):
                if override.leg in (None, index):
                    legs[index] = with_overrides(leg, dict(override.fields))
        return replace(truth, legs=tuple(legs))

    def pick_fault(self, provider: str, target: Target | None) -> Fault | None:
        """The first scripted fault that applies to this call and has uses left (consumed)."""
        with self._lock:
            for index, fault in enumerate(self._config.faults):
                if fault.provider not in (ANY_PROVIDER, provider):
                    continue
                if fault.flight is not None and (target is None
                                                 or target.designator != fault.flight):
                    continue
                if fault.date is not None and (target is None or target.day != fault.date):
                    continue
                used = self._fault_uses.get(index, 0)
                if fault.times is not None and used >= fault.times:
                    continue
                self._fault_uses[index] = used + 1
                return fault
            return None

    def random_failure(self) -> bool:
        """True for the share ``fail_rate`` of calls, from the scenario's seeded RNG."""
        with self._lock:
            rate = self._config.fail_rate
            return rate > 0 and self._rng.random() < rate
