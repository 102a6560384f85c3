"""Client-side rate limits: a token bucket shared by threads, one per configured provider."""

from __future__ import annotations

import threading
import time

import pytest

from flightsync.config import ProviderSettings, Settings
from flightsync.resilience import RateLimiter, RateLimiters


class FrozenTime:
    """A clock that stands still and a sleep that only records, for exact arithmetic."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_acquisitions_from_many_threads_are_spaced_by_the_rate() -> None:
    """N acquisitions across threads take at least (N-1)/rate seconds in total."""
    rate, threads, each = 200.0, 4, 6
    limiter = RateLimiter(rate)
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait()
        for _ in range(each):
            limiter.acquire()

    started = time.monotonic()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    assert elapsed >= (threads * each - 1) / rate


def test_each_caller_waits_for_its_own_slot() -> None:
    """Back-to-back callers wait one interval more each; the first does not wait."""
    frozen = FrozenTime()
    rate = 10.0
    limiter = RateLimiter(rate, clock=frozen.clock, sleep=frozen.sleep)
    waits = [limiter.acquire() for _ in range(4)]
    assert waits[0] == 0
    assert waits[1:] == pytest.approx([k / rate for k in range(1, 4)])
    assert frozen.slept == pytest.approx(waits[1:])


def test_idle_time_is_not_banked_beyond_the_burst() -> None:
    """After a long idle period only `burst` calls go at once; then spacing resumes."""
    frozen = FrozenTime()
    rate, burst = 5.0, 3
    limiter = RateLimiter(rate, burst=burst, clock=frozen.clock, sleep=frozen.sleep)
    limiter.acquire()
    frozen.now += 3600
    waits = [limiter.acquire() for _ in range(burst + 1)]
    assert waits[:burst] == [0.0] * burst
    assert waits[burst] == pytest.approx(1 / rate)


def test_invalid_rates_are_refused() -> None:
    """A non-positive rate or burst is a programming error."""
    with pytest.raises(ValueError, match="per_second"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1, burst=0)


def test_limiters_exist_only_for_providers_with_a_rate() -> None:
    """RateLimiters builds one limiter per provider whose settings name a rate, from the
    providers mapping or the whole Settings."""
    limiters = RateLimiters({
        "amadeus": ProviderSettings(rate_limit_per_second=10),
        "lufthansa": ProviderSettings(),
    })
    amadeus = limiters.get("amadeus")
    assert amadeus is not None
    assert amadeus.per_second == 10
    assert limiters.get("lufthansa") is None
    assert limiters.get("unknown") is None
    assert limiters.acquire("lufthansa") == 0.0
    assert limiters.get("amadeus") is amadeus
    whole = RateLimiters(Settings(providers={"flightaware": ProviderSettings(
        rate_limit_per_second=2.5)}))
    flightaware = whole.get("flightaware")
    assert flightaware is not None
    assert flightaware.per_second == 2.5
