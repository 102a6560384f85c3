"""One sync_run row per command: started on the first call, its totals updated after each."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import structlog

from flightsync.engine._results import left_for_later
from flightsync.models import SyncResult, SyncStatus
from flightsync.resilience import ObservationCache
from flightsync.store import Database
from flightsync.store import repository as repo

log = structlog.get_logger(__name__)


class RunBook:
    """This command's run: its row in ``sync_run`` and the cache hit/miss counters."""

    def __init__(self, database: Database, cache: ObservationCache, *, run_id: str,
                 kind: str, now: Callable[[], datetime] | None = None) -> None:
        self._database = database
        self._now = now or (lambda: datetime.now(UTC))
        self._cache = cache
        self.run_id = run_id
        self.kind = kind
        self.hits = 0
        self.misses = 0
        # Kept as counts, not results: an engine may serve many calls.
        self._tally = dict.fromkeys(("results", "synced", "from_cache", "failed",
                                     "conflicts"), 0)
        self._started = False
        self._recorded = (0, 0)

    def start(self, requested: int) -> None:
        """Insert the run row on the first call only."""
        if self._started:
            return
        self._started = True
        with self._database.session() as session:
            repo.start_run(session, run_id=self.run_id, kind=self.kind,
                           host=socket.gethostname(), now=self._now(),
                           requested=requested)

    def count(self, latest: Iterable[SyncResult]) -> None:
        """Add ``latest`` to the totals, to be written by the next ``finish``."""
        tally = self._tally
        for r in latest:
            tally["results"] += 1
            if not r.success:
                # Left for a later run by spent budgets: neither synced nor failed.
                tally["failed"] += 0 if left_for_later(r.sources) else 1
            elif r.from_cache:
                tally["from_cache"] += 1
            else:
                tally["synced"] += 1
            if r.sync_status == SyncStatus.CONFLICT:
                tally["conflicts"] += 1

    def finish(self, latest: Iterable[SyncResult] = (), requested: int | None = None, *,
               outcome: str | None = None) -> None:
        """Add ``latest`` to the totals and write them (and the cache counters) out;
        ``outcome`` (``interrupted``) replaces the one the results decide."""
        self.count(latest)
        tally = self._tally
        failed, total = tally["failed"], tally["results"]
        counts = {
            "synced": tally["synced"], "from_cache": tally["from_cache"], "failed": failed,
            "conflicts": tally["conflicts"], "cache_hits": self.hits,
            "cache_misses": self.misses,
            "requested": total if requested is None else requested,
        }
        if outcome is None:
            outcome = "ok" if failed == 0 else ("failed" if failed == total else "partial")
        self._cache.record(self.hits - self._recorded[0], self.misses - self._recorded[1])
        self._recorded = (self.hits, self.misses)
        repo.finish_run_alone(self._database.engine, run_id=self.run_id,
                              now=self._now(), counts=counts, outcome=outcome)
        log.info("run.finished", kind=self.kind, outcome=outcome, **counts)
