"""A ``sync`` answered whole from the cache without opening the database.

``Engine.sync`` on a flight whose whole result is cached makes one cache lookup; the process
around it used to spend ~1 s importing the store (SQLAlchemy) and the HTTP stack only to
write the run's ``sync_run`` row. Here the same lookup runs on the settings, the provider set
(no clients built) and the cache alone, and the run is recorded in the state directory
(``_pending``) for the next command that opens the database. Anything else - a miss,
``--force``, an invalid ``--source``, a metrics file to rewrite - returns None and the caller
runs the engine, which decides and words every error.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from flightsync import config
from flightsync.engine import _pending
from flightsync.engine._cachekey import observation_cache
from flightsync.engine._choose import providers_for
from flightsync.errors import FlightsyncError
from flightsync.models import FlightQuery, SyncResult, SyncStatus
from flightsync.providers import build_providers
from flightsync.resilience import open_state

log = structlog.get_logger(__name__)


def sync_from_cache(settings: config.Settings, query: FlightQuery, *,
                    sources: Sequence[str] | None, run_id: str,
                    run_kind: str = "sync") -> SyncResult | None:
    """What ``Engine.sync(query, sources=sources)`` would return when the whole result is
    cached (the run recorded as pending, the cache counters updated), or None when the engine
    must run."""
    if settings.metrics.textfile is not None:
        return None  # that file is rewritten from sync_run after every run: open the database
    if settings.policy is not None:
        # A broken policy file is exit 2 whether or not the cache can answer (DESIGN 8),
        # rather than passing unnoticed until the first miss of a night's cron run.
        from flightsync.policy import load_policy  # noqa: PLC0415 - only with a policy file

        load_policy(settings.policy)
    started = datetime.now(UTC)
    state_path = config.state_dir(settings)
    with build_providers(settings, state_path) as providers:
        try:
            names = providers_for(providers, query, sources)
        except FlightsyncError:
            return None
        if not names:
            return None
        state = open_state(settings)
        cache = observation_cache(state, settings, providers)
    with state:
        result = cache.get_result(query, names)
        if result is None:
            return None
        counts = {"synced": 0, "from_cache": 1, "failed": 0,
                  "conflicts": int(result.sync_status == SyncStatus.CONFLICT),
                  "cache_hits": len(names), "cache_misses": 0, "requested": 1}
        cache.record(hits=len(names))
        _pending.record(state_path, config.database_url(settings), _pending.PendingRun(
            run_id=run_id, kind=run_kind, host=socket.gethostname(), started_at=started,
            finished_at=datetime.now(UTC), requested=1, counts=counts, outcome="ok"))
    log.info("run.finished", kind=run_kind, outcome="ok", pending=True, **counts)
    return result
