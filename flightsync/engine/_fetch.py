"""Parallel provider fetches: breaker, rate limit and retry around each adapter call.

Every (flight, provider) call is one task on a bounded thread pool shared by a whole run, so a
batch keeps ``max_workers`` requests in flight no matter how its flights split across providers.

``cancel()`` (SIGINT, SIGTERM) stops the run from scheduling more: calls not started return
at once, a call between attempts starts no retry, and nobody waits for the calls still on the
wire (``close`` drops the queue without waiting; the process exits without joining their
threads, cli/_startup.py).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue

import structlog

from flightsync.config import RetrySettings
from flightsync.errors import FlightNotFound, FlightsyncError, Interrupted, ProviderError
from flightsync.models import FlightQuery, Observation
from flightsync.providers import ProviderSet
from flightsync.resilience import Breakers, RateLimiters, call_with_retry

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """One provider's answer (or failure) for one flight."""

    provider: str
    query: FlightQuery
    observation: Observation | None
    error: FlightsyncError | None
    ms: int
    skipped: bool = False  # breaker open: the provider was not called


class Fetcher:
    """Runs provider calls on a bounded pool; outcomes are plain values, never exceptions."""

    def __init__(self, providers: ProviderSet, breakers: Breakers, limiters: RateLimiters,
                 retry: RetrySettings, max_workers: int) -> None:
        self._providers = providers
        self._breakers = breakers
        self._limiters = limiters
        self._retry = retry
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="flightsync-fetch")
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Start nothing more: a queued call returns at once when a worker takes it, a
        running one makes no new attempt. Only sets an event, so a signal handler may call it
        (shutting the pool down there could deadlock on a lock ``submit`` holds)."""
        self._cancelled.set()

    def submit(self, query: FlightQuery, provider: str) -> Future[FetchOutcome]:
        self._providers.warn_missing_credentials()
        return self._pool.submit(self._call, query, provider)

    def _call(self, query: FlightQuery, provider: str) -> FetchOutcome:
        from flightsync.errors import CircuitOpenError  # noqa: PLC0415 - keeps the hot path flat

        started = time.perf_counter()
        if self._cancelled.is_set() or not self._breakers.before_call(provider):
            error: FlightsyncError = (
                _interrupted(provider) if self._cancelled.is_set()
                else CircuitOpenError(f"{provider}: circuit open, skipped", provider=provider))
            return FetchOutcome(provider, query, None, error, 0, skipped=True)
        adapter = self._providers.adapters[provider]
        limiter = self._limiters.get(provider)

        def attempt() -> Observation:
            if limiter is not None:
                limiter.acquire()
            if self._cancelled.is_set():  # not retryable: the retries end here
                raise _interrupted(provider)
            return adapter.fetch(query)

        try:
            observation = call_with_retry(attempt, self._retry, provider=provider)
        except FlightNotFound as exc:
            self._breakers.record_success(provider)  # an answer, not a failure (DESIGN 7)
            return FetchOutcome(provider, query, None, exc, _ms(started))
        except (Interrupted, ProviderError) as exc:
            if isinstance(exc, Interrupted) or self._cancelled.is_set():
                # Stopped by an interrupt, or cut off by it closing the clients: that says
                # nothing about the provider, so its breaker does not hear of it.
                return FetchOutcome(provider, query, None, _interrupted(provider), _ms(started))
            if exc.counts_for_breaker:
                self._breakers.record_failure(provider)
            else:
                self._breakers.record_success(provider)  # it answered: a refusal, not an outage
            log.warning("provider.fetch.failed", provider=provider, flight=query.key,
                        error=exc.code, status=exc.status)
            return FetchOutcome(provider, query, None, exc, _ms(started))
        except Exception as exc:  # an adapter bug must not take the batch down
            self._breakers.record_failure(provider)
            log.exception("provider.fetch.crashed", provider=provider, flight=query.key)
            wrapped = FlightsyncError(f"{provider}: internal error: {type(exc).__name__}")
            return FetchOutcome(provider, query, None, wrapped, _ms(started))
        self._breakers.record_success(provider)
        return FetchOutcome(provider, query, observation, None, _ms(started))

    def close(self) -> None:
        # After cancel() a call may hang on the wire for its whole timeout: not waited for.
        self._pool.shutdown(wait=not self._cancelled.is_set(), cancel_futures=True)


def _interrupted(provider: str) -> Interrupted:
    return Interrupted(f"{provider}: not asked: the run was interrupted", provider=provider)


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def drain(completed: SimpleQueue[Future[FetchOutcome]], *, timeout: float | None,
           ) -> list[Future[FetchOutcome]]:
    """The calls finished so far, waiting up to ``timeout`` seconds (None: for ever) for
    the first."""
    finished: list[Future[FetchOutcome]] = []
    try:
        finished.append(completed.get(timeout=timeout))
        while True:
            finished.append(completed.get_nowait())
    except Empty:
        return finished
