"""store._bulk_pg: on PostgreSQL the write group's rows go through psycopg (COPY for child
rows, pipelined executemany for flights) and load_legs reads through the driver. Whatever
path wrote or read a row, the stored values and the values read back must be what
SQLAlchemy's generic path gives, and a group stays all-or-nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text

from flightsync.errors import ConcurrentUpdateError
from flightsync.models import OBSERVED_FIELDS, FlightQuery, FlightStatus, to_json_value
from flightsync.store import Database, migrate
from flightsync.store import repository as repo
from flightsync.store._bulk_pg import PostgresRows, select_rows
from flightsync.store._write import (
    _INSERT_CONFLICT,
    _INSERT_OBS,
    _UPDATE_FLIGHT,
    compress_raw,
)
from flightsync.store.tables import Conflict, Flight, SourceObservation

NOW = datetime(2026, 3, 1, 5, 6, 7, 890, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))
ODD_TIMES = (datetime(2026, 3, 1, 1, 2, 3, tzinfo=PLUS2),
             datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC), NOW)
_F = Flight.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    migrate.upgrade(pg_url)
    database = Database.open(pg_url)
    yield database
    database.close()


def _values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
    values.update(destination="JFK", status=FlightStatus.DELAYED, codeshares=("UA1", "AC9"),
                  scheduled_departure=ODD_TIMES[0], estimated_departure=ODD_TIMES[1],
                  departure_gate="B\u00e9")
    values.update(changes)
    return values


def _query(number: int) -> FlightQuery:
    return FlightQuery(carrier="LH", number=number, departure_date=date(2026, 3, 1))


def _leg(origin: str = "FRA", index: int = 0, **changes: Any) -> repo.LegWrite:
    values = _values(**changes)
    reported = {k: v for k, v in values.items() if v is not None}
    return repo.LegWrite(leg_index=index, origin=origin, values=values,
                         decisions={"status": ("amadeus", "priority")},
                         observations={"amadeus": (reported, ODD_TIMES[0], '{"r\u00e9": 1}')})


def _write(db: Database, number: int, legs: list[repo.LegWrite]) -> None:
    query = _query(number)
    with db.session() as session:
        stored = repo.load_legs(session, [repo.key_of(query)]).get(repo.key_of(query), [])
        repo.write_flight(session, query, legs, stored, run_id="r", now=NOW,
                          sync_status="synced", next_due=NOW, tracked=True,
                          source_of_truth=None)


def _raw(db: Database, table: str, where: str) -> list[tuple[Any, ...]]:
    """Rows as the server renders them to text: what is stored, not what a driver reads."""
    with db.engine.connect() as conn:
        columns = [c.name for c in {"flight": _F, "source_observation": _OBS,
                                    "conflict": _CONFLICT}[table].columns]
        listed = ", ".join(f'"{c}"::text' for c in columns)
        return [tuple(row) for row in conn.exec_driver_sql(
            f'SELECT {listed} FROM "{table}" WHERE {where} ORDER BY id')]


def test_inserted_child_rows_store_the_same_values_on_both_paths(db: Database) -> None:
    """Observation and conflict rows sent by COPY hold what SQLAlchemy's statements store
    for the same rows (instants in other offsets and before year 1000, enums, tuples and
    non-ASCII text inside JSON), apart from their ids."""
    _write(db, 1, [_leg()])
    with db.session() as session:
        flight_id = repo.leg_id(session, repo.key_of(_query(1)))
    observed = {"status": FlightStatus.LANDED, "scheduled_departure": ODD_TIMES[0],
                "codeshares": ("UA1",), "departure_gate": "B\u00e9", "operating_flight_number": 7}
    observation = {"flight_id": flight_id, "source": "cirium", "provider_updated_at": ODD_TIMES[1],
                   "observed_at": NOW, "confirmed_at": NOW, "run_id": "r2",
                   "raw_zlib": compress_raw('{"x": 1}')}
    conflict = {"flight_id": flight_id, "field": "departure_gate", "status": "open",
                "rule": "priority", "created_at": ODD_TIMES[0]}
    candidates = {"amadeus": "B1", "lufthansa": ODD_TIMES[2]}
    with db.session() as session:
        conn = session.connection()
        conn.execute(_INSERT_OBS, [{**observation, "values": {
            k: to_json_value(v) for k, v in observed.items()}}])
        conn.execute(_INSERT_CONFLICT, [{**conflict, "candidates": {
            k: to_json_value(v) for k, v in candidates.items()}}])
        bulk = PostgresRows()
        bulk.copy(conn, _OBS, [{**observation, "values": observed}])
        bulk.copy(conn, _CONFLICT, [{**conflict, "candidates": candidates}])
    for table in ("source_observation", "conflict"):
        generic, fast = _raw(db, table, f"flight_id = {flight_id}")[-2:]
        assert generic[1:] == fast[1:]
        assert generic[0] != fast[0]


def test_flight_update_stores_the_same_values_and_counts_matches(db: Database) -> None:
    """The pipelined UPDATE of a flight stores what SQLAlchemy's UPDATE stores, bumps
    sync_attempts alike, and its row count counts only rows whose version still matches
    (the optimistic check that fails a group)."""
    _write(db, 1, [_leg()])
    _write(db, 2, [_leg()])
    with db.session() as session:
        first = repo.leg_id(session, repo.key_of(_query(1)))
        second = repo.leg_id(session, repo.key_of(_query(2)))
    change = {"status": "delayed", "codeshares": ["UA2"], "estimated_arrival": ODD_TIMES[0],
              "lease_expires_at": ODD_TIMES[1], "tracked": False, "has_open_conflict": True,
              "updated_at": NOW, "version": 2}
    with db.session() as session:
        conn = session.connection()
        generic = conn.execute(_UPDATE_FLIGHT, [{"b_id": first, "b_version": 1, **change}])
        fast = PostgresRows().update(conn, _F, [{**change, "b_id": second, "b_version": 1},
                                                {**change, "b_id": second, "b_version": 7}])
    assert generic.rowcount == 1
    assert fast == 1  # the second row names a stale version: not counted
    (a,), (b,) = _raw(db, "flight", f"id = {first}"), _raw(db, "flight", f"id = {second}")
    columns = [c.name for c in _F.columns]
    skip = {"id", "flight_number", "operating_flight_number"}
    assert {c: v for c, v in zip(columns, a, strict=True) if c not in skip} == \
        {c: v for c, v in zip(columns, b, strict=True) if c not in skip}


def test_new_legs_of_one_group_get_their_own_child_rows(db: Database) -> None:
    """New flights inserted together each get their own id, and each flight's audit and
    observation rows point at its own row (the RETURNING ids in the order sent)."""
    now = NOW
    queries = [_query(n) for n in (30, 10, 20)]
    with db.session() as session:
        writer = repo.GroupWriter(session, run_id="r", now=now)
        for query in queries:
            legs = [_leg("FRA", 0, departure_gate=f"G{query.number}"),
                    _leg("JFK", 1, departure_gate=f"H{query.number}")]
            writer.add(query, legs, [], sync_status="synced", next_due=now, tracked=True,
                       source_of_truth=None)
        writer.flush()
    with db.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT f.flight_number, f.leg_index, c.new FROM flight_change c "
            "JOIN flight f ON f.id = c.flight_id WHERE c.field = 'departure_gate'").all()
        observed = conn.exec_driver_sql(
            "SELECT f.flight_number, f.leg_index, o.values ->> 'departure_gate' "
            "FROM source_observation o JOIN flight f ON f.id = o.flight_id").all()
    prefix = {0: "G", 1: "H"}
    assert sorted(rows) == sorted((n, i, f'"{prefix[i]}{n}"') for n in (10, 20, 30)
                                  for i in (0, 1))
    assert sorted(observed) == sorted((n, i, f"{prefix[i]}{n}") for n in (10, 20, 30)
                                      for i in (0, 1))


def test_stale_version_fails_the_group_and_stores_nothing(db: Database) -> None:
    """A flight changed by another writer since it was loaded fails the whole group with
    ConcurrentUpdateError, and none of the group's rows (other flights' updates, child
    rows) are stored."""
    _write(db, 1, [_leg()])
    _write(db, 2, [_leg()])
    keys = [repo.key_of(_query(1)), repo.key_of(_query(2))]
    with db.session() as session:
        stored = repo.load_legs(session, keys)
    _write(db, 2, [_leg(departure_gate="Z9")])  # another run moves flight 2 on
    with db.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT count(*) FROM flight_change").scalar_one()
    with pytest.raises(ConcurrentUpdateError), db.session() as session:
        writer = repo.GroupWriter(session, run_id="r", now=NOW)
        for number, key in zip((1, 2), keys, strict=True):
            writer.add(_query(number), [_leg(departure_gate="X1")], stored[key],
                       sync_status="synced", next_due=NOW, tracked=True, source_of_truth=None)
        writer.flush()
    with db.engine.connect() as conn:
        after = conn.exec_driver_sql("SELECT count(*) FROM flight_change").scalar_one()
        gates = conn.exec_driver_sql(
            "SELECT flight_number, departure_gate FROM flight ORDER BY 1").all()
    assert after == before
    assert gates == [(1, "B\u00e9"), (2, "Z9")]


def test_select_rows_reads_what_sqlalchemy_reads(db: Database) -> None:
    """The driver-level read behind load_legs on PostgreSQL gives every column as
    SQLAlchemy's select gives it: aware UTC instants, dates, booleans, JSON lists."""
    _write(db, 1, [_leg()])
    columns = [c.name for c in _F.columns]
    with db.session() as session:
        conn = session.connection()
        conn.exec_driver_sql("SET TIME ZONE 'Asia/Kolkata'")  # the server's zone must not leak
        fast = select_rows(conn, _F, columns, "flight_number = %s", [1])
        generic = [list(row) for row in conn.execute(select(_F).where(_F.c.flight_number == 1))]
    assert fast == generic
    times = [v for v in fast[0] if isinstance(v, datetime)]
    assert times and all(v.tzinfo is UTC for v in times)


def test_load_legs_on_postgres_gives_stored_values(db: Database) -> None:
    """load_legs gives each leg's resolved values, its version and a FlightRecord carrying
    the stored row; keys without rows are absent."""
    _write(db, 1, [_leg()])
    key = repo.key_of(_query(1))
    with db.session() as session:
        (leg,) = repo.load_legs(session, [key, repo.key_of(_query(2))])[key]
    assert leg.values["status"] is FlightStatus.DELAYED
    assert leg.values["codeshares"] == ("UA1", "AC9")
    assert leg.values["scheduled_departure"] == ODD_TIMES[0]
    assert leg.record.departure_gate == "B\u00e9" and leg.record.version == 1
    assert leg.record.last_synced_at == NOW


def test_naive_instant_is_refused_and_nothing_stored(db: Database) -> None:
    """A naive datetime is refused by the COPY path as by UTCDateTime (its zone is a
    guess), and the transaction leaves nothing behind."""
    _write(db, 1, [_leg()])
    with db.session() as session:
        flight_id = repo.leg_id(session, repo.key_of(_query(1)))
    with pytest.raises(ValueError, match="naive"), db.session() as session:
        PostgresRows().copy(session.connection(), _OBS, [{
            "flight_id": flight_id, "source": "x", "values": {}, "confirmed_at": NOW,
            "observed_at": datetime(2026, 3, 1)}])  # naive: the value under test
    with db.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM source_observation")).scalar_one()
    assert count == 1  # the first write's one observation


def test_driver_errors_come_out_as_sqlalchemy_errors(db: Database) -> None:
    """A constraint the driver-level path breaks raises SQLAlchemy's IntegrityError, as the
    generic path does (callers catch SQLAlchemy's errors, not psycopg's)."""
    from sqlalchemy.exc import IntegrityError  # noqa: PLC0415

    with pytest.raises(IntegrityError), db.session() as session:
        PostgresRows().copy(session.connection(), _OBS, [{
            "flight_id": 12345, "source": "x", "values": {}, "observed_at": NOW,
            "confirmed_at": NOW}])
