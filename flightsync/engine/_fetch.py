"""Parallel provider fetches: breaker, budget (limits, quota, money) and retry around each
adapter call.

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
from concurrent.futures import Future
from dataclasses import dataclass
from queue import Empty, SimpleQueue

import structlog

from flightsync.config import RetrySettings
from flightsync.engine._pool import DaemonPool
from flightsync.engine._watchdog import Watchdog
from flightsync.errors import (
    FlightNotFound,
    FlightsyncError,
    Interrupted,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderTimeout,
    QuotaSkipped,
    StoreError,
)
from flightsync.models import FlightQuery, Observation
from flightsync.providers import ProviderSet, provider_deadline
from flightsync.resilience import Breakers, Budgets, call_with_retry

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """One provider's answer (or failure) for one flight."""

    provider: str
    query: FlightQuery
    observation: Observation | None
    error: FlightsyncError | None
    ms: int
    skipped: bool = False  # breaker open or budget spent: the provider was not called


# How long past its deadline a call may take to report its own timeout before the watchdog
# reports it instead: the socket operations end by the deadline, so this is only the time
# to unwind the retry loop and log (or a worker stuck outside any socket operation).
GRACE_SECONDS = 2.0


@dataclass(slots=True, eq=False)
class _Call:
    """One submitted call: what the watchdog needs to report it in the worker's place."""

    query: FlightQuery
    provider: str
    future: Future[FetchOutcome]
    started: float = 0.0


class Fetcher:
    """Runs provider calls on a bounded pool; outcomes are plain values, never exceptions.

    The futures handed out are settled by whoever comes first: the worker with its outcome,
    or the watchdog with a ``provider_timeout`` once the call is ``GRACE_SECONDS`` past its
    deadline. The breaker records the first only, so a call is counted once.
    """

    def __init__(self, providers: ProviderSet, breakers: Breakers, budgets: Budgets,
                 retry: RetrySettings, max_workers: int, *, deadline_seconds: float) -> None:
        self._providers = providers
        self._breakers = breakers
        self._budgets = budgets
        self._retry = retry
        self._deadline_seconds = deadline_seconds
        self._pool = DaemonPool(max_workers, "flightsync-fetch")
        self._watchdog: Watchdog[_Call] = Watchdog(self._abandon)
        self._settle_lock = threading.Lock()
        self._abandoned = 0
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
        call = _Call(query, provider, Future())
        self._pool.submit(lambda: self._run(call))
        return call.future

    def _run(self, call: _Call) -> None:
        call.started = time.perf_counter()
        try:
            outcome, verdict = self._call(call)
        except BaseException as exc:  # handed to whoever waits on the future, as the pool would
            with self._settle_lock:
                if not call.future.done():
                    call.future.set_exception(exc)
            return
        finally:
            self._watchdog.forget(call)
        self._settle(call, outcome, verdict)

    def _settle(self, call: _Call, outcome: FetchOutcome, verdict: bool | None) -> bool:
        """Hand ``outcome`` to the engine and ``verdict`` (True: the provider answered,
        False: it failed, None: not called) to its breaker, unless the call was settled
        already (given up on by the watchdog, which counted it). Whether this settled it."""
        with self._settle_lock:
            if call.future.done():
                return False
            try:
                if verdict is True:
                    self._breakers.record_success(call.provider)
                elif verdict is False:
                    self._breakers.record_failure(call.provider)
            except StoreError as exc:  # the state store went away: the answer still counts
                log.warning("breaker.record.failed", provider=call.provider, error=exc.message)
            call.future.set_result(outcome)
            return True

    def _abandon(self, call: _Call) -> None:
        error = ProviderTimeout(f"{call.provider}: no answer by the call's deadline "
                                f"({self._deadline_seconds:g} s); given up on",
                                provider=call.provider)
        outcome = FetchOutcome(call.provider, call.query, None, error, _ms(call.started))
        if self._settle(call, outcome, False):
            self._abandoned += 1
            log.warning("provider.fetch.abandoned", provider=call.provider,
                        flight=call.query.key, deadline=self._deadline_seconds)

    def _refusal(self, provider: str) -> FlightsyncError | None:
        """Why ``provider`` is not called now (interrupted, breaker open, the state store
        gone), or None to call it."""
        from flightsync.errors import CircuitOpenError  # noqa: PLC0415 - keeps the hot path flat

        if self._cancelled.is_set():
            return _interrupted(provider)
        try:
            if self._breakers.before_call(provider):
                return None
        except StoreError as exc:
            # The shared state store is gone (Redis lost mid-run): the call is not made, the
            # flight fails with the reason and stays due (README, "Shared state").
            return exc
        return CircuitOpenError(f"{provider}: circuit open, skipped", provider=provider)

    def _call(self, call: _Call) -> tuple[FetchOutcome, bool | None]:  # noqa: PLR0911 - one per ending
        query, provider, started = call.query, call.provider, call.started
        refused = self._refusal(provider)
        if refused is not None:
            return FetchOutcome(provider, query, None, refused, 0, skipped=True), None
        adapter = self._providers.adapters[provider]

        def attempt() -> Observation:
            if self._cancelled.is_set():  # not retryable: the retries end here
                raise _interrupted(provider)
            # Every attempt is a call against the provider's limits and budget; waiting for
            # a slot counts against the call's deadline.
            with self._budgets.call(provider, deadline=deadline):
                try:
                    return adapter.fetch(query)
                except RecursionError as exc:
                    # Only an answer nested thousands deep recurses this far: the answer is
                    # at fault, whichever adapter (or plugin) parsed it, not our code.
                    raise ProviderBadResponse(f"{provider}: answer nested too deeply to read",
                                              provider=provider) from exc

        # The hard end of the whole call, retries, token request and waits for a slot
        # included: every socket operation under it is clamped to it (providers/_deadline.py),
        # and the watchdog reports the call in the worker's place a grace period after it.
        deadline = time.monotonic() + self._deadline_seconds
        self._watchdog.watch(call, deadline + GRACE_SECONDS)
        try:
            with provider_deadline(deadline):
                observation = call_with_retry(attempt, self._retry, provider=provider,
                                              deadline=deadline)
        except (QuotaSkipped, ProviderQuotaExhausted) as exc:
            return self._quota_outcome(call, exc), None
        except FlightNotFound as exc:
            # An answer, not a failure (DESIGN 7).
            return FetchOutcome(provider, query, None, exc, _ms(started)), True
        except (Interrupted, ProviderError) as exc:
            if isinstance(exc, Interrupted) or self._cancelled.is_set():
                # Stopped by an interrupt, or cut off by it closing the clients: that says
                # nothing about the provider, so its breaker does not hear of it.
                return (FetchOutcome(provider, query, None, _interrupted(provider),
                                     _ms(started)), None)
            log.warning("provider.fetch.failed", provider=provider, flight=query.key,
                        error=exc.code, status=exc.status)
            # A refusal is an answer too: the provider is up.
            return (FetchOutcome(provider, query, None, exc, _ms(started)),
                    not exc.counts_for_breaker)
        except Exception as exc:  # an adapter bug must not take the batch down
            # A StoreError is the shared state gone (Redis lost mid-run: tokens, limits and
            # budgets): it says nothing of the provider, so its breaker does not hear of it,
            # and the flight fails with the reason and stays due (README, "Shared state").
            lost = isinstance(exc, StoreError)
            if not lost:
                log.exception("provider.fetch.crashed", provider=provider, flight=query.key)
            error = exc if isinstance(exc, StoreError) else FlightsyncError(
                f"{provider}: internal error: {type(exc).__name__}")
            return FetchOutcome(provider, query, None, error, _ms(started)), None if lost else False
        return FetchOutcome(provider, query, observation, None, _ms(started)), True

    def _quota_outcome(self, call: _Call, exc: QuotaSkipped | ProviderQuotaExhausted,
                       ) -> FetchOutcome:
        """Neither is held against the provider's breaker: a skipped call was not made, and
        the provider's own word that its quota is spent is an answer. That word makes every
        process sharing the budgets' storage leave it alone until the quota resets."""
        provider, query = call.provider, call.query
        if isinstance(exc, QuotaSkipped):
            log.info("provider.fetch.skipped", provider=provider, flight=query.key,
                     reason=exc.reason)
            return FetchOutcome(provider, query, None, exc, _ms(call.started), skipped=True)
        said = exc.context.get("retry_after")
        blocked = self._budgets.mark_exhausted(
            provider, float(said) if isinstance(said, int | float) else None)
        log.warning("provider.quota.exhausted", provider=provider, flight=query.key,
                    blocked_seconds=round(blocked))
        return FetchOutcome(provider, query, None, exc, _ms(call.started))

    def close(self) -> None:
        self._watchdog.close()
        # A worker given up on, or still on the wire after cancel(), is blocked somewhere:
        # waiting for it would be the very stall the watchdog and the interrupt prevent. The
        # others have finished by now.
        self._pool.shutdown(wait=self._abandoned == 0 and not self._cancelled.is_set())


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
