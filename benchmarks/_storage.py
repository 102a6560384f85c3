"""``python -m benchmarks --storage``: how the database grows over weeks of unattended runs.

Simulated days of ``batch --due`` rounds against the sandbox (a process of its own, no
latency), driven in process: the engine's clock (``Engine.clock``, a ManualClock) and the
sandbox's ``now`` move forward together, so 45 days take minutes. Every simulated day at
00:00 UTC ``new_per_day`` LH flights departing the next day enter (a file ``batch`` syncs
them, which tracks them); ``batch --due`` runs every ``round_minutes`` and syncs what is due
(the cache TTLs decide: 15 min for a flight within a day of departure or arrival, an hour
for later ones); a flight leaves the due set a day after it arrives. Each flight gets a few
changes on top of the status moving along its day: a gate change three hours before
departure, and for every other flight a 25-minute delay two hours before (sandbox
overrides); the providers report them from then on.

Three providers per flight (lufthansa, amadeus, flightaware: the sandbox's LH coverage);
the others are disabled to keep the run short. ``mode="before"`` emulates main before issue
16 inside the same code: every answer stored as a new observation with its raw text
uncompressed, and no pruning. ``mode="after"`` is this branch with ``retention.flights_days``
30 (finished flights go with their rows, so the size can stop growing within the run).

Printed per simulated day: the database's size (pages in use, what the file holds after a
checkpoint and vacuum), the flights tracked at the day's end, the day's growth per tracked
flight, and the curve.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import func, select

from benchmarks._env import Bench
from flightsync.engine._clock import ManualClock
from flightsync.engine._engine import Engine
from flightsync.engine._runbook import RunBook
from flightsync.engine._wiring import new_run_id, open_engine
from flightsync.models import FlightQuery
from flightsync.sandbox._truth import flight_truth
from flightsync.store import Database, _write
from flightsync.store.tables import Flight

START = datetime(2026, 1, 5, tzinfo=UTC)
_F = Flight.__table__  # type: ignore[attr-defined]
_DISABLED = ("airfrance_klm", "british_airways", "cirium", "aviationstack", "aerodatabox")


@dataclass
class DayFigure:
    day: int
    size_bytes: int
    tracked: int
    flights: int
    syncs: int
    growth_per_tracked: float | None = None
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class StorageRun:
    mode: str
    days: int
    round_minutes: int
    new_per_day: int
    figures: list[DayFigure] = field(default_factory=list)
    elapsed_s: float = 0.0
    syncs: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "days": self.days, "round_minutes": self.round_minutes,
                "new_per_day": self.new_per_day, "elapsed_s": round(self.elapsed_s, 1),
                "syncs": self.syncs, **summary(self),
                "per_day": [vars(f) for f in self.figures]}


def summary(run: StorageRun) -> dict[str, Any]:
    """Bytes per tracked flight per day while nothing is pruned yet (days 2-30: the first
    day only seeds), and how flat the size is over the last 10 days."""
    growing = [f.growth_per_tracked for f in run.figures[1:30] if f.growth_per_tracked]
    last = [f.size_bytes for f in run.figures[-10:]]
    mean = sum(last) / len(last) if last else 0
    return {
        "bytes_per_tracked_flight_day": round(sum(growing) / len(growing)) if growing else None,
        "last10_spread_pct": round(100 * (max(last) - min(last)) / mean / 2, 2) if mean else None,
        "final_size_bytes": run.figures[-1].size_bytes if run.figures else None,
        "min_tracked": min((f.tracked for f in run.figures), default=0),
    }


@contextmanager
def _before_issue_16() -> Iterator[None]:
    """Main's write path: no answer recognised as unchanged, raw text kept uncompressed."""
    saved = _write.observation_hash, _write.compress_raw
    _write.observation_hash = lambda values: uuid.uuid4().hex  # type: ignore[assignment]
    _write.compress_raw = lambda raw: raw.encode("utf-8") if raw else None  # type: ignore[assignment]
    try:
        yield
    finally:
        _write.observation_hash, _write.compress_raw = saved


def _config(mode: str) -> dict[str, Any]:
    retention: dict[str, Any] = ({"batch_budget_seconds": 0} if mode == "before"
                                 else {"flights_days": 30, "batch_budget_seconds": 2})
    return {"providers": {name: {"enabled": False} for name in _DISABLED},
            "retention": retention, "http": {"max_workers": 16},
            "retry": {"attempts": 1}, "batch": {"size": 500}}


class _World:
    """The sandbox's clock and overrides, moved with the engine's."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.changes: dict[FlightQuery, list[tuple[datetime, dict[str, Any]]]] = {}

    def add(self, query: FlightQuery) -> None:
        truth = flight_truth(query.carrier, query.number, query.departure_date)
        departs = truth.legs[0].scheduled_departure.astimezone(UTC)
        planned = [(departs - timedelta(hours=3),
                    {"departure_gate": f"Z{query.number % 50 + 1}"})]
        if query.number % 2 == 0:
            planned.append((departs - timedelta(hours=2), {"delay_minutes": 25}))
        self.changes[query] = planned

    def move(self, now: datetime) -> None:
        overrides = []
        for query, planned in list(self.changes.items()):
            if query.departure_date < (now - timedelta(days=3)).date():
                del self.changes[query]  # long gone from the due set
                continue
            fields: dict[str, Any] = {}
            for at, change in planned:
                if at <= now:
                    fields.update(change)
            if fields:
                overrides.append({"flight": query.designator,
                                  "date": query.departure_date.isoformat(), "fields": fields})
        body = json.dumps({"now": now.isoformat().replace("+00:00", "Z"),
                           "overrides": overrides}).encode()
        request = urllib.request.Request(f"{self.bench.base_url}/_sandbox/scenario", data=body,
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            reply.read()


def _rows(database: Database) -> dict[str, int]:
    with database.session() as session:
        return {table: int(session.connection().exec_driver_sql(
            f"SELECT count(*) FROM {table}").scalar_one())
            for table in ("source_observation", "flight_change", "sync_run", "conflict")}


def _figures(database: Database, now: datetime) -> tuple[int, int, int]:
    with database.session() as session:
        conn = session.connection()
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        free = int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
        size = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        tracked = int(session.execute(select(func.count()).select_from(_F).where(
            _F.c.tracked.is_(True))).scalar_one())
        flights = int(session.execute(select(func.count()).select_from(_F)).scalar_one())
    return (pages - free) * size, tracked, flights


def run_storage(*, mode: str, days: int, round_minutes: int, new_per_day: int,
                note: Callable[[str], None]) -> StorageRun:
    result = StorageRun(mode=mode, days=days, round_minutes=round_minutes,
                        new_per_day=new_per_day)
    started = time.perf_counter()
    with Bench(latency_ms=0) as bench, (_before_issue_16() if mode == "before"
                                        else _nothing()):
        bench.config_path.write_text(yaml.safe_dump(_config(mode)), encoding="utf-8")
        settings = bench.settings()
        world = _World(bench)
        clock = ManualClock(START)
        database = Database.open(bench.database_url)
        previous = _figures(database, START)[0]
        number = 0
        # One engine for the whole run (building one per round cost more than the round);
        # each round still gets its own run id and sync_run row, as a cron process would.
        with open_engine(settings, run_kind="batch_due") as engine:
            engine.clock = clock
            _days(engine, world, clock, database, result, note, previous, number)
        database.close()
    result.elapsed_s = time.perf_counter() - started
    return result


def _days(engine: Engine, world: _World, clock: ManualClock, database: Database,
          result: StorageRun, note: Callable[[str], None], previous: int, number: int) -> None:
    days, round_minutes, new_per_day, mode = (result.days, result.round_minutes,
                                              result.new_per_day, result.mode)
    for day in range(days):
        midnight = START + timedelta(days=day)
        tomorrow: date = (midnight + timedelta(days=1)).date()
        queries = []
        for _ in range(new_per_day):
            number = number % 8999 + 1
            queries.append(FlightQuery(carrier="LH", number=number,
                                       departure_date=tomorrow))
        for query in queries:
            world.add(query)
        synced = 0
        for step in range(24 * 60 // round_minutes):
            now = midnight + timedelta(minutes=step * round_minutes)
            clock.set(now)
            world.move(now)
            if step == 0:
                synced += _round(engine, clock, "batch", queries)
            synced += _round(engine, clock, "batch_due", None)
        size, tracked, flights = _figures(database, clock.now())
        growth = (size - previous) / tracked if tracked else None
        previous = size
        result.figures.append(DayFigure(day=day + 1, size_bytes=size, tracked=tracked,
                                        flights=flights, syncs=synced,
                                        growth_per_tracked=None if growth is None
                                        else round(growth), rows=_rows(database)))
        result.syncs += synced
        note(f"storage {mode}: day {day + 1:2d}  {size / 1e6:8.2f} MB  "
             f"tracked {tracked:4d}  flights {flights:5d}  syncs {synced:5d}  "
             f"{(growth or 0) / 1000:7.2f} KB/tracked flight  "
             f"{result.figures[-1].rows}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _round(engine: Engine, clock: ManualClock, kind: str,
           queries: list[FlightQuery] | None) -> int:
    """One cron process's run: its own run id and sync_run row, on the simulated clock."""
    engine.run_id, engine.run_kind = new_run_id(), kind
    engine.runbook = RunBook(engine.database, engine.cache, run_id=engine.run_id, kind=kind,
                             now=clock.now)
    if queries is not None:
        result = engine.batch(queries, notify=False)
    else:
        result = engine.batch_due(limit=1_000_000, notify=False)
    return result.flights


def render(runs: list[StorageRun]) -> str:
    lines = []
    for run in runs:
        figures = summary(run)
        lines.append(f"{run.mode}: {run.days} days, rounds every {run.round_minutes} min, "
                     f"{run.new_per_day} new flights a day, {run.syncs} syncs, "
                     f"{run.elapsed_s:.0f} s")
        lines.append(f"  bytes per tracked flight per day (days 2-30): "
                     f"{figures['bytes_per_tracked_flight_day']}")
        lines.append(f"  final size {figures['final_size_bytes']} bytes; last 10 days "
                     f"within +/-{figures['last10_spread_pct']} %; at least "
                     f"{figures['min_tracked']} flights tracked at every day's end")
        lines.append("  day   size MB  tracked  KB/tracked")
        top = max((f.size_bytes for f in run.figures), default=1) or 1
        for f in run.figures:
            bar = "#" * round(40 * f.size_bytes / top)
            lines.append(f"  {f.day:3d} {f.size_bytes / 1e6:9.2f} {f.tracked:8d} "
                         f"{(f.growth_per_tracked or 0) / 1000:10.2f}  {bar}")
    return "\n".join(lines)


__all__ = ["StorageRun", "render", "run_storage", "summary"]
