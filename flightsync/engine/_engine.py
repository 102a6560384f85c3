"""The sync engine: cache -> breaker -> parallel fetch -> resolve -> one write per flight.

A single sync is a batch of one. Provider calls for every flight of a run go to one bounded
pool; the calling thread alone writes to the database, flight by flight as their answers
complete, in grouped transactions (each flight all-or-nothing, a failed group redone flight by
flight).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.config import Settings
from flightsync.engine import _due, _flights, _ops, _sources
from flightsync.engine._choose import providers_for
from flightsync.engine._clock import Clock, SystemClock
from flightsync.engine._fetch import Fetcher, FetchOutcome, drain
from flightsync.engine._merge import Merged, merge, operating_carrier
from flightsync.engine._results import (
    BatchResult,
    failed_result,
    failure_of,
    log_of,
    sync_status_of,
)
from flightsync.engine._runbook import RunBook
from flightsync.engine._screen import screen
from flightsync.engine._stored import keep_observations, keep_settled, stored_observations_of
from flightsync.errors import (
    ConcurrentUpdateError,
    FlightsyncError,
    InputError,
    Interrupted,
    NoProviderError,
    QuotaSkipped,
)
from flightsync.models import (
    FlightQuery,
    Leg,
    Observation,
    SourceOutcome,
    SyncResult,
    SyncStatus,
)
from flightsync.policy import Policy
from flightsync.providers import ProviderSet, call_deadline_seconds
from flightsync.resilience import Breakers, Budgets, ObservationCache, StateStore
from flightsync.store import Database
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._fa_alerts_registry import AlertDesk
    from flightsync.engine._spool import SpoolResult
    from flightsync.engine._webhook import WebhookOutcome

log = structlog.get_logger(__name__)

WRITE_GROUP = 64  # flights per transaction in a batch: fewer commits, each flight still whole
# How long a finished flight may wait for others to share its transaction. A batch finishes
# ~40 flights a second, one or two at a time: writing each at once cost a transaction (and the
# GIL the fetch threads need) per flight (benchmarks/RESULTS.md).
WRITE_WAIT_SECONDS = 0.5
# How often the calling thread looks up from waiting for answers to see an interrupt.
INTERRUPT_POLL_SECONDS = 0.1
# A run fed round by round (``batch --due``) takes its next round while fewer than this many
# pool-fulls of calls are waiting: a claim takes a few to tens of ms, a pool-full 100 ms.
REFILL_WAVES = 2


@dataclass(slots=True)
class _Plan:
    """One flight's progress through a run."""

    query: FlightQuery
    providers: list[str]
    observations: dict[str, Observation] = field(default_factory=dict)
    outcomes: dict[str, SourceOutcome] = field(default_factory=dict)
    fresh: dict[str, Observation] = field(default_factory=dict)
    pending: int = 0
    called: bool = False  # some provider was asked (not everything came from the cache)
    # A run limited to ``sources`` resolves with these providers' stored observations too.
    others: tuple[str, ...] = ()


class Engine:
    """Everything a command needs, built once per invocation by ``open_engine``."""

    def __init__(self, *, settings: Settings, database: Database, state: StateStore,
                 providers: ProviderSet, policy: Policy, breakers: Breakers,
                 cache: ObservationCache, budgets: Budgets, run_id: str,
                 run_kind: str, notifier: Any = None, clock: Clock | None = None) -> None:
        self.settings = settings
        # The instants a run writes and due selection reads (engine/_clock.py).
        self.clock: Clock = clock or SystemClock()
        self.database = database
        self.state = state
        self.provider_set = providers
        self.policy = policy
        self.breakers = breakers
        self.cache = cache
        self.run_id = run_id
        self.run_kind = run_kind
        self.notifier = notifier
        self.budgets = budgets
        self._fetcher = Fetcher(providers, breakers, budgets, settings.retry,
                                settings.http.max_workers,
                                deadline_seconds=call_deadline_seconds(settings))
        self._ranks = {name: providers.priority(name) for name in providers.adapters}
        self.runbook = RunBook(database, cache, run_id=run_id, kind=run_kind,
                               now=lambda: self.clock.now())  # noqa: PLW0108 - late-bound
        self._learned = _sources.LearnedFigures(policy)

    def close(self) -> None:
        """Stop the fetch pool; the providers and database belong to ``open_engine``."""
        self._fetcher.close()

    def interrupt(self) -> None:
        """Stop the run in progress (SIGINT, SIGTERM): nothing more is scheduled, waits end,
        what has finished is written and the rest reported ``interrupted``; the run's row is
        closed as ``interrupted``. Safe to call from a signal handler."""
        self._fetcher.cancel()

    @property
    def interrupted(self) -> bool:
        return self._fetcher.cancelled

    @property
    def outcome_override(self) -> str | None:
        """The run's outcome when it is not decided by its results (``interrupted``)."""
        return "interrupted" if self.interrupted else None

    # -- operator views and controls (flightsync.engine._ops) ------------------------------
    def explain(self, query: FlightQuery) -> dict[str, Any]:
        return _ops.explain(self, query)

    def conflicts(self, *, include_resolved: bool = False,
                  limit: int | None = None) -> dict[str, Any]:
        return _ops.conflicts(self, include_resolved=include_resolved, limit=limit)

    def resolve_conflict(self, conflict_id: int, *, use_source: str | None = None,
                         value: str | None = None) -> dict[str, Any]:
        return _ops.resolve_conflict(self, conflict_id, use_source=use_source, value=value)

    def status(self) -> dict[str, Any]:
        return _ops.status(self)

    def sources(self, *, recompute: bool = False) -> dict[str, Any]:
        """The learned accuracy per provider and field; ``recompute`` relearns it first."""
        if recompute:
            return _sources.recompute(self.database, self.policy)
        return _sources.report(self.database)

    def prune(self, *, dry_run: bool = False, full: bool = False) -> dict[str, Any]:
        """Enforce ``settings.retention`` now (``dry_run``: count what would go)."""
        from flightsync.engine import _prune  # noqa: PLC0415

        return _prune.prune(self, dry_run=dry_run, full=full)

    def providers(self, *, check: bool = False) -> list[dict[str, Any]]:
        return _ops.providers(self, check=check)

    # -- pushed events (flightsync.engine._webhook, _spool) ---------------------------------
    def ingest_webhook(self, body: bytes, headers: dict[str, str], *, insecure: bool = False,
                       notify: bool = True) -> WebhookOutcome:
        """Verify, validate and apply one event (WebhookError when rejected)."""
        from flightsync.engine._webhook import ingest  # noqa: PLC0415 - pydantic schema

        return ingest(self, body, headers, insecure=insecure, notify=notify)

    def ingest_spool(self, folder: Path, *, insecure: bool = False, notify: bool = True,
                     wait_seconds: float | None = None) -> SpoolResult:
        """Apply every event file of ``folder``, oldest first, moving each to done/failed,
        waiting up to ``wait_seconds`` (None: 10) for another drainer to finish."""
        from flightsync.engine._spool import DRAIN_WAIT_SECONDS, ingest_spool  # noqa: PLC0415

        return ingest_spool(self, folder, insecure=insecure, notify=notify,
                            wait_seconds=DRAIN_WAIT_SECONDS if wait_seconds is None
                            else wait_seconds)

    def reset_breaker(self, name: str | None = None) -> list[str]:
        known = {*self.provider_set.adapters, *self.provider_set.skipped}
        if name is not None and name not in known:
            raise InputError(f"unknown provider {name[:40]!r}; known: "
                             f"{', '.join(sorted(known))}", code="invalid_provider")
        names = [name] if name else sorted(self.provider_set.adapters)
        self.breakers.reset(name)
        return names

    def clear_cache(self, query: FlightQuery | None = None) -> int:
        return self.cache.drop(query) if query is not None else self.cache.clear()

    # -- the flights an operator manages (flightsync.engine._flights) -----------------------
    def flights(self, *, tracked: bool = False, due: bool = False,
                limit: int = 100) -> dict[str, Any]:
        return _flights.list_flights(
            self.database, tracked=tracked, due=due, limit=limit,
            alerted_every=self.settings.flightaware_alerts.poll_every_seconds)

    def flight(self, query: FlightQuery) -> dict[str, Any]:
        return _flights.show(self.database, query)

    def track(self, query: FlightQuery, *, tracked: bool = True) -> dict[str, Any]:
        return _flights.set_tracked(self.database, query, tracked=tracked)

    def delete_flight(self, query: FlightQuery) -> dict[str, Any]:
        return _flights.delete(self.database, self.cache, query)

    # -- the change feed (flightsync.engine._changes) -----------------------------------------
    def changes(self, since: int, *, query: FlightQuery | None = None,
                limit: int | None = None) -> Iterator[dict[str, Any]]:
        from flightsync.engine import _changes  # noqa: PLC0415

        return _changes.changes(self.database, since, query=query, limit=limit)

    def follow_changes(self, since: int, *, interval: float, stop: threading.Event,
                       emit: Callable[[dict[str, Any]], None],
                       query: FlightQuery | None = None) -> int:
        from flightsync.engine import _changes  # noqa: PLC0415

        return _changes.follow(self.database, since, interval=interval, stop=stop,
                               emit=emit, query=query)

    def last_change(self) -> int:
        from flightsync.engine import _changes  # noqa: PLC0415

        return _changes.last_cursor(self.database)

    # -- FlightAware alerts for tracked flights (flightsync.engine._fa_alerts_registry) -----
    def alert_desk(self) -> AlertDesk:
        from flightsync.engine._fa_alerts_registry import AlertDesk  # noqa: PLC0415

        return AlertDesk(self.database, self.settings, self.provider_set)

    def alerts_register(self, query: FlightQuery | None = None) -> dict[str, Any]:
        from flightsync.engine import _fa_alerts_registry as alerts  # noqa: PLC0415

        return alerts.register(self.alert_desk(), query)

    def alerts_list(self, *, include_removed: bool = False) -> dict[str, Any]:
        from flightsync.engine import _fa_alerts_registry as alerts  # noqa: PLC0415

        return alerts.list_alerts(self.database, include_removed=include_removed)

    def alerts_remove(self, alert_id: int | None = None) -> dict[str, Any]:
        from flightsync.engine import _fa_alerts_registry as alerts  # noqa: PLC0415

        return alerts.remove(self.alert_desk(), alert_id)

    # -- choosing providers -------------------------------------------------------------
    def providers_for(self, query: FlightQuery, sources: Sequence[str] | None) -> list[str]:
        """The usable providers that cover this flight's carrier, limited to ``sources``."""
        return providers_for(self.provider_set, query, sources)

    def own_adapter(self, carrier: str) -> str | None:
        """The operating airline's own adapter (one that names the carrier explicitly)."""
        for name in self.provider_set.adapters:
            carriers = self.provider_set.carriers(name)
            if carriers is not None and carrier in carriers:
                return name
        return None

    # -- the runs -----------------------------------------------------------------------
    def sync(self, query: FlightQuery, *, force: bool = False,
             sources: Sequence[str] | None = None, notify: bool = True) -> SyncResult:
        names = self.providers_for(query, sources)
        if not names:
            raise NoProviderError(
                f"no configured provider covers carrier {query.carrier}; "
                "see `flightsync providers`")
        self.runbook.start(1)
        results = self._run([query], force=force, sources=sources, notify=notify)
        result = results[0]
        self.runbook.finish(results, outcome=self.outcome_override)
        return result

    def batch(self, queries: Iterable[FlightQuery], *, force: bool = False,
              notify: bool = True, progress: Callable[[int], None] | None = None,
              ) -> BatchResult:
        started = self.clock.now()
        unique = list(dict.fromkeys(queries))
        self.runbook.start(len(unique))
        results = self._run(unique, force=force, sources=None, notify=notify,
                            progress=progress)
        self.runbook.finish(results, outcome=self.outcome_override)
        log = log_of(results)
        if not self.interrupted:  # an interrupted run ends now; the next one relearns
            _sources.relearn_after(self.database, self.policy, fetched=log.synced > 0)
        return BatchResult.of(self.run_id, log, started, interrupted=self.interrupted)

    def batch_due(self, *, limit: int, notify: bool = True,
                  progress: Callable[[int], None] | None = None) -> BatchResult:
        """Claim due flights ``batch.size`` at a time (leases: no two workers share one)."""
        return _due.batch_due(self, limit=limit, notify=notify, progress=progress)

    def due_preview(self, *, limit: int) -> list[FlightQuery]:
        """What ``batch_due`` would sync now, most urgent first; nothing is claimed."""
        return _due.due_preview(self, limit=limit)

    def _plan(self, queries: Sequence[FlightQuery], *, force: bool,
              sources: Sequence[str] | None) -> tuple[dict[FlightQuery, SyncResult], list[_Plan]]:
        """Settle what the cache can; plan provider calls for the rest."""
        done: dict[FlightQuery, SyncResult] = {}
        plans: list[_Plan] = []
        for query in queries:
            try:
                names = self.providers_for(query, sources)
            except FlightsyncError as exc:
                done[query] = failed_result(query, (), exc)
                continue
            if not names:
                done[query] = failed_result(query, (), NoProviderError(
                    f"no configured provider covers carrier {query.carrier}"))
                continue
            if not force:
                cached_result = self.cache.get_result(query, names)
                if cached_result is not None:
                    log.debug("cache.decision", flight=query.key, decision="whole result",
                              providers=names)
                    self.runbook.hits += len(names)
                    done[query] = cached_result
                    continue
            plan = _Plan(query=query, providers=names)
            if sources:  # the providers not asked still count, through what they said last
                plan.others = tuple(n for n in self.providers_for(query, None)
                                    if n not in names)
            if not force:
                for name, obs in self.cache.get_many(names, query).items():
                    plan.observations[name] = obs
                    plan.outcomes[name] = SourceOutcome(name=name, ok=True, ms=0,
                                                        from_cache=True)
                self.runbook.hits += len(plan.observations)
            log.debug("cache.decision", flight=query.key,
                      decision="skipped (--force or due run)" if force else "per provider",
                      hits=sorted(plan.observations),
                      asking=[n for n in names if n not in plan.observations])
            plans.append(plan)
        return done, plans

    def _run(self, queries: Sequence[FlightQuery], *, force: bool,
             sources: Sequence[str] | None, notify: bool,
             progress: Callable[[int], None] | None = None) -> list[SyncResult]:
        done = {result.query: result for group in self._stream(
            queries, force=force, sources=sources, notify=notify, progress=progress)
            for result in group}
        return [done[q] for q in queries]

    def _stream(self, queries: Sequence[FlightQuery], *, force: bool,
                sources: Sequence[str] | None, notify: bool,
                progress: Callable[[int], None] | None = None,
                more: Callable[[], Sequence[FlightQuery]] | None = None,
                ) -> Iterator[list[SyncResult]]:
        """Sync ``queries``, and the flights ``more`` hands out (until it hands out none)
        whenever fewer than REFILL_WAVES rounds of the pool's calls are waiting; yields each
        group's results as they are written (the cache's and the interrupt's included)."""
        # Finished calls arrive on a queue: concurrent.futures.wait() walks (and locks) every
        # pending future on each call, quadratic over a 4,000-call batch (RESULTS.md).
        completed: SimpleQueue[Future[FetchOutcome]] = SimpleQueue()
        futures: dict[Future[FetchOutcome], _Plan] = {}
        ready: list[_Plan] = []
        # Taking more while the pool still has this much queued keeps it busy across
        # `batch --due` rounds instead of draining it at the end of each (issue 17).
        refill_below = REFILL_WAVES * self.settings.http.max_workers
        deadline: float | None = None  # when the oldest ready flight must be written
        # Planned even when interrupted already: each flight it was given gets its result.
        settled = self._start(queries, force=force, sources=sources, completed=completed,
                              futures=futures, ready=ready)
        while True:
            if settled:
                if progress is not None:
                    progress(len(settled))
                yield settled
                settled = []
            if self.interrupted:
                break
            if more is not None and len(futures) < refill_below:
                claimed = more()
                if claimed:
                    settled = self._start(claimed, force=force, sources=sources,
                                          completed=completed, futures=futures, ready=ready)
                    continue
                more = None
            if not futures and not ready:
                break
            if futures and len(ready) < WRITE_GROUP:
                if ready and deadline is None:
                    deadline = time.monotonic() + WRITE_WAIT_SECONDS
                timeout = None if deadline is None else deadline - time.monotonic()
                if timeout is None or timeout > 0:
                    wait = INTERRUPT_POLL_SECONDS if timeout is None else min(
                        timeout, INTERRUPT_POLL_SECONDS)
                    self._take(drain(completed, timeout=wait), futures, ready)
                    continue
            deadline = None
            group, ready = ready[:WRITE_GROUP], ready[WRITE_GROUP:]
            written = self._write(group, notify=notify)
            if progress is not None and group:
                progress(len(group))
            yield written
        if self.interrupted:
            self._take(drain(completed, timeout=0), futures, ready)  # those in meanwhile
            yield self._write_finished(ready, futures.values(), notify=notify)

    def _start(self, queries: Sequence[FlightQuery], *, force: bool,
               sources: Sequence[str] | None, completed: SimpleQueue[Future[FetchOutcome]],
               futures: dict[Future[FetchOutcome], _Plan], ready: list[_Plan],
               ) -> list[SyncResult]:
        """Plan ``queries`` and start their calls; the results the cache settled at once."""
        settled, plans = self._plan(queries, force=force, sources=sources)
        self._submit(plans, completed, futures, ready)
        return list(settled.values())

    def _take(self, finished: Iterable[Future[FetchOutcome]],
              futures: dict[Future[FetchOutcome], _Plan], ready: list[_Plan]) -> None:
        """Absorb finished calls into their plans; a plan whose every call is in is ready.
        A call an interrupt dropped leaves its plan unfinished."""
        for future in finished:
            if future.cancelled() or future not in futures:
                continue
            plan = futures.pop(future)
            self._absorb(plan, future.result())
            if plan.pending == 0:
                ready.append(plan)

    def _write_finished(self, ready: list[_Plan], unfinished: Iterable[_Plan], *,
                        notify: bool) -> list[SyncResult]:
        """After an interrupt: write every answer that arrived. A flight some provider had
        answered is written as a partial sync (the others' outcome ``interrupted``); one no
        provider had answered yet is reported ``interrupted`` and nothing of it is written."""
        answered = list(ready)
        results: list[SyncResult] = []
        for plan in {id(plan): plan for plan in unfinished}.values():  # one per flight
            for name in plan.providers:
                if name not in plan.outcomes:
                    plan.outcomes[name] = SourceOutcome(name=name, ok=False, ms=0,
                                                        error=Interrupted.code)
            plan.pending = 0
            if plan.observations:
                answered.append(plan)
            else:
                results.append(failed_result(plan.query, self._outcomes(plan), Interrupted(
                    f"interrupted before any provider answered {plan.query.designator}")))
        for start in range(0, len(answered), WRITE_GROUP):
            results.extend(self._write(answered[start:start + WRITE_GROUP], notify=notify))
        return results

    def _submit(self, plans: Sequence[_Plan], completed: SimpleQueue[Future[FetchOutcome]],
                futures: dict[Future[FetchOutcome], _Plan], ready: list[_Plan]) -> None:
        """Start every provider call the plans need (added to ``futures``); the plans
        needing none join ``ready``."""
        for plan in plans:
            for name in plan.providers:
                if name not in plan.observations:
                    future = self._fetcher.submit(plan.query, name)
                    futures[future] = plan
                    future.add_done_callback(completed.put)
                    plan.pending += 1
                    plan.called = True
                    self.runbook.misses += 1
            if plan.pending == 0:
                ready.append(plan)

    def _absorb(self, plan: _Plan, outcome: FetchOutcome) -> None:
        plan.pending -= 1
        error = outcome.error
        plan.outcomes[outcome.provider] = SourceOutcome(
            name=outcome.provider, ok=outcome.observation is not None, ms=outcome.ms,
            error=None if error is None else error.code)
        if outcome.observation is not None:
            # Every fetched answer passes here once, before it is merged or cached.
            observation = screen(outcome.observation, self.policy.plausibility)
            plan.observations[outcome.provider] = observation
            plan.fresh[outcome.provider] = observation

    # -- writing ------------------------------------------------------------------------
    def _write(self, group: list[_Plan], *, notify: bool) -> list[SyncResult]:
        try:
            results = self._write_together(group)
        except ConcurrentUpdateError:
            results = []
            for plan in group:  # redo one by one with fresh stored values
                try:
                    results.extend(self._write_together([plan]))
                except ConcurrentUpdateError as exc:
                    results.append(failed_result(plan.query, self._outcomes(plan), exc))
        now = self.clock.now()
        with self.cache.grouped():
            for plan, result in zip(group, results, strict=True):
                self._remember(plan, result, now)
        if notify and self.notifier is not None:
            self.notifier.notify([r for r in results if r.changed_fields], run_id=self.run_id)
        return results

    def _write_together(self, group: list[_Plan]) -> list[SyncResult]:
        now = self.clock.now()
        results: list[SyncResult] = []
        with self.database.session() as session:
            stored = repo.load_legs(session, [repo.key_of(p.query) for p in group])
            legs = [stored.get(repo.key_of(p.query), []) for p in group]
            # Inside the write's transaction: its version check covers what was read.
            others = stored_observations_of(session, [
                (p.query, found, p.others) for p, found in zip(group, legs, strict=True)])
            self._learned.load(session)
            # The group's rows go out as one statement per table when it is flushed.
            writer = repo.GroupWriter(session, run_id=self.run_id, now=now)
            merged = [self._merge(plan, found, said)
                      for plan, found, said in zip(group, legs, others, strict=True)]
            keep_settled(session, zip(legs, merged, strict=True))  # one query for the group
            for plan, found, resolved in zip(group, legs, merged, strict=True):
                results.append(self._persist(writer, plan, found, resolved, now))
            writer.flush()
        return results

    def _merge(self, plan: _Plan, stored: list[repo.StoredLeg],
               others: dict[str, Observation]) -> Merged | None:
        """The plan's legs resolved per the policy; None when no provider answered."""
        if not plan.observations:
            return None
        observations = [plan.observations[n] for n in plan.providers if n in plan.observations]
        observations.extend(others.values())
        carrier = operating_carrier(observations) or plan.query.carrier
        merged = merge(self.policy, observations, stored, ranks=self._ranks,
                       operating_carrier_source=self.own_adapter(carrier),
                       trust=self._learned.trust, dependence=self._learned.dependence)
        if others:
            keep_observations(merged.legs, plan.observations)
        return merged

    def _persist(self, writer: repo.GroupWriter, plan: _Plan, stored: list[repo.StoredLeg],
                 merged: Merged | None, now: datetime) -> SyncResult:
        outcomes = self._outcomes(plan)
        query = plan.query
        if merged is None:
            code, message = failure_of(outcomes)
            if stored and code != QuotaSkipped.code:  # left for later: not a failure
                repo.record_failure(writer.session, repo.key_of(query), error=message, now=now,
                                    next_due=now + _due.RETRY_DUE)
            return failed_result(query, outcomes, FlightsyncError(message), code=code)
        status = sync_status_of(outcomes, merged.conflicts)
        resolved = [Leg(origin=leg.origin, **leg.values) for leg in merged.legs]
        ttl = self.cache.ttl_for(resolved, now)
        written = writer.add(
            query, merged.legs, stored, sync_status=status.value,
            next_due=now + timedelta(seconds=ttl), tracked=_due.still_tracked(resolved, now),
            source_of_truth=merged.source_of_truth)
        return SyncResult(
            query=query, success=True, sync_status=status, from_cache=not plan.called,
            legs=written.records, sources=outcomes, conflicts=tuple(merged.conflicts),
            changed_fields=tuple(dict.fromkeys(f for _, f in written.changed)))

    @staticmethod
    def _outcomes(plan: _Plan) -> tuple[SourceOutcome, ...]:
        return tuple(plan.outcomes[n] for n in plan.providers if n in plan.outcomes)

    def _remember(self, plan: _Plan, result: SyncResult, now: datetime) -> None:
        """Cache fresh observations after the write committed, and the whole result when
        every provider answered (so the next identical sync touches neither network nor DB)."""
        if not result.success:
            return
        ttl = self.cache.ttl_for(result.legs, now)
        for name, obs in plan.fresh.items():
            self.cache.put(name, plan.query, obs, ttl)
        answered = all(o.ok or o.error == "flight_not_found" for o in result.sources)
        if answered and result.sync_status in (SyncStatus.SYNCED, SyncStatus.CONFLICT):
            self.cache.put_result(plan.query, plan.providers, result, ttl, fresh=plan.fresh)
        else:
            # What this sync stored (a partial or source-limited answer) is newer than a whole
            # result cached before it, which the next plain sync would otherwise return.
            self.cache.drop_result(plan.query)
