"""Due-flight runs (``batch --due``): lease the flights whose refresh is due, sync them, give
the leases back; and how long a synced flight stays tracked for them.

Several workers may run at once (cron on more than one host): each claims ``batch.size``
flights at a time under a lease named after its host and run, so no two workers sync the same
flight, and a worker that dies leaves leases that expire instead of flights that stay claimed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from flightsync.engine import _fa_alerts_registry, _sources
from flightsync.engine._results import BatchResult
from flightsync.models import FlightQuery, Leg, SyncResult
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

RETRY_DUE = timedelta(minutes=15)  # a due flight no provider could take waits this long
TRACKED_AFTER_ARRIVAL = timedelta(hours=24)  # docs/CONTRACTS.md section 7, tracking


def batch_due(engine: Engine, *, limit: int, notify: bool,
              progress: Callable[[int], None] | None) -> BatchResult:
    """Sync up to ``limit`` due flights, claimed ``batch.size`` at a time under leases."""
    started = datetime.now(UTC)
    owner = f"{socket.gethostname()}:{engine.run_id}"
    engine.runbook.start(0)
    results: list[SyncResult] = []
    while len(results) < limit and not engine.interrupted:
        size = min(engine.settings.batch.size, limit - len(results))
        with engine.database.session() as session:
            claimed = repo.claim_due(
                session, now=datetime.now(UTC), due_by=started, limit=size, owner=owner,
                lease_seconds=engine.settings.batch.lease_seconds,
                postgres=engine.database.dialect == "postgresql",
                alerted_every=alerted_every(engine))
        if not claimed:
            break
        keys = [repo.key_of(q) for q in claimed]
        try:
            results.extend(engine._run(claimed, force=True, sources=None, notify=notify,
                                       progress=progress))
            if not engine.interrupted:  # interrupted flights stay due for the next run
                with engine.database.session() as session:
                    repo.defer_leased(session, keys, owner,
                                      until=datetime.now(UTC) + RETRY_DUE)
        finally:
            with engine.database.session() as session:
                repo.release_leases(session, keys, owner)
    engine.runbook.finish(results, requested=len(results), outcome=engine.outcome_override)
    if not engine.interrupted:
        _sources.relearn_after(engine.database, engine.policy, results)
        _fa_alerts_registry.retire_finished(engine.alert_desk())
    return BatchResult.of(engine.run_id, results, started, interrupted=engine.interrupted)


def due_preview(engine: Engine, *, limit: int) -> list[FlightQuery]:
    """The flights ``batch_due`` would claim now, most urgent first, without claiming them."""
    with engine.database.session() as session:
        return repo.due_flights(session, now=datetime.now(UTC), limit=limit,
                                alerted_every=alerted_every(engine))


def alerted_every(engine: Engine) -> float:
    """How often a flight with a live FlightAware alert is polled: its changes are pushed,
    so the poll only catches what the alerts leave out (README, "FlightAware alerts")."""
    return engine.settings.flightaware_alerts.poll_every_seconds


def still_tracked(legs: Sequence[Leg], now: datetime) -> bool:
    """Whether a flight with these resolved legs stays among the ones ``batch_due`` claims:
    until a day after its last arrival (actual, else estimated, else scheduled)."""
    if not legs:
        return True
    last = legs[-1]
    arrival = last.actual_arrival or last.estimated_arrival or last.scheduled_arrival
    return arrival is None or now < arrival + TRACKED_AFTER_ARRIVAL
