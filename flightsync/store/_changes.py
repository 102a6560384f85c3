"""The change feed: stored flight changes after a cursor, in order, each exactly once
(README, "Change feed").

The cursor is a ``flight_change`` row id. On SQLite ids are handed out under the one write
lock and committed in that order, so "every row after the cursor" is complete. On PostgreSQL a
sequence value is taken when a row is inserted, not when its transaction commits: a row with a
lower id can commit after a higher one was read, and a reader that moved its cursor past it
would never see it. So when the rows read leave a hole below the highest one, the reader
notes, after reading, every transaction of this database that holds a transaction id
(``pg_stat_activity.backend_xid``, read live from the server's process table), waits (bounded)
until each has ended, and reads that range again: whatever fills a hole must belong to one of
them (its writer held a transaction id before it took the sequence value, since every write
of a flight writes the flight row first), so after the wait the range is final; a hole that
stays is a rolled-back insert or a deleted flight's change. Transactions of other databases on
the same server are not waited for. If the wait runs out, only the rows before the first hole
are returned, and the next read starts there.
"""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from flightsync.store._columns import FlightKey
from flightsync.store.tables import Flight, FlightChange

_C = FlightChange.__table__  # type: ignore[attr-defined]
_F = Flight.__table__  # type: ignore[attr-defined]
SETTLE_SECONDS = 5.0  # the longest a reader waits for writers in progress (PostgreSQL)
_POLL_SECONDS = 0.02


def changes_after(session: Session, cursor: int, *, limit: int,
                  key: FlightKey | None = None) -> list[dict[str, Any]]:
    """Up to ``limit`` changes with an id above ``cursor``, oldest first, none missing."""
    rows = _read(session, cursor, limit=limit, key=key)
    if not rows or session.get_bind().dialect.name != "postgresql":
        return rows
    highest = rows[-1]["cursor"]
    if _complete(rows, cursor, key):
        return rows
    writers = _writers(session)
    deadline = time.monotonic() + SETTLE_SECONDS
    while writers:
        if time.monotonic() > deadline:
            return _before_first_hole(rows, cursor)
        time.sleep(_POLL_SECONDS)
        writers &= _writers(session)
    return _read(session, cursor, limit=limit, key=key, up_to=highest)


def _read(session: Session, cursor: int, *, limit: int, key: FlightKey | None,
          up_to: int | None = None) -> list[dict[str, Any]]:
    query = (select(_C.c.id, _F.c.carrier, _F.c.flight_number, _F.c.suffix,
                    _F.c.departure_date, _F.c.origin, _F.c.leg_index, _C.c.field, _C.c.old,
                    _C.c.new, _C.c.source, _C.c.rule, _C.c.version, _C.c.run_id, _C.c.at)
             .join(_F, _F.c.id == _C.c.flight_id)
             .where(_C.c.id > cursor).order_by(_C.c.id).limit(limit))
    if up_to is not None:
        query = query.where(_C.c.id <= up_to)
    if key is not None:
        carrier, number, suffix, day = key
        query = query.where(_F.c.carrier == carrier, _F.c.flight_number == number,
                            _F.c.suffix == suffix, _F.c.departure_date == day)
    return [_row(r) for r in session.execute(query).all()]


def _complete(rows: list[dict[str, Any]], cursor: int, key: FlightKey | None) -> bool:
    """No hole below the highest id read (with a flight filter, holes are other flights'
    rows: the check cannot tell, so it never trusts them)."""
    if key is not None:
        return False
    ids = [row["cursor"] for row in rows]
    return ids == list(range(cursor + 1, cursor + 1 + len(ids)))


def _before_first_hole(rows: list[dict[str, Any]], cursor: int) -> list[dict[str, Any]]:
    out = []
    expected = cursor + 1
    for row in rows:
        if row["cursor"] != expected:
            break
        out.append(row)
        expected += 1
    return out


def _writers(session: Session) -> set[tuple[int, str]]:
    """(pid, transaction id) of every other session of this database holding a transaction
    id now. The statistics views are read once per transaction: the commit after makes the
    next call see the present."""
    found = session.execute(_WRITERS).all()
    session.commit()
    return {(int(pid), str(xid)) for pid, xid in found}


_WRITERS = text("SELECT pid, backend_xid::text FROM pg_stat_activity "
                "WHERE datname = current_database() AND backend_xid IS NOT NULL "
                "AND pid <> pg_backend_pid()")


def _row(r: Any) -> dict[str, Any]:
    day: date = r.departure_date
    return {"cursor": r.id, "flight": f"{r.carrier}{r.flight_number}{r.suffix}",
            "date": day.isoformat(), "origin": r.origin, "leg_index": r.leg_index,
            "field": r.field, "old": _value(r.old), "new": _value(r.new),
            "source": r.source, "rule": r.rule, "version": r.version, "run_id": r.run_id,
            "at": r.at.isoformat() if r.at is not None else None}


def _value(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def last_cursor(session: Session) -> int:
    """The highest change id stored (0 when none): where ``--from-now`` starts."""
    found = session.execute(select(_C.c.id).order_by(_C.c.id.desc()).limit(1)).scalar()
    return int(found or 0)


__all__ = ["changes_after", "last_cursor"]
