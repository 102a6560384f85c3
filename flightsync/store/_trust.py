"""Learned source accuracy (policy rule ``accuracy``): the observations it learns from and
the per-field scores and source-pair dependence it stores.

Every function takes an open Session and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from flightsync.store.tables import SourceDependence, SourceObservation, SourceScore

_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_SCORE = SourceScore.__table__  # type: ignore[attr-defined]
_DEPENDENCE = SourceDependence.__table__  # type: ignore[attr-defined]


def latest_observation_values(session: Session, *, since: datetime | None = None,
                              limit: int | None = None,
                              ) -> list[tuple[int, str, dict[str, Any]]]:
    """(leg id, source, JSON values) of each source's latest observation of each leg, among
    the observations made or confirmed at or after ``since`` (None: the whole history).

    One claim per provider per leg: an unchanged re-fetch confirms the stored row instead of
    adding one, and a changed one supersedes it, so how often a provider was asked weighs
    nothing in what is learned. ``limit``: only the newest that many (leg, source) pairs, so
    that what is held in memory stays bounded at a million tracked flights."""
    latest = select(func.max(_OBS.c.id)).group_by(_OBS.c.flight_id, _OBS.c.source)
    if since is not None:
        latest = latest.where(_OBS.c.confirmed_at >= since)
    if limit is not None:
        latest = latest.order_by(func.max(_OBS.c.id).desc()).limit(limit)
    rows = session.execute(
        select(_OBS.c.flight_id, _OBS.c.source, _OBS.c["values"])
        .where(_OBS.c.id.in_(latest)).order_by(_OBS.c.flight_id, _OBS.c.source)).all()
    return [(row[0], row[1], dict(row[2] or {})) for row in rows]


def source_scores(session: Session) -> list[dict[str, Any]]:
    """Every stored score row (``source``, ``field``, ``accuracy``, ``coverage``,
    ``observations``, ``computed_at``), by source then field."""
    rows = session.execute(select(_SCORE).order_by(_SCORE.c.source, _SCORE.c.field)).all()
    return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]


def replace_source_scores(session: Session, scores: Iterable[Mapping[str, Any]], *,
                          now: datetime) -> int:
    """Replace all stored scores with ``scores`` (keys ``source``, ``field``, ``accuracy``,
    ``coverage``, ``observations``). In one transaction readers see the old set or the new
    one, never a mix. Returns the number of rows stored."""
    rows = [{**dict(score), "computed_at": now} for score in scores]
    session.execute(delete(_SCORE))
    if rows:
        session.execute(_SCORE.insert(), rows)
    return len(rows)


def source_dependence(session: Session) -> list[dict[str, Any]]:
    """Every stored dependence row (``source``, ``other``, ``dependence``, ``computed_at``),
    by pair."""
    rows = session.execute(select(_DEPENDENCE).order_by(_DEPENDENCE.c.source,
                                                        _DEPENDENCE.c.other)).all()
    return [{k: v for k, v in row._mapping.items() if k != "id"} for row in rows]


def replace_source_dependence(session: Session, pairs: Iterable[Mapping[str, Any]], *,
                              now: datetime) -> int:
    """Replace all stored dependence rows with ``pairs`` (keys ``source``, ``other``,
    ``dependence``); call it in the session that replaces the scores, so that readers see
    one estimate. Returns the number of rows stored."""
    rows = [{**dict(pair), "computed_at": now} for pair in pairs]
    session.execute(delete(_DEPENDENCE))
    if rows:
        session.execute(_DEPENDENCE.insert(), rows)
    return len(rows)


def last_scores_at(session: Session) -> datetime | None:
    """When the learned source scores were last computed (None: never)."""
    value = session.execute(select(func.max(_SCORE.c.computed_at))).scalar()
    return value if isinstance(value, datetime) else None


__all__ = ["last_scores_at", "latest_observation_values", "replace_source_dependence",
           "replace_source_scores", "source_dependence", "source_scores"]
