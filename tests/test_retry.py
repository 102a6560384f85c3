"""Retries: only retryable provider errors, bounded attempts, Retry-After honoured, the time
budget respected. stamina's test mode removes the sleeping; planned waits are recorded."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import stamina
from structlog.testing import capture_logs

from flightsync.config import RetrySettings
from flightsync.errors import (
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.resilience import PlannedWait, backoff_seconds, call_with_retry

P = "amadeus"


@pytest.fixture(autouse=True)
def _configured_attempts() -> Iterator[None]:
    # conftest's test mode allows one attempt; keep the configured ones, still without sleeps.
    with stamina.set_testing(True, attempts=1000, cap=True):
        yield


class Script:
    """A provider call raising the scripted errors in turn, then ``then()`` errors forever
    (or returning "answer" when there is no ``then``)."""

    def __init__(self, *errors: Exception,
                 then: Callable[[], Exception] | None = None) -> None:
        self.errors = list(errors)
        self.then = then
        self.calls = 0
        self.raised: list[Exception] = []

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
        elif self.then is not None:
            error = self.then()
        else:
            return "answer"
        self.raised.append(error)
        raise error


def _forever(make: Callable[[], Exception]) -> Script:
    return Script(then=make)


def test_success_needs_no_retry() -> None:
    """A call that works is made once and its value returned, with no wait."""
    waits: list[PlannedWait] = []
    script = Script()
    assert call_with_retry(script, RetrySettings(), provider=P, on_wait=waits.append) == "answer"
    assert script.calls == 1
    assert waits == []


def test_retryable_errors_are_retried_until_success() -> None:
    """Timeouts and unavailability are retried; the eventual answer is returned."""
    waits: list[PlannedWait] = []
    script = Script(ProviderTimeout("t", provider=P), ProviderUnavailable("u", provider=P))
    settings = RetrySettings(attempts=3)
    assert call_with_retry(script, settings, provider=P, on_wait=waits.append) == "answer"
    assert script.calls == 3
    assert [w.attempt for w in waits] == [2, 3]
    assert [w.error for w in waits] == ["provider_timeout", "provider_unavailable"]


def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After waits at least that long before the next attempt."""
    retry_after = 7.5
    waits: list[PlannedWait] = []
    script = Script(ProviderRateLimited("slow down", provider=P, retry_after=retry_after))
    settings = RetrySettings(attempts=3, backoff_initial_seconds=0.1, backoff_max_seconds=1,
                             budget_seconds=30)
    assert call_with_retry(script, settings, provider=P, on_wait=waits.append) == "answer"
    assert script.calls == 2
    assert len(waits) == 1
    assert waits[0].seconds >= retry_after
    assert waits[0].retry_after == retry_after


def test_retry_after_is_really_slept_outside_test_mode() -> None:
    """With sleeping on, the next attempt starts no sooner than Retry-After (lower bound)."""
    retry_after = 0.05
    script = Script(ProviderRateLimited("slow down", provider=P, retry_after=retry_after))
    settings = RetrySettings(attempts=2, backoff_initial_seconds=0, backoff_max_seconds=0)
    with stamina.set_testing(False):
        started = time.monotonic()
        assert call_with_retry(script, settings, provider=P) == "answer"
        elapsed = time.monotonic() - started
    assert elapsed >= retry_after


def test_each_retry_is_logged_with_its_provider() -> None:
    """A retry emits a provider.retry event naming the provider, the attempt and the error."""
    script = Script(ProviderTimeout("t", provider=P))
    with capture_logs() as logs:
        call_with_retry(script, RetrySettings(attempts=2), provider=P)
    retries = [e for e in logs if e["event"] == "provider.retry"]
    assert len(retries) == 1
    assert retries[0]["provider"] == P
    assert retries[0]["attempt"] == 2
    assert retries[0]["error"] == "provider_timeout"


def test_retry_after_beyond_the_budget_stops_retrying() -> None:
    """A Retry-After longer than the remaining budget raises the 429 instead of waiting."""
    settings = RetrySettings(attempts=5, budget_seconds=30)
    error = ProviderRateLimited("later", provider=P, retry_after=settings.budget_seconds + 1)
    waits: list[PlannedWait] = []
    script = Script(error)
    with pytest.raises(ProviderRateLimited) as caught:
        call_with_retry(script, settings, provider=P, on_wait=waits.append)
    assert caught.value is error
    assert script.calls == 1
    assert waits == []


@pytest.mark.parametrize("error", [
    ProviderAuthError("no", provider=P, status=401),
    ProviderBadResponse("garbage", provider=P),
    FlightNotFound("none", provider=P, status=404),
    ProviderQuotaExhausted("quota", provider=P, status=429),
    ValueError("an adapter bug"),
], ids=lambda e: type(e).__name__)
def test_non_retryable_errors_are_raised_at_once(error: Exception) -> None:
    """Auth, bad response, not found, quota and non-provider errors get exactly one attempt."""
    waits: list[PlannedWait] = []
    script = Script(error)
    with pytest.raises(type(error)) as caught:
        call_with_retry(script, RetrySettings(attempts=5), provider=P, on_wait=waits.append)
    assert caught.value is error
    assert script.calls == 1
    assert waits == []


@pytest.mark.parametrize("attempts", [1, 2, 4])
def test_attempts_are_bounded_and_the_last_error_raised(attempts: int) -> None:
    """A provider that keeps failing is called `attempts` times; the last error propagates."""
    waits: list[PlannedWait] = []
    script = _forever(lambda: ProviderUnavailable("down", provider=P, status=503))
    settings = RetrySettings(attempts=attempts, budget_seconds=1000)
    with pytest.raises(ProviderUnavailable) as caught:
        call_with_retry(script, settings, provider=P, on_wait=waits.append)
    assert script.calls == attempts
    assert len(waits) == attempts - 1
    assert caught.value is script.raised[-1]


def test_planned_waits_never_exceed_the_budget() -> None:
    """With many attempts allowed, the waits together stay within budget_seconds."""
    settings = RetrySettings(attempts=100, backoff_initial_seconds=1, backoff_max_seconds=8,
                             budget_seconds=20)
    waits: list[PlannedWait] = []
    script = _forever(lambda: ProviderTimeout("slow", provider=P))
    with pytest.raises(ProviderTimeout):
        call_with_retry(script, settings, provider=P, on_wait=waits.append)
    assert waits
    assert sum(w.seconds for w in waits) <= settings.budget_seconds
    assert script.calls < settings.attempts


def test_slow_attempts_count_against_the_budget() -> None:
    """Time spent in the calls themselves counts: no attempt starts after the budget."""
    settings = RetrySettings(attempts=100, backoff_initial_seconds=0.5, backoff_max_seconds=2,
                             budget_seconds=12)
    now = [0.0]
    starts: list[float] = []

    def slow_failure() -> str:
        starts.append(now[0])
        now[0] += 5  # each attempt burns five seconds before timing out
        raise ProviderTimeout("slow", provider=P)

    def sleep_through(wait: PlannedWait) -> None:
        now[0] += wait.seconds  # test mode skips the sleep; the fake clock still moves

    with pytest.raises(ProviderTimeout):
        call_with_retry(slow_failure, settings, provider=P, on_wait=sleep_through,
                        clock=lambda: now[0])
    assert len(starts) >= 2
    assert all(start <= settings.budget_seconds for start in starts)


def test_backoff_grows_exponentially_with_bounded_jitter_and_a_cap() -> None:
    """Each backoff lies between initial*2^(n-1) and that plus one initial step, capped."""
    settings = RetrySettings(backoff_initial_seconds=0.5, backoff_max_seconds=8)
    for failed in range(1, 12):
        base = settings.backoff_initial_seconds * 2 ** (failed - 1)
        for _ in range(20):
            wait = backoff_seconds(failed, settings)
            assert min(base, settings.backoff_max_seconds) <= wait
            assert wait <= min(base + settings.backoff_initial_seconds,
                               settings.backoff_max_seconds)


def test_provider_error_carries_through_unchanged() -> None:
    """The error raised after retries is the adapter's own ProviderError, context intact."""
    script = _forever(lambda: ProviderUnavailable("down", provider=P, status=502))
    with pytest.raises(ProviderError) as caught:
        call_with_retry(script, RetrySettings(attempts=2), provider=P)
    assert caught.value.provider == P
    assert caught.value.status == 502
