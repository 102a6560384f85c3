"""``sync_run`` rows and the run reporting built on them (``status``, alerts, metrics): a
command's run row from start to finish, the latest runs, totals over every run, and the
flight and conflict counts shown beside them.

Every function but ``finish_run_alone`` takes an open Session and leaves committing to the
caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from flightsync.errors import StoreError
from flightsync.models import to_json_value
from flightsync.store._engine import describe, display
from flightsync.store._fa_alerts import live_alert_exists
from flightsync.store.tables import Conflict, Flight, SyncRun

_F = Flight.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]
_RUN = SyncRun.__table__  # type: ignore[attr-defined]
_FINISH_RUN = update(_RUN).where(_RUN.c.run_id == bindparam("b_run_id"))


def start_run(session: Session, *, run_id: str, kind: str, host: str, now: datetime,
              requested: int) -> None:
    session.execute(_RUN.insert().values(run_id=run_id, kind=kind, host=host, started_at=now,
                                         requested=requested, outcome="running"))


def finish_run(session: Session, *, run_id: str, now: datetime, counts: Mapping[str, int],
               outcome: str) -> None:
    session.execute(_FINISH_RUN, {"b_run_id": run_id, "finished_at": now, "outcome": outcome,
                                  **counts})


def finish_run_alone(engine: Engine, *, run_id: str, now: datetime,
                     counts: Mapping[str, int], outcome: str) -> None:
    """``finish_run`` in a transaction of its own on a bare connection: the Session around
    this one statement was a third of a cached in-process sync (benchmarks/RESULTS.md)."""
    try:
        with engine.begin() as conn:
            conn.execute(_FINISH_RUN, {"b_run_id": run_id, "finished_at": now,
                                       "outcome": outcome, **counts})
    except OperationalError as exc:  # as Database.session words it
        raise StoreError(f"database {display(engine.url)}: {describe(exc, engine.url)}",
                         url=display(engine.url)) from exc


def last_run(session: Session, kinds: Sequence[str] | None = None) -> dict[str, Any] | None:
    query = select(_RUN).where(_RUN.c.finished_at.is_not(None))
    if kinds:
        query = query.where(_RUN.c.kind.in_(list(kinds)))
    row = session.execute(query.order_by(_RUN.c.started_at.desc()).limit(1)).first()
    if row is None:
        return None
    return {k: to_json_value(v) for k, v in row._mapping.items() if k != "id"}


def runs_since(session: Session, since: datetime, kinds: Sequence[str]) -> list[dict[str, Any]]:
    rows = session.execute(select(_RUN).where(
        _RUN.c.started_at >= since, _RUN.c.kind.in_(list(kinds)),
        _RUN.c.finished_at.is_not(None))).all()
    return [dict(row._mapping) for row in rows]


def abandoned_runs(session: Session, *, started_before: datetime) -> list[dict[str, Any]]:
    """Runs still ``running`` that started before ``started_before``, newest first: their
    process died without closing them (SIGKILL, a crash, a lost host)."""
    rows = session.execute(select(_RUN.c.run_id, _RUN.c.kind, _RUN.c.host, _RUN.c.started_at)
                           .where(_RUN.c.outcome == "running", _RUN.c.finished_at.is_(None),
                                  _RUN.c.started_at < started_before)
                           .order_by(_RUN.c.started_at.desc())).all()
    return [dict(row._mapping) for row in rows]


ESTIMATE_ABOVE = 100_000
"""Above this many ``flight`` rows (by the planner's figure) ``counts`` gives PostgreSQL's
estimate instead of counting: a full count reads the whole table."""


def counts(session: Session, *, now: datetime) -> dict[str, Any]:
    """The figures ``status`` shows: ``flights`` (legs stored), ``stale`` (tracked and due),
    ``open_conflicts``, and ``estimates`` naming the figures that are estimates. On
    PostgreSQL, above ``ESTIMATE_ABOVE`` rows the flights figure is the planner's
    (``pg_class.reltuples``, as of the last ANALYZE), given as ``flights_estimated``."""
    estimated = _estimated_rows(session, "flight")
    out: dict[str, Any] = {}
    if estimated is not None and estimated > ESTIMATE_ABOVE:
        out["flights_estimated"] = estimated
    else:
        out["flights"] = session.execute(select(func.count()).select_from(_F)).scalar_one()
    out["stale"] = session.execute(select(func.count()).select_from(_F).where(
        _F.c.tracked.is_(True), _F.c.next_sync_due_at <= now)).scalar_one()
    out["open_conflicts"] = session.execute(select(func.count()).select_from(_CONFLICT).where(
        _CONFLICT.c.status == "open")).scalar_one()
    out["estimates"] = [name for name in out if name.endswith("_estimated")]
    return out


def _estimated_rows(session: Session, table: str) -> int | None:
    """PostgreSQL's own row estimate for ``table`` (None on SQLite, or before the table was
    ever analysed)."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    found = session.execute(text(
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"), {"name": table},
    ).scalar()
    return None if found is None or found < 0 else int(found)


def unsynced_departing(session: Session, *, now: datetime, within: timedelta,
                       older_than: timedelta, alerted_older_than: timedelta | None = None,
                       ) -> int:
    """Tracked flights departing within ``within`` whose last sync is older than ``older_than``
    (``alerted_older_than``, when longer, for a flight with a live FlightAware alert: it is
    polled that rarely on purpose)."""
    stale = or_(_F.c.last_synced_at.is_(None), _F.c.last_synced_at < now - older_than)
    if alerted_older_than is not None and alerted_older_than > older_than:
        stale = or_(_F.c.last_synced_at.is_(None), and_(
            _F.c.last_synced_at < now - older_than,
            or_(~live_alert_exists(), _F.c.last_synced_at < now - alerted_older_than)))
    return int(session.execute(select(func.count()).select_from(_F).where(
        _F.c.tracked.is_(True), _F.c.scheduled_departure >= now,
        _F.c.scheduled_departure <= now + within, stale,
    )).scalar_one())


def last_batch_run(session: Session, kinds: Sequence[str]) -> dict[str, Any] | None:
    """The latest finished run of ``kinds`` that attempted at least one flight (an empty
    ``--due`` run says nothing about the success rate, and neither does one an operator
    interrupted: its unfinished flights count as failed)."""
    attempted = _RUN.c.synced + _RUN.c.from_cache + _RUN.c.failed
    row = session.execute(select(_RUN).where(
        _RUN.c.kind.in_(list(kinds)), _RUN.c.finished_at.is_not(None), attempted > 0,
        _RUN.c.outcome != "interrupted",
    ).order_by(_RUN.c.started_at.desc(), _RUN.c.id.desc()).limit(1)).first()
    return None if row is None else dict(row._mapping)


SUCCESS_OUTCOMES = ("ok", "partial")


def run_totals(session: Session) -> dict[str, Any]:
    """Counters summed over every finished run (monotonic across processes and hosts), the
    last successful run's end, and each run kind's latest duration in seconds."""
    finished = _RUN.c.finished_at.is_not(None)
    sums = session.execute(select(
        func.coalesce(func.sum(_RUN.c.synced), 0), func.coalesce(func.sum(_RUN.c.from_cache), 0),
        func.coalesce(func.sum(_RUN.c.failed), 0), func.coalesce(func.sum(_RUN.c.cache_hits), 0),
        func.coalesce(func.sum(_RUN.c.cache_misses), 0),
    ).where(finished)).one()
    last_success = session.execute(select(func.max(_RUN.c.finished_at)).where(
        finished, _RUN.c.outcome.in_(SUCCESS_OUTCOMES))).scalar_one()
    durations: dict[str, float] = {}
    for (kind,) in session.execute(select(_RUN.c.kind).where(finished).distinct()).all():
        started, ended = session.execute(
            select(_RUN.c.started_at, _RUN.c.finished_at).where(finished, _RUN.c.kind == kind)
            .order_by(_RUN.c.started_at.desc(), _RUN.c.id.desc()).limit(1)).one()
        durations[kind] = max((ended - started).total_seconds(), 0.0)
    synced, from_cache, failed, hits, misses = (int(v) for v in sums)
    return {"syncs": synced + from_cache + failed, "failures": failed, "cache_hits": hits,
            "cache_misses": misses, "last_success": last_success, "durations": durations}


__all__ = ["SUCCESS_OUTCOMES", "abandoned_runs", "counts", "finish_run", "finish_run_alone",
           "last_batch_run", "last_run", "run_totals", "runs_since", "start_run",
           "unsynced_departing"]
