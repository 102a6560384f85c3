"""The alert conditions of ``status --check`` (docs/CONTRACTS.md section 7).

Each check reads what the store and the breakers already record, compares it with its
threshold from ``settings.alerts`` and, when it holds, returns one line that starts with the
alert's stable name (``breaker_open: ...``) so that scripts can match it.

A rate alert needs evidence (issue 16): the cache hit rate is judged on at least
``alerts.cache_hit_min_sample`` lookups, the batch success rate on a batch of at least
``alerts.batch_success_min_sample`` flights; each line says the figure and the sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flightsync.config import AlertSettings
from flightsync.models import to_json_value
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine
    from flightsync.resilience import BreakerView

# A `batch --due` run misses the cache by design (it syncs what is stale), so the hit rate is
# read from single syncs and file batches only.
CACHE_RATE_KINDS = ("sync", "batch")
BATCH_KINDS = ("batch", "batch_due")
CACHE_WINDOW = timedelta(hours=1)


def evaluate(engine: Engine, *, now: datetime, open_conflicts: int) -> list[str]:
    """Every alert that holds now, one line each (empty: all is well)."""
    limits = engine.settings.alerts
    views = engine.breakers.snapshot(list(engine.provider_set.adapters))
    with engine.database.session() as session:
        last_batch = repo.last_batch_run(session, BATCH_KINDS)
        recent = repo.runs_since(session, now - CACHE_WINDOW, CACHE_RATE_KINDS)
        unsynced = repo.unsynced_departing(
            session, now=now, within=timedelta(hours=limits.unsynced_departing_hours),
            older_than=timedelta(seconds=limits.unsynced_for_seconds),
            alerted_older_than=timedelta(
                seconds=engine.settings.flightaware_alerts.poll_every_seconds))
        abandoned = repo.abandoned_runs(
            session, started_before=now - timedelta(seconds=limits.abandoned_run_seconds))
    return [
        *breaker_alerts(limits, views, now),
        *batch_alerts(limits, last_batch),
        *cache_alerts(limits, recent),
        *conflict_alerts(limits, open_conflicts),
        *unsynced_alerts(limits, unsynced),
        *abandoned_alerts(limits, abandoned),
        *budget_alerts(engine.budgets.figures()),
    ]


def breaker_alerts(limits: AlertSettings, views: Mapping[str, BreakerView],
                   now: datetime) -> list[str]:
    out = []
    for name, view in sorted(views.items()):
        # Half-open is still "not closed": open_since survives a failed probe on purpose.
        if view.state == "closed" or view.open_since is None:
            continue
        seconds = (now - view.open_since).total_seconds()
        if seconds > limits.breaker_open_seconds:
            out.append(f"breaker_open: {name} has been {view.state} since "
                       f"{to_json_value(view.open_since)} ({seconds:.0f} s, over "
                       f"{limits.breaker_open_seconds:g} s)")
    return out


def batch_alerts(limits: AlertSettings, run: Mapping[str, Any] | None) -> list[str]:
    if run is None:
        return []
    ok = int(run["synced"]) + int(run["from_cache"])
    attempted = ok + int(run["failed"])
    if attempted == 0 or attempted < limits.batch_success_min_sample:
        return []  # too few flights to judge the rate on
    rate = ok / attempted
    if rate >= limits.batch_success_rate_min:
        return []
    return [f"batch_success_rate: last batch ({run['kind']}, run_id {run['run_id']}) synced "
            f"{ok} of {attempted} flights ({rate:.0%}, under "
            f"{limits.batch_success_rate_min:.0%}; sample {attempted} flights, at least "
            f"{limits.batch_success_min_sample} needed)"]


def cache_alerts(limits: AlertSettings, runs: Sequence[Mapping[str, Any]]) -> list[str]:
    hits = sum(int(r["cache_hits"]) for r in runs)
    misses = sum(int(r["cache_misses"]) for r in runs)
    sample = hits + misses
    if sample == 0 or sample < limits.cache_hit_min_sample:
        return []  # too few lookups to judge the rate on
    rate = hits / sample
    if rate >= limits.cache_hit_rate_min:
        return []
    return [f"cache_hit_rate: {rate:.0%} of {sample} provider lookups over the last "
            f"hour of sync and file batches (under {limits.cache_hit_rate_min:.0%}; sample "
            f"{sample} lookups, at least {limits.cache_hit_min_sample} needed)"]


def conflict_alerts(limits: AlertSettings, open_conflicts: int) -> list[str]:
    if open_conflicts <= limits.open_conflicts_max:
        return []
    noun = "conflict awaits" if open_conflicts == 1 else "conflicts await"
    return [f"open_conflicts: {open_conflicts} {noun} an operator (over "
            f"{limits.open_conflicts_max}); see `flightsync conflicts list`"]


def unsynced_alerts(limits: AlertSettings, unsynced: int) -> list[str]:
    if unsynced == 0:
        return []
    legs = "flight leg" if unsynced == 1 else "flight legs"
    return [f"unsynced_departing: {unsynced} tracked {legs} departing within "
            f"{limits.unsynced_departing_hours:g} h not synced for over "
            f"{_duration(limits.unsynced_for_seconds)}"]


def abandoned_alerts(limits: AlertSettings, runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line for the runs left ``running`` by a process that died (newest named)."""
    if not runs:
        return []
    newest = runs[0]
    more = f" (and {len(runs) - 1} older)" if len(runs) > 1 else ""
    return [f"abandoned_run: run {newest['run_id']} ({newest['kind']} on {newest['host']}) "
            f"started {to_json_value(newest['started_at'])} and is still `running` after "
            f"over {_duration(limits.abandoned_run_seconds)}{more}: its process was killed "
            "or crashed; its flights' leases expire on their own"]


# A budget alerts at these shares of it spent: a warning, then spent (README "Provider
# budgets"); spend is read for the current UTC calendar day and month.
BUDGET_ALERT_SHARES = ((1.0, "budget_spent"), (0.8, "budget_warning"))


def budget_alerts(figures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per provider and budget period at 80 % or more spent (``budget_warning``)
    or all of it (``budget_spent``), and per provider whose own quota answer blocks it
    (``quota_exhausted``)."""
    out = []
    for provider, figure in sorted(figures.items()):
        for period, cap in figure["budget"].items():
            spent = figure["spend"][period]
            share = spent / cap if cap else 1.0
            for threshold, name in BUDGET_ALERT_SHARES:
                if share >= threshold:
                    out.append(f"{name}: {provider} has spent {spent:g} of its {period} budget "
                               f"of {cap:g} ({share:.0%}, UTC calendar {period})")
                    break
        if figure["quota_exhausted_until"] is not None:
            out.append(f"quota_exhausted: {provider} answered that its quota is spent; no "
                       f"call to it until {figure['quota_exhausted_until']}")
    return out


def _duration(seconds: float) -> str:
    """``90 s``, ``15 min``, ``2.5 h``: a threshold in the unit it reads best in."""
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{round(seconds / 60, 1):g} min"
    return f"{round(seconds / 3600, 1):g} h"
