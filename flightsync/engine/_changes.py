"""`changes`: the stored flight changes after a cursor, once or following (README, "Change
feed"). The database is polled; a wait between polls is bounded and ends at once on stop."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from flightsync.models import FlightQuery
from flightsync.store import Database
from flightsync.store import repository as repo

PAGE = 500  # changes read per query


def changes(database: Database, since: int, *, query: FlightQuery | None = None,
            limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Every change after ``since`` stored now (at most ``limit``), oldest first."""
    cursor, left = since, limit
    while left is None or left > 0:
        page = PAGE if left is None else min(PAGE, left)
        with database.session() as session:
            rows = repo.changes_after(session, cursor, limit=page,
                                 key=repo.key_of(query) if query else None)
        if not rows:
            return
        yield from rows
        cursor = rows[-1]["cursor"]
        if left is not None:
            left -= len(rows)
        if len(rows) < page:
            return


def last_cursor(database: Database) -> int:
    with database.session() as session:
        return int(repo.last_cursor(session))


def follow(database: Database, since: int, *, interval: float, stop: threading.Event,
           emit: Callable[[dict[str, Any]], None],
           query: FlightQuery | None = None) -> int:
    """Emit every change after ``since``, then each new one, polling every ``interval``
    seconds until ``stop`` is set; returns the last cursor emitted."""
    cursor = since
    while not stop.is_set():
        for row in changes(database, cursor, query=query):
            emit(row)
            cursor = int(row["cursor"])
            if stop.is_set():
                return cursor
        stop.wait(interval)
    return cursor
