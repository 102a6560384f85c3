"""Due-flight runs (``batch --due``): lease the flights whose refresh is due, sync them, give
the leases back; and how long a synced flight stays tracked for them.

Within what a worker claims, the most urgent flights go first (``most_urgent_first``): the
calls are started in that order, so when a provider's rate limit, quota or budget runs out
(README "Provider budgets") the flights it is spent on are the airborne ones, then those
departing soonest, then the ones that changed most; the flights left for later stay due.

Several workers may run at once (cron on more than one host): each claims ``batch.size``
flights at a time under a lease named after its host and run, so no two workers sync the same
flight, and a worker that dies leaves leases that expire instead of flights that stay claimed.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from flightsync.engine import _fa_alerts_registry, _prune, _sources
from flightsync.engine._results import BatchResult, ResultLog
from flightsync.engine._results import left_for_later as _left_outcomes
from flightsync.models import FlightQuery, FlightStatus, Leg, SyncResult
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)

RETRY_DUE = timedelta(minutes=15)  # a due flight no provider could take waits this long
TRACKED_AFTER_ARRIVAL = timedelta(hours=24)  # docs/CONTRACTS.md section 7, tracking


def batch_due(engine: Engine, *, limit: int, notify: bool,
              progress: Callable[[int], None] | None) -> BatchResult:
    """Sync up to ``limit`` due flights, claimed ``batch.size`` at a time under leases.

    The rounds overlap: the next is claimed while the current one's last calls are still
    queued, so the fetch pool never waits for a round's slowest flight, its writes, or the
    next claim (issue 17); each round's leases are still given back (or its flights
    deferred) as soon as every flight of that round has its result."""
    started = engine.clock.now()
    engine.runbook.start(0)
    with engine.database.session() as session:
        # The partitioned audit tables' coming months (PostgreSQL; nothing elsewhere).
        repo.ensure_partitions(session, now=started)
    rounds = _Rounds(engine, limit=limit, due_by=started)
    # Each round's results go to the log (their JSON text) as the round closes: none is
    # kept to the end, so the run's memory does not grow with its size.
    finished = ResultLog()
    try:
        for group in engine._stream((), force=True, sources=None, notify=notify,
                                    progress=progress, more=rounds.claim):
            closed = rounds.settle(group)
            engine.runbook.count(closed)
            finished.add(closed)
    finally:
        rounds.release_open()  # an error mid-round: its flights' leases are given back
    engine.runbook.finish(requested=finished.flights, outcome=engine.outcome_override)
    if not engine.interrupted:
        _sources.relearn_after(engine.database, engine.policy, fetched=finished.synced > 0)
        _fa_alerts_registry.retire_finished(engine.alert_desk())
        _prune.after_batch(engine)  # retention, within its own time budget
    return BatchResult.of(engine.run_id, finished, started, interrupted=engine.interrupted)


@dataclass(slots=True, eq=False)
class _Round:
    """One claim's flights, most urgent first, and their results as they come in."""

    ordered: list[FlightQuery]
    results: dict[FlightQuery, SyncResult] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return len(self.results) == len(self.ordered)


class _Rounds:
    """A due run's claims: each round leased, then deferred or released once all of its
    flights have results; the results handed on in claim order."""

    def __init__(self, engine: Engine, *, limit: int, due_by: datetime) -> None:
        self._engine = engine
        self._owner = f"{socket.gethostname()}:{engine.run_id}"
        self._left = limit  # flights this run may still claim
        self._due_by = due_by
        self._open: deque[_Round] = deque()  # claim order; closed ones wait for earlier ones
        self._round_of: dict[FlightQuery, _Round] = {}

    def claim(self) -> list[FlightQuery]:
        """The next round, most urgent first (none once ``limit`` is reached or nothing
        is due)."""
        engine = self._engine
        size = min(engine.settings.batch.size, self._left)
        if size <= 0:
            return []
        asked = time.perf_counter()
        with engine.database.session() as session:
            claimed = repo.claim_due(
                session, now=engine.clock.now(), due_by=self._due_by, limit=size,
                owner=self._owner, lease_seconds=engine.settings.batch.lease_seconds,
                postgres=engine.database.dialect == "postgresql",
                alerted_every=alerted_every(engine))
        # The claim's time, commit included (benchmarks/_scale.py reads it at -v).
        log.info("batch.due.claimed", flights=len(claimed),
                 ms=round((time.perf_counter() - asked) * 1000, 3))
        if not claimed:
            return []
        self._left -= len(claimed)
        try:
            with engine.database.session() as session:
                stored = repo.load_legs(session, [repo.key_of(q) for q in claimed])
        except BaseException:
            self._release(claimed)
            raise
        ordered = most_urgent_first(claimed, stored, engine.clock.now())
        round_ = _Round(ordered)
        self._open.append(round_)
        self._round_of.update(dict.fromkeys(ordered, round_))
        return ordered

    def settle(self, results: Sequence[SyncResult]) -> list[SyncResult]:
        """File ``results`` under their rounds; close the rounds that are complete. The
        results of the closed rounds at the head of the claim order, in that order."""
        for result in results:
            round_ = self._round_of.pop(result.query)
            round_.results[result.query] = result
            if round_.complete:
                self._close(round_)
        ordered: list[SyncResult] = []
        while self._open and self._open[0].complete:
            round_ = self._open.popleft()
            ordered.extend(round_.results[q] for q in round_.ordered)
        return ordered

    def _close(self, round_: _Round) -> None:
        engine = self._engine
        keys = [repo.key_of(q) for q in round_.ordered]
        if engine.interrupted:  # interrupted flights stay due for the next run
            self._release(round_.ordered)
            return
        with engine.database.session() as session:
            # Left for later by a spent budget: still due, for the next run (not this one,
            # whose claims stop at its start). The others not written (no provider covers
            # them): due again after RETRY_DUE. Both give their leases back.
            repo.defer_leased(session, [repo.key_of(r.query) for r in round_.results.values()
                                        if left_for_later_result(r)], self._owner,
                              until=engine.clock.now())
            repo.defer_leased(session, keys, self._owner,
                              until=engine.clock.now() + RETRY_DUE)

    def release_open(self) -> None:
        """Give back the leases of the rounds not closed (the run ended early)."""
        unfinished = [q for round_ in self._open if not round_.complete for q in round_.ordered]
        if unfinished:
            self._release(unfinished)

    def _release(self, queries: Sequence[FlightQuery]) -> None:
        with self._engine.database.session() as session:
            repo.release_leases(session, [repo.key_of(q) for q in queries], self._owner)


_MOVING = frozenset({FlightStatus.AIRBORNE, FlightStatus.DEPARTED, FlightStatus.BOARDING})


def most_urgent_first(queries: Sequence[FlightQuery],
                      stored: Mapping[repo.FlightKey, Sequence[repo.StoredLeg]],
                      now: datetime) -> list[FlightQuery]:
    """``queries`` most urgent first: flights moving (boarding, departed, airborne) first;
    then those still to depart, soonest first; then the rest, latest departure first; ties
    go to the flight that changed most (highest version). Stable otherwise."""
    def urgency(query: FlightQuery) -> tuple[int, float, int]:
        legs = stored.get(repo.key_of(query), ())
        if not legs:
            return (1, 0.0, 0)  # never synced: as soon as anything still to depart
        moving = next((leg for leg in legs if leg.record.status in _MOVING), None)
        version = max(leg.record.version for leg in legs)
        if moving is not None:
            return (0, 0.0, -version)
        first = legs[0].record
        departure = (first.estimated_departure or first.scheduled_departure)
        if departure is None:
            return (2, 0.0, -version)
        ahead = (departure - now).total_seconds()
        return (1, ahead, -version) if ahead >= 0 else (2, -ahead, -version)

    return sorted(queries, key=urgency)


def due_preview(engine: Engine, *, limit: int) -> list[FlightQuery]:
    """The flights ``batch_due`` would claim now, most urgent first, without claiming them."""
    now = engine.clock.now()
    with engine.database.session() as session:
        due = repo.due_flights(session, now=now, limit=limit,
                               alerted_every=alerted_every(engine))
        stored = repo.load_legs(session, [repo.key_of(q) for q in due])
    return most_urgent_first(due, stored, now)


def alerted_every(engine: Engine) -> float:
    """How often a flight with a live FlightAware alert is polled: its changes are pushed,
    so the poll only catches what the alerts leave out (README, "FlightAware alerts")."""
    return engine.settings.flightaware_alerts.poll_every_seconds


def left_for_later_result(result: SyncResult) -> bool:
    """Whether a due flight was left for a later run by spent budgets or quotas."""
    return not result.success and _left_outcomes(result.sources)


def still_tracked(legs: Sequence[Leg], now: datetime) -> bool:
    """Whether a flight with these resolved legs stays among the ones ``batch_due`` claims:
    until a day after its last arrival (actual, else estimated, else scheduled)."""
    if not legs:
        return True
    last = legs[-1]
    arrival = last.actual_arrival or last.estimated_arrival or last.scheduled_arrival
    return arrival is None or now < arrival + TRACKED_AFTER_ARRIVAL
