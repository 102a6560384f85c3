"""Database writes: ``store.repository.GroupWriter`` for many changed flights with their
audit rows, grouped as the engine groups them (``WRITE_GROUP`` flights per transaction, each
group's stored legs loaded with one ``load_legs``, its rows flushed together), on SQLite and
on PostgreSQL.

Each flight is first inserted (untimed figure in the detail), then written again with three
changed fields: one row update, three ``flight_change`` audit rows and four
``source_observation`` rows per flight, as a sync that changed a flight writes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import _floors as floors
from benchmarks._env import FOUR as PROVIDERS
from benchmarks._env import private_postgres
from benchmarks._report import Row
from flightsync.engine._engine import WRITE_GROUP
from flightsync.models import OBSERVED_FIELDS, FlightQuery, FlightStatus
from flightsync.store import Database, migrate
from flightsync.store import repository as repo

_RAW = json.dumps({"payload": "x" * 600})  # a provider answer's size, kept for the audit


def _values(flight: int, changed: bool) -> dict[str, Any]:
    base = datetime(2026, 3, 1, 6, tzinfo=UTC) + timedelta(minutes=flight % 900)
    values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
    values.update(
        destination="JFK", status=FlightStatus.DELAYED if changed else FlightStatus.SCHEDULED,
        scheduled_departure=base, scheduled_arrival=base + timedelta(hours=8),
        estimated_departure=base + timedelta(minutes=25 if changed else 0),
        estimated_arrival=base + timedelta(hours=8), departure_terminal="1",
        departure_gate="B44" if changed else "B20", arrival_terminal="4",
        aircraft_type="748", aircraft_registration="DABYA", codeshares=("UA9050",),
        operating_carrier="LH", operating_flight_number=flight % 9000 + 1)
    return values


def _leg(flight: int, changed: bool, now: datetime) -> repo.LegWrite:
    values = _values(flight, changed)
    reported = {k: v for k, v in values.items() if v is not None}
    return repo.LegWrite(
        leg_index=0, origin="FRA", values=values,
        decisions={name: ("lufthansa", "agree") for name in reported},
        observations={source: (reported, now, _RAW) for source in PROVIDERS[:4]})


def _flights(count: int) -> list[FlightQuery]:
    first = date(2026, 3, 1)
    return [FlightQuery(carrier="LH", number=i % 9000 + 1,
                        departure_date=first + timedelta(days=i // 9000)) for i in range(count)]


def _write_all(database: Database, flights: list[FlightQuery], *,
               changed: bool) -> tuple[float, float]:
    """Seconds to write every flight, ``WRITE_GROUP`` per transaction, as the engine does,
    and the CPU seconds this process spent on it (flightsync's and the driver's own work,
    the server's too on SQLite): on a shared machine the CPU moves less with the load.

    The resolved legs (the engine's output, the write path's input) are built before each
    group's clock starts, as the floors' rows are: the figure is the write path's time alone."""
    elapsed = cpu = 0.0
    for at in range(0, len(flights), WRITE_GROUP):
        group = flights[at:at + WRITE_GROUP]
        now = datetime.now(UTC)
        legs = [[_leg(at + index, changed, now)] for index in range(len(group))]
        started, cpu_started = time.perf_counter(), time.process_time()
        with database.session() as session:
            stored = repo.load_legs(session, [repo.key_of(q) for q in group])
            writer = repo.GroupWriter(session, run_id="bench", now=now)
            for query, leg in zip(group, legs, strict=True):
                writer.add(
                    query, leg, stored.get(repo.key_of(query), []),
                    sync_status="synced", next_due=now + timedelta(minutes=15), tracked=True,
                    source_of_truth="lufthansa")
            writer.flush()
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    return elapsed, cpu


def _measure(url: str, count: int) -> dict[str, float]:
    migrate.upgrade(url)
    database = Database.open(url)
    try:
        flights = _flights(count)
        inserted, _ = _write_all(database, flights, changed=False)
        if database.engine.dialect.name == "postgresql":
            # As autovacuum would after the inserts: the planner's figures for the table.
            with database.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        updated, cpu = _write_all(database, flights, changed=True)
    finally:
        database.close()
    groups = -(-count // WRITE_GROUP)
    return {"insert_per_s": count / inserted, "changed_per_s": count / updated,
            "changed_s": updated, "cpu_ms_per_group": round(1000 * cpu / groups, 2)}


@contextmanager
def _postgres_database() -> Iterator[str | None]:
    """A fresh database on the local PostgreSQL (dropped afterwards), None when unreachable."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        yield None
        return
    with private_postgres("fs_bench") as url:
        yield url


def write_rows(root: Path, *, flights: int) -> list[Row]:
    """Flights per second for the changed-flight pass, SQLite (target) and PostgreSQL, each
    also as a share of its driver's floor (benchmarks/_floors.py) measured in the same run."""
    title = f"database writes, {flights:,} changed flights with audit rows"
    sqlite = _measure(f"sqlite:///{root / 'writes.db'}", flights)
    migrate.upgrade(f"sqlite:///{root / 'floor.db'}")
    sqlite_floor = floors.sqlite_floor(str(root / "floor.db"), flights, group=WRITE_GROUP,
                                       raw=_RAW)
    rows = [Row("db_writes_sqlite", f"{title} (SQLite)", "changed flights written per second",
                "flights/s", 5000, at_most=False, value=sqlite["changed_per_s"],
                detail={"flights": flights, "insert_per_s": sqlite["insert_per_s"],
                        "group": WRITE_GROUP, "floor_per_s": sqlite_floor,
                        "cpu_ms_per_group": sqlite["cpu_ms_per_group"]}),
            Row("db_writes_sqlite_floor", f"{title} (SQLite) against bare sqlite3 "
                "executemany of the same rows", "flightsync / floor", "ratio", 0.5,
                at_most=False, value=sqlite["changed_per_s"] / sqlite_floor)]
    with _postgres_database() as url:
        pg = _measure(url, flights) if url is not None else None
    pg_floor = pg_same = None
    if pg is not None:
        with _postgres_database() as url:
            assert url is not None
            migrate.upgrade(url)
            pg_floor = floors.postgres_floor(url, flights, group=WRITE_GROUP, raw=_RAW)
        with _postgres_database() as url:
            assert url is not None
            migrate.upgrade(url)
            pg_same = floors.postgres_same_statements(url, flights, group=WRITE_GROUP,
                                                      raw=_RAW)
    rows.append(Row("db_writes_postgres", f"{title} (PostgreSQL)",
                    "changed flights written per second", "flights/s", 10_000, at_most=False,
                    value=pg["changed_per_s"] if pg else None,
                    detail={"flights": flights, "insert_per_s": pg["insert_per_s"],
                            "group": WRITE_GROUP, "floor_per_s": pg_floor,
                            "same_statements_per_s": pg_same,
                            "cpu_ms_per_group": pg["cpu_ms_per_group"]} if pg else {},
                    note="" if pg else "PostgreSQL at 127.0.0.1:5432 not reachable"))
    rows.append(Row("db_writes_postgres_floor", f"{title} (PostgreSQL) against bare psycopg "
                    "COPY of the same rows", "flightsync / floor", "ratio", 0.5, at_most=False,
                    value=pg["changed_per_s"] / pg_floor if pg and pg_floor else None,
                    note="" if pg else "PostgreSQL at 127.0.0.1:5432 not reachable"))
    return rows


def main() -> None:  # pragma: no cover - `python -m benchmarks._writes [FLIGHTS]`
    """The write rows alone (both backends with their floors), as JSON lines."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from flightsync import logs  # noqa: PLC0415

    logs.configure_logging(verbosity=-1, json=True, run_id=None)
    flights = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps({"load_avg_1m": round(os.getloadavg()[0], 2)}))
    with tempfile.TemporaryDirectory() as folder:
        for row in write_rows(Path(folder), flights=flights):
            print(json.dumps(row.to_json()))
    print(json.dumps({"load_avg_1m_end": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
