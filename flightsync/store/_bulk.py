"""The write group's statements on SQLite, sent with the driver's executemany.

SQLAlchemy processes every bound value of an executemany in Python (22 datetimes per flight
through UTCDateTime and SQLite's DATETIME, JSON for observations): about half of a changed
flight's write time. Here each value is converted once by the store's own rules
(``_types.sqlite_text`` for instants, ``_types.json_column`` for JSON columns, dates in ISO
form) and the rows go to sqlite3 as tuples, inside the session's transaction.
tests/test_write_bulk.py holds the stored rows equal to the generic path's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Table
from sqlalchemy.engine import Connection

from flightsync.store._types import (
    UTCDateTime,
    from_sqlite_text,
    json_column,
    json_value,
    sqlite_text,
)

_Convert = Callable[[Any], Any]
_WHERE = ("b_id", "b_version")  # the UPDATE's optimistic-check parameters


class SQLiteRows:
    """Converts rows to the driver's parameter tuples and runs them, caching each statement's
    text per key set and each instant's text (the same few recur in every row of a group)."""

    def __init__(self) -> None:
        self._times: dict[datetime, str] = {}

    def insert(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        names = tuple(rows[0])
        sql = _INSERTS.get((table.name, names))
        if sql is None:
            columns = ", ".join(_q(table, n) for n in names)
            sql = _INSERTS[(table.name, names)] = (
                f'INSERT INTO "{table.name}" ({columns}) '  # noqa: S608 - see _q
                f'VALUES ({", ".join("?" * len(names))})')
        conn.exec_driver_sql(sql, self._tuples(table, names, rows))

    def update(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
        """UPDATE ... SET sync_attempts + 1 and the rows' other keys WHERE id and version
        match ``b_id``/``b_version``; returns how many rows matched in all."""
        names = tuple(n for n in rows[0] if n not in _WHERE) + _WHERE
        sql = _UPDATES.get((table.name, names))
        if sql is None:
            sets = ", ".join(f"{_q(table, n)} = ?" for n in names[:-2])
            sql = _UPDATES[(table.name, names)] = (
                f'UPDATE "{table.name}" SET sync_attempts = sync_attempts + 1, '  # noqa: S608
                f"{sets} WHERE id = ? AND version = ?")
        result = conn.exec_driver_sql(sql, self._tuples(table, names, rows))
        return int(result.rowcount)

    def _tuples(self, table: Table, names: tuple[str, ...],
                rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        get = itemgetter(*names)  # names: always two or more, so get returns a tuple
        times, others = _kinds(table, names)
        if not times and not others:
            return [get(row) for row in rows]
        # Column by column: a column's instants are mostly one (the group's "now").
        columns: list[Sequence[Any]] = list(zip(*[get(row) for row in rows], strict=True))
        cache = self._times
        for i in times:
            columns[i] = [None if v is None else cache.get(v) or self._time(v)
                          for v in columns[i]]
        for i, convert in others:
            columns[i] = [None if v is None else convert(v) for v in columns[i]]
        return list(zip(*columns, strict=True))

    def _time(self, value: datetime) -> str:
        text = self._times[value] = sqlite_text(value)
        return text


def select_rows(conn: Connection, table: Table, columns: Sequence[str], where: str,
                params: Sequence[Any]) -> list[list[Any]]:
    """``SELECT columns FROM table WHERE where`` with each value read back as SQLAlchemy
    reads it (aware UTC instants, dates, JSON, bools); ``where`` uses ``?`` placeholders."""
    types = [table.c[name].type for name in columns]
    times = [i for i, t in enumerate(types) if isinstance(t, UTCDateTime)]
    others: list[tuple[int, _Convert]] = [
        (i, json_value if isinstance(t, JSON) else date.fromisoformat if isinstance(t, Date)
         else bool) for i, t in enumerate(types) if isinstance(t, JSON | Date | Boolean)]
    sql = (f"SELECT {', '.join(_q(table, n) for n in columns)} "  # noqa: S608 - see _q
           f'FROM "{table.name}" WHERE {where}')
    out = []
    to_time, cache = from_sqlite_text, dict[str, datetime]()
    for row in conn.exec_driver_sql(sql, tuple(params)).fetchall():
        values = list(row)
        for i in times:
            text = values[i]
            if text is not None:
                value = cache.get(text)
                if value is None:
                    value = cache[text] = to_time(text)
                values[i] = value
        for i, convert in others:
            if values[i] is not None:
                values[i] = convert(values[i])
        out.append(values)
    return out


_INSERTS: dict[tuple[str, tuple[str, ...]], str] = {}
_UPDATES: dict[tuple[str, tuple[str, ...]], str] = {}


def _q(table: Table, name: str) -> str:
    """A column of ``table`` quoted ("values" is an SQL keyword); only the table's own column
    names reach the SQL text, never a value (KeyError for anything else)."""
    return f'"{table.c[name].name}"'


def _kinds(table: Table, names: tuple[str, ...]
           ) -> tuple[tuple[int, ...], tuple[tuple[int, _Convert], ...]]:
    """Positions of the instants among ``names``, and of the other values needing a
    conversion with theirs (the rest bind as they are: sqlite3 stores bools as 0/1 itself)."""
    found = _KINDS.get((table.name, names))
    if found is not None:
        return found
    times: list[int] = []
    others: list[tuple[int, _Convert]] = []
    for i, name in enumerate(names):
        column_type = table.c[name[2:] if name in _WHERE else name].type
        if isinstance(column_type, UTCDateTime):
            times.append(i)
        elif isinstance(column_type, JSON):
            others.append((i, json_column))
        elif isinstance(column_type, Date):
            others.append((i, _iso_date))
    found = _KINDS[(table.name, names)] = (tuple(times), tuple(others))
    return found


_KINDS: dict[tuple[str, tuple[str, ...]],
             tuple[tuple[int, ...], tuple[tuple[int, _Convert], ...]]] = {}


def _iso_date(value: date) -> str:
    return value.isoformat()


__all__ = ["SQLiteRows", "select_rows"]
