"""Retention from the engine (README, "Retention"): ``flightsync prune`` and the slice of
pruning after each ``batch --due``. The work is store/_prune.py's; this module reads the
horizons from ``settings.retention`` at the engine's clock, gives the batch slice its time
budget and the tests' kill point, and renders the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from flightsync.engine._killpoint import reached
from flightsync.errors import FlightsyncError, first_line
from flightsync.models import to_json_value
from flightsync.store import _prune as store_prune

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)


def prune(engine: Engine, *, dry_run: bool = False, full: bool = False,
          budget_seconds: float | None = None, clock: Callable[[], float] | None = None,
          tokens: bool = True) -> dict[str, Any]:
    """Remove (``dry_run``: count) what is past each retention horizon now; ``tokens``: also
    drop the cached tokens of providers no longer configured."""
    retention = engine.settings.retention
    now = engine.clock.now()
    found = store_prune.horizons(retention, now)
    if dry_run:
        report = store_prune.pending(engine.database, found, full=full)
    else:
        report = store_prune.prune(
            engine.database, found, now=now, chunk_rows=retention.chunk_rows,
            budget_seconds=budget_seconds, clock=clock or time.monotonic, hook=reached,
            full=full)
    dropped = drop_removed_tokens(engine) if tokens and not dry_run else 0
    out = {
        "dry_run": dry_run,
        "complete": report.complete,
        "tables": [{"name": h.name, "table": h.table.name, "before": to_json_value(h.cutoff),
                    "removed": report.removed.get(h.name, 0)} for h in found],
        "chunks": report.chunks,
        "resumed": report.resumed,
        "vacuumed_pages": report.vacuumed_pages,
        "tokens_dropped": dropped,
    }
    if not dry_run:
        log.info("prune.done", complete=report.complete, chunks=report.chunks,
                 removed=sum(report.removed.values()), resumed=report.resumed or None)
    return out


def drop_removed_tokens(engine: Engine) -> int:
    """Delete the cached OAuth tokens of providers no longer configured (their entries
    expire too, but a diskcache folder culls expired entries only as it is written)."""
    configured = set(engine.provider_set.adapters)
    bucket = engine.state.tokens
    dropped = 0
    for key in list(bucket.keys()):
        kind, _, rest = key.partition(":")
        provider = rest.partition(":")[0]
        if kind == "oauth" and provider and provider not in configured:
            dropped += int(bucket.delete(key))
    return dropped


def after_batch(engine: Engine) -> dict[str, Any] | None:
    """The pruning slice of a ``batch --due`` run: within ``retention.batch_budget_seconds``
    (0: none), a transaction of ``retention.chunk_rows`` rows at a time; what is left waits
    for the next run. The database only: the state store (Redis perhaps, lost mid-run) is
    `flightsync prune`'s to tidy, never a reason to fail a batch whose work is done."""
    budget = engine.settings.retention.batch_budget_seconds
    if budget <= 0:
        return None
    try:
        return prune(engine, budget_seconds=budget, clock=engine.clock.monotonic,
                     tokens=False)
    except (FlightsyncError, SQLAlchemyError) as exc:
        # Housekeeping never fails the run whose flights are already written: each chunk
        # is its own transaction, so what was removed stays removed and the next run (or
        # `flightsync prune`) carries on; a state store lost mid-run fails the flights it
        # touched, not the run's summary.
        log.warning("prune.slice.failed", error=first_line(exc) or type(exc).__name__)
        return None


__all__ = ["after_batch", "drop_removed_tokens", "prune"]
