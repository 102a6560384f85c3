"""The Prometheus text file written after each run (docs/CONTRACTS.md §7), for node_exporter's
textfile collector.

Totals come from the ``sync_run`` rows, not from this process's counters, so they only ever
grow whichever process or host wrote last. The metrics live in a private CollectorRegistry:
the default registry also holds counters other libraries register (stamina's retries), which
are per-process and do not belong in a file that outlives the process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from flightsync.errors import StoreError
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)

# The run kinds that record a sync_run row; only they rewrite the file.
RUN_KINDS = frozenset({"sync", "batch", "batch_due", "webhook"})
BREAKER_STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2}


class _Snapshot(Collector):
    """Serves metric families computed once, before the registry renders them."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def families(totals: Mapping[str, Any], breakers: Mapping[str, str],
             open_conflicts: int) -> list[Metric]:
    """The metric families from ``repository.run_totals``, breaker states by provider and
    the open conflict count."""
    syncs = CounterMetricFamily("flightsync_syncs", "Flight syncs attempted by all runs.",
                                value=totals["syncs"])
    failures = CounterMetricFamily("flightsync_sync_failures",
                                   "Flight syncs that failed (no provider answered).",
                                   value=totals["failures"])
    hits = CounterMetricFamily("flightsync_cache_hits",
                               "Provider observations served from the cache.",
                               value=totals["cache_hits"])
    misses = CounterMetricFamily("flightsync_cache_misses",
                                 "Provider observations fetched because the cache had none.",
                                 value=totals["cache_misses"])
    state = GaugeMetricFamily("flightsync_breaker_state",
                              "Circuit breaker per provider: 0 closed, 1 open, 2 half-open.",
                              labels=["provider"])
    for name, value in sorted(breakers.items()):
        state.add_metric([name], BREAKER_STATE_VALUES.get(value, 1))
    conflicts = GaugeMetricFamily("flightsync_conflicts_open",
                                  "Conflicts waiting for an operator.", value=open_conflicts)
    last: datetime | None = totals["last_success"]
    success = GaugeMetricFamily(
        "flightsync_last_success_timestamp_seconds",
        "Unix time the last run that synced flights finished (0: never).",
        value=0 if last is None else last.astimezone(UTC).timestamp())
    duration = GaugeMetricFamily("flightsync_run_duration_seconds",
                                 "Duration of the latest finished run of each kind.",
                                 labels=["kind"])
    for kind, seconds in sorted(totals["durations"].items()):
        duration.add_metric([kind], seconds)
    return [syncs, failures, hits, misses, state, conflicts, success, duration]


def budget_families(figures: Mapping[str, Mapping[str, Any]]) -> list[Metric]:
    """Per provider with a budget (README "Provider budgets"): calls and spend in the current
    UTC calendar ``window`` (minute, hour, day, month; each starts again from 0 with its
    window), and what each configured limit has left now (``window`` is the limit, e.g.
    ``5 per 1 second``)."""
    calls = CounterMetricFamily("flightsync_provider_calls",
                                "Provider calls made in the current UTC calendar window.",
                                labels=["provider", "window"])
    spend = CounterMetricFamily("flightsync_provider_spend",
                                "Money spent on a provider in the current UTC calendar "
                                "window, in the account's currency.",
                                labels=["provider", "window"])
    remaining = GaugeMetricFamily("flightsync_provider_quota_remaining",
                                  "Calls a provider's limit allows now in its moving window.",
                                  labels=["provider", "window"])
    for provider, figure in sorted(figures.items()):
        for window, count in figure["calls"].items():
            calls.add_metric([provider, window], count)
        for window, money in figure["spend"].items():
            spend.add_metric([provider, window], money)
        for limit in figure["limits"]:
            remaining.add_metric([provider, limit["limit"]], limit["remaining"])
    return [calls, spend, remaining]


def render(metric_families: Iterable[Metric]) -> bytes:
    """Prometheus text format of ``metric_families`` through a private registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(metric_families))
    return generate_latest(registry)


def write_atomically(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` so that a reader sees the old file or the new one,
    never a part: a temporary file in the same folder (same file system), then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # node_exporter runs as another user and only reads it
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def collect(engine: Engine) -> list[Metric]:
    """The metric families for ``engine``'s database and breakers, as of now."""
    with engine.database.session() as session:
        totals = repo.run_totals(session)
        open_conflicts = repo.counts(session, now=datetime.now(UTC))["open_conflicts"]
    views = engine.breakers.snapshot(list(engine.provider_set.adapters))
    return [*families(totals, {name: view.state for name, view in views.items()},
                      open_conflicts),
            *budget_families(engine.budgets.figures())]


def write_metrics(engine: Engine) -> Path | None:
    """Write ``settings.metrics.textfile`` when configured; a failure is logged, never raised
    (monitoring must not fail the run it reports on)."""
    path = engine.settings.metrics.textfile
    if path is None:
        return None
    try:
        write_atomically(path, render(collect(engine)))
    except OSError as exc:
        log.warning("metrics.write.failed", path=str(path), error=exc.strerror or str(exc))
        return None
    except StoreError as exc:
        log.warning("metrics.write.failed", path=str(path), error=exc.message)
        return None
    log.debug("metrics.written", path=str(path))
    return path
