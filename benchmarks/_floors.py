"""The write benchmark's floors: the rows a changed-flight pass stores, written by the bare
driver with no flightsync code, in the same transactions (``WRITE_GROUP`` flights each) into
the same migrated schema (its indexes and foreign keys).

Per flight: one ``flight`` row, three ``flight_change`` rows and four ``source_observation``
rows, values already rendered (the floor is the driver's and the server's cost alone):
SQLite through ``sqlite3`` ``executemany``, PostgreSQL through psycopg's binary ``COPY``.
A flightsync figure divided by its floor is the share of the driver's speed it keeps.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flightsync.store.tables import Flight, SourceObservation

_FLIGHT = ("id", "carrier", "flight_number", "suffix", "departure_date", "leg_index", "origin",
           "destination", "status", "scheduled_departure", "estimated_departure",
           "scheduled_arrival", "estimated_arrival", "departure_terminal", "departure_gate",
           "arrival_terminal", "aircraft_type", "aircraft_registration", "codeshares",
           "operating_carrier", "operating_flight_number", "sync_status", "tracked",
           "last_synced_at", "last_attempt_at", "next_sync_due_at", "sync_attempts",
           "consecutive_failures", "source_of_truth", "content_hash", "version",
           "has_open_conflict", "created_at", "updated_at")
_FLIGHT_TYPES = ("int4", "text", "int4", "text", "date", "int4", "text", "text", "text",
                 "timestamptz", "timestamptz", "timestamptz", "timestamptz", "text", "text",
                 "text", "text", "text", "text", "text", "int4", "text", "bool", "timestamptz",
                 "timestamptz", "timestamptz", "int4", "int4", "text", "text", "int4", "bool",
                 "timestamptz", "timestamptz")
# Each provider's observation hash on the flight row, where the schema has it (issue 16).
_HASHES = "observation_hashes" in Flight.__table__.c  # type: ignore[attr-defined]
if _HASHES:
    _FLIGHT = (*_FLIGHT, "observation_hashes")
    _FLIGHT_TYPES = (*_FLIGHT_TYPES, "text")
_CHANGE = ("flight_id", "field", "old", "new", "source", "rule", "run_id", "version", "at")
_CHANGE_TYPES = ("int4", "text", "text", "text", "text", "text", "text", "int4", "timestamptz")
# The observation's raw answer: zlib-compressed in raw_zlib where the schema has it (retention,
# issue 16), else as text in raw.
_COMPRESSED = "raw_zlib" in SourceObservation.__table__.c  # type: ignore[attr-defined]
_OBS = ("flight_id", "source", "values", "provider_updated_at", "observed_at", "run_id",
        *(("confirmed_at", "raw_zlib") if _COMPRESSED else ("raw",)))
_OBS_TYPES = ("int4", "text", "text", "timestamptz", "timestamptz", "text",
              *(("timestamptz", "bytea") if _COMPRESSED else ("text",)))
_SOURCES = ("lufthansa", "amadeus", "cirium", "aviationstack")


def _rows(count: int, raw: str) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]],
                                             list[tuple[Any, ...]]]]:
    """Per flight: its flight row, change rows and observation rows (aware instants)."""
    now = datetime.now(UTC)
    hashes = json.dumps({source: "0" * 32 for source in _SOURCES})
    out = []
    for i in range(count):
        base = datetime(2026, 3, 1, 6, tzinfo=UTC) + timedelta(minutes=i % 900)
        values = {"destination": "JFK", "status": "delayed",
                  "scheduled_departure": base.isoformat(),
                  "estimated_departure": (base + timedelta(minutes=25)).isoformat(),
                  "departure_gate": "B44", "codeshares": ["UA9050"]}
        text = json.dumps(values)
        flight = (i + 1, "LH", i % 9000 + 1, "", date(2026, 3, 1) + timedelta(days=i // 9000),
                  0, "FRA", "JFK", "delayed", base, base + timedelta(minutes=25),
                  base + timedelta(hours=8), base + timedelta(hours=8), "1", "B44", "4", "748",
                  "DABYA", '["UA9050"]', "LH", i % 9000 + 1, "synced", True, now, now,
                  now + timedelta(minutes=15), 2, 0, "lufthansa", "0" * 64, 2, False, now, now,
                  *((hashes,) if _HASHES else ()))
        changes = [(i + 1, name, '"old"', '"new"', "lufthansa", "agree", "bench", 2, now)
                   for name in ("status", "estimated_departure", "departure_gate")]
        kept: tuple[Any, ...] = (now, zlib.compress(raw.encode(), 6)) if _COMPRESSED else (raw,)
        observations = [(i + 1, source, text, now, now, "bench", *kept) for source in _SOURCES]
        out.append(([flight], changes, observations))
    return out


def _groups(rows: list[Any], size: int) -> list[tuple[list[Any], list[Any], list[Any]]]:
    groups = []
    for at in range(0, len(rows), size):
        part = rows[at:at + size]
        groups.append(([r for p in part for r in p[0]], [r for p in part for r in p[1]],
                       [r for p in part for r in p[2]]))
    return groups


def sqlite_floor(path: str, count: int, *, group: int, raw: str) -> float:
    """Flights per second for bare ``sqlite3`` ``executemany`` of the rows into the migrated
    database at ``path`` (WAL, as flightsync opens it), one transaction per group."""
    def text(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        if isinstance(value, date):
            return value.isoformat()
        return value

    groups = [tuple([tuple(text(v) for v in row) for row in rows] for rows in part)
              for part in _groups(_rows(count, raw), group)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    sqls = [_insert(table, names, "?") for table, names in
            (("flight", _FLIGHT), ("flight_change", _CHANGE), ("source_observation", _OBS))]
    started = time.perf_counter()
    for part in groups:
        conn.execute("BEGIN")
        for sql, rows in zip(sqls, part, strict=True):
            conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return count / elapsed


def postgres_floor(url: str, count: int, *, group: int, raw: str) -> float:
    """Flights per second for psycopg's binary ``COPY`` of the rows into the migrated
    database at ``url``, one transaction per group."""
    import psycopg  # noqa: PLC0415 - only this scenario needs the driver

    groups = _groups(_rows(count, raw), group)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        started = time.perf_counter()
        for part in groups:
            with conn.cursor() as cursor:
                for (table, names, types), rows in zip(_TABLES, part, strict=True):
                    _copy(cursor, table, names, types, rows)
            conn.commit()
        return count / (time.perf_counter() - started)


def postgres_same_statements(url: str, count: int, *, group: int, raw: str) -> float:
    """Flights per second for bare psycopg sending what flightsync's PostgreSQL path sends
    for a changed flight (a pipelined ``executemany`` UPDATE of the flight row, then binary
    ``COPY`` of its audit and observation rows), one transaction per group, the flight rows
    inserted beforehand (untimed). Not the issue's floor: a reference that splits
    flightsync's time between its own Python and the server's work."""
    import psycopg  # noqa: PLC0415 - only this scenario needs the driver

    rows = _rows(count, raw)
    groups = _groups(rows, group)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        with conn.cursor() as cursor:
            name, names, types = _TABLES[0]
            _copy(cursor, name, names, types, [r for p in rows for r in p[0]])
        conn.commit()
        sets = ("status", "estimated_departure", "departure_gate", "sync_status", "tracked",
                "last_synced_at", "last_attempt_at", "next_sync_due_at",
                "consecutive_failures", "source_of_truth", "content_hash", "version",
                "has_open_conflict", "updated_at", *(("observation_hashes",) if _HASHES else ()))
        at = [_FLIGHT.index(n) for n in sets]
        sql = ("UPDATE flight SET sync_attempts = sync_attempts + 1, "
               + ", ".join(f'"{n}" = %s' + ("::json" if n == "observation_hashes" else "")
                           for n in sets)
               + ", last_error = NULL, lease_owner = NULL, lease_expires_at = NULL "
               "WHERE id = %s AND version = %s")
        started = time.perf_counter()
        for flights, changes, observations in groups:
            with conn.cursor() as cursor:
                cursor.executemany(sql, [(*(f[i] for i in at), f[0], 1) for f in flights])
                for (table, names, types), part in zip(_TABLES[1:], (changes, observations),
                                                       strict=True):
                    _copy(cursor, table, names, types, part)
            conn.commit()
        return count / (time.perf_counter() - started)


_TABLES = (("flight", _FLIGHT, _FLIGHT_TYPES), ("flight_change", _CHANGE, _CHANGE_TYPES),
           ("source_observation", _OBS, _OBS_TYPES))


def _copy(cursor: Any, table: str, names: tuple[str, ...], types: tuple[str, ...],
          rows: list[tuple[Any, ...]]) -> None:
    columns = ", ".join(f'"{n}"' for n in names)
    with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN (FORMAT BINARY)') as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def _insert(table: str, names: tuple[str, ...], mark: str) -> str:
    columns = ", ".join(f'"{n}"' for n in names)
    return f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join([mark] * len(names))})'
