"""The write group's statements on PostgreSQL, sent through psycopg without SQLAlchemy's
per-row work.

SQLAlchemy's executemany on psycopg binds and processes every value of every row in Python and
sends one statement per row (pipelined, but still parsed and planned row by row on the
server): about 1,400 changed flights a second. Here a group's rows go out as few statements
(benchmarks/RESULTS.md has the alternatives measured):

- child rows (``flight_change``, ``source_observation``, ``conflict``): one binary ``COPY``
  per table and key set;
- updates of ``flight``: one ``UPDATE ... FROM unnest(arrays)``, each column's values as one
  array parameter, the optimistic check in its WHERE (the caller compares the row count);
- new ``flight`` rows: one ``INSERT ... SELECT FROM unnest(arrays) RETURNING`` the ids with
  the identity, so each child row finds its flight whatever order the server returns.

Each value is rendered by the store's own rules (``_types.json_column`` for JSON, instants
normalised to aware UTC with naive ones refused as UTCDateTime does), inside the session's
transaction: a group is still all-or-nothing. tests/test_write_bulk_pg.py holds the stored
rows equal to the generic path's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, LargeBinary, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from flightsync.store._types import UTCDateTime, json_column, json_value, stored_utc

_WHERE = ("b_id", "b_version")  # the UPDATE's optimistic-check parameters


class PostgresRows:
    """Sends a group's rows through the session's psycopg connection, converting each value
    once (each instant once per writer: the same few recur in every row of a group)."""

    def __init__(self) -> None:
        self._times: dict[datetime, datetime] = {}

    def copy(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Binary COPY of ``rows`` (all with the same keys) into ``table``."""
        names = tuple(rows[0])
        types = _types(table, names)
        columns = self._columns(table, names, rows)
        sql = f'COPY "{table.name}" ({_names(table, names)}) FROM STDIN (FORMAT BINARY)'
        with _cursor(conn) as cursor, cursor.copy(sql) as copy:
            copy.set_types(list(types))
            write = copy.write_row
            for row in zip(*columns, strict=True):
                write(row)

    def update(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
        """UPDATE ... SET sync_attempts + 1 and the rows' other keys WHERE id and version
        match ``b_id``/``b_version``; returns how many rows matched in all."""
        names = tuple(n for n in rows[0] if n not in _WHERE) + _WHERE
        sets = ", ".join(f"{_q(table, n)} = %s{_cast(table, n)}" for n in names[:-2])
        sql = (f'UPDATE "{table.name}" SET sync_attempts = sync_attempts + 1, '  # noqa: S608
               f"{sets} WHERE id = %s AND version = %s")
        with _cursor(conn) as cursor:
            cursor.executemany(sql, list(zip(*self._columns(table, names, rows), strict=True)))
            return int(cursor.rowcount)

    def insert(self, conn: Connection, table: Table,
               rows: Sequence[dict[str, Any]]) -> list[int]:
        """INSERT the rows, returning their new ids in the order of ``rows``."""
        names = tuple(rows[0])
        values = ", ".join(f"%s{_cast(table, n)}" for n in names)
        sql = (f'INSERT INTO "{table.name}" ({_names(table, names)}) '  # noqa: S608
               f"VALUES ({values}) RETURNING id")
        ids: list[int] = []
        with _cursor(conn) as cursor:
            cursor.executemany(sql, list(zip(*self._columns(table, names, rows), strict=True)),
                               returning=True)
            while True:  # one result per row, in the order sent
                ids.append(cursor.fetchone()[0])
                if not cursor.nextset():
                    break
        return ids

    def _columns(self, table: Table, names: tuple[str, ...],
                 rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """The rows' values column by column, each converted for the driver: instants
        normalised (cached), JSON rendered by the store's encoder (domain values inside
        rendered by ``to_json_value``, as SQLAlchemy's JSON type stores them made plain)."""
        columns = [[row[name] for row in rows] for name in names]
        times, texts = _kinds(table, names)
        cache, convert = self._times, self._time
        for i in times:
            columns[i] = [None if v is None else cache.get(v) or convert(v)
                          for v in columns[i]]
        for i in texts:
            columns[i] = [None if v is None else json_column(v) for v in columns[i]]
        return columns

    def _time(self, value: datetime) -> datetime:
        stored = self._times[value] = stored_utc(value)
        return stored


def select_rows(conn: Connection, table: Table, columns: Sequence[str], where: str,
                params: Sequence[Any]) -> list[list[Any]]:
    """``SELECT columns FROM table WHERE where`` through the driver, each value read back as
    SQLAlchemy reads it (instants aware in UTC; psycopg gives dates and bools as they are;
    JSON is read as text and decoded by ``json_value``, cheaper than the driver's loader);
    ``where`` uses ``%s`` placeholders."""
    kinds = [table.c[name].type for name in columns]
    times = [i for i, kind in enumerate(kinds) if isinstance(kind, UTCDateTime)]
    texts = [i for i, kind in enumerate(kinds) if isinstance(kind, JSON)]
    selected = ", ".join(_q(table, n) + ("::text" if isinstance(kind, JSON) else "")
                         for n, kind in zip(columns, kinds, strict=True))
    sql = (f"SELECT {selected} "  # noqa: S608 - see _q
           f'FROM "{table.name}" WHERE {where}')
    # Through SQLAlchemy's driver-level call (no per-value processing): its events see the
    # statement as they see every other (tests/test_hot_queries_pg.py EXPLAINs it).
    found = conn.exec_driver_sql(sql, tuple(params)).fetchall()
    out = []
    cache: dict[datetime, datetime] = {}
    for row in found:
        values = list(row)
        for i in times:
            value = values[i]
            if value is not None:
                utc = cache.get(value)
                if utc is None:
                    utc = cache[value] = value.astimezone(UTC)
                values[i] = utc
        for i in texts:
            if values[i] is not None:
                values[i] = json_value(values[i])
        out.append(values)
    return out


def any_of(table: Table, name: str) -> str:
    """``name = ANY(%s::type[])``: the array cast to the column's own type, so that the
    column's index serves the lookup (psycopg would send small ints as int2[])."""
    return f"{_q(table, name)} = ANY(%s::{_type(table.c[name].type)}[])"


@contextmanager
def _cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the session's own psycopg connection (its transaction). The driver's
    errors come out as SQLAlchemy's (IntegrityError, OperationalError, ...), as from every
    other statement: callers catch those."""
    import psycopg  # noqa: PLC0415 - PostgreSQL only

    try:
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            yield cursor
    except psycopg.Error as exc:
        raise DBAPIError.instance(None, None, exc, psycopg.Error,
                                  dialect=conn.dialect) from exc


def _types(table: Table, names: tuple[str, ...]) -> tuple[str, ...]:
    """PostgreSQL's type of each column among ``names``, as the driver binds it (JSON goes as
    text: json's binary form is its text, and the server casts an array of text)."""
    found = _TYPES.get((table.name, names))
    if found is None:
        found = _TYPES[(table.name, names)] = tuple(
            _type(table.c[name[2:] if name in _WHERE else name].type) for name in names)
    return found


def _kinds(table: Table, names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Positions of the instants and of the JSON values among ``names``."""
    found = _KINDS.get((table.name, names))
    if found is None:
        kinds = [table.c[name[2:] if name in _WHERE else name].type for name in names]
        found = _KINDS[(table.name, names)] = (
            tuple(i for i, k in enumerate(kinds) if isinstance(k, UTCDateTime)),
            tuple(i for i, k in enumerate(kinds) if isinstance(k, JSON)))
    return found


def _type(kind: Any) -> str:
    if isinstance(kind, UTCDateTime):
        return "timestamptz"
    if isinstance(kind, Boolean):
        return "bool"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Integer):
        return "int4"
    if isinstance(kind, LargeBinary):
        return "bytea"  # compressed raw answers (issue 16)
    return "text"  # strings, text, JSON


def _cast(table: Table, name: str) -> str:
    """The cast a parameter of ``name`` needs: JSON goes as text."""
    return "::json" if name not in _WHERE and isinstance(table.c[name].type, JSON) else ""


def _names(table: Table, names: tuple[str, ...]) -> str:
    return ", ".join(_q(table, n) for n in names)


def _q(table: Table, name: str) -> str:
    """A column of ``table`` quoted ("values" is an SQL keyword); only the table's own column
    names reach the SQL text, never a value (KeyError for anything else)."""
    return f'"{table.c[name].name}"'


_TYPES: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}
_KINDS: dict[tuple[str, tuple[str, ...]], tuple[tuple[int, ...], tuple[int, ...]]] = {}

__all__ = ["PostgresRows", "any_of", "select_rows"]
