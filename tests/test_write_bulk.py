"""store._bulk: on SQLite the write group's rows go to the driver with values converted by the
store's own rules, and load_legs reads them back the same way. Whatever path wrote or read a
row, the stored text and the values read back must be what SQLAlchemy's generic path gives."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from flightsync.models import OBSERVED_FIELDS, FlightQuery, FlightStatus, to_json_value
from flightsync.store import Database, migrate
from flightsync.store import repository as repo
from flightsync.store._bulk import SQLiteRows, select_rows
from flightsync.store._types import canonical_json, json_column, json_text, json_value
from flightsync.store._write import (
    _INSERT_CONFLICT,
    _INSERT_OBS,
    _UPDATE_FLIGHT,
    HASH_FORM,
    compress_raw,
    legacy_observation_hash,
    observation_hash,
    observation_json,
    observation_text,
)
from flightsync.store.tables import Conflict, Flight, SourceObservation

NOW = datetime(2026, 3, 1, 5, 6, 7, 890, tzinfo=UTC)
PLUS2 = timezone(timedelta(hours=2))
# Instants the two paths must render alike: another offset, microseconds, a year below 1000.
ODD_TIMES = (datetime(2026, 3, 1, 1, 2, 3, tzinfo=PLUS2),
             datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC), NOW)
_F = Flight.__table__  # type: ignore[attr-defined]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'flightsync.db'}"
    migrate.upgrade(url)
    database = Database.open(url)
    yield database
    database.close()


def _flight(db: Database, number: int) -> int:
    values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
    values.update(destination="JFK", status=FlightStatus.DELAYED, codeshares=("UA1", "AC9"),
                  scheduled_departure=ODD_TIMES[0], estimated_departure=ODD_TIMES[1],
                  departure_gate="B\u00e9")
    query = FlightQuery(carrier="LH", number=number, departure_date=date(2026, 3, 1))
    with db.session() as session:
        repo.write_flight(session, query, [repo.LegWrite(
            leg_index=0, origin="FRA", values=values, decisions={}, observations={})], [],
            run_id="r", now=NOW, sync_status="synced", next_due=NOW, tracked=True,
            source_of_truth=None)
        found = repo.leg_id(session, repo.key_of(query))
    assert found is not None
    return found


def _raw(db: Database, table: str, where: str) -> list[tuple[Any, ...]]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(
            f'SELECT * FROM "{table}" WHERE {where} ORDER BY id')]


def test_inserted_child_rows_store_the_same_text_on_both_paths(db: Database) -> None:
    """Observation and conflict rows sent by the bulk path hold byte for byte what
    SQLAlchemy's statements store for the same rows (instants in other offsets, enums,
    tuples and non-ASCII text inside JSON), apart from their ids."""
    flight_id = _flight(db, 1)
    observed = {"status": FlightStatus.LANDED, "scheduled_departure": ODD_TIMES[0],
                "codeshares": ("UA1",), "departure_gate": "B\u00e9", "operating_flight_number": 7}
    observation = {"flight_id": flight_id, "source": "amadeus", "provider_updated_at": ODD_TIMES[1],
                   "observed_at": NOW, "confirmed_at": ODD_TIMES[2], "run_id": "r",
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
        bulk = SQLiteRows()
        bulk.insert(conn, SourceObservation.__table__, [{**observation,  # type: ignore[attr-defined]
                                                         "values": observed}])
        bulk.insert(conn, Conflict.__table__, [{**conflict,  # type: ignore[attr-defined]
                                                "candidates": candidates}])
    for table in ("source_observation", "conflict"):
        generic, fast = _raw(db, table, f"flight_id = {flight_id}")
        assert generic[1:] == fast[1:]
        assert generic[0] != fast[0]


def test_flight_update_stores_the_same_text_and_counts_matches(db: Database) -> None:
    """The bulk UPDATE of a flight stores what SQLAlchemy's UPDATE stores, bumps
    sync_attempts alike, and its rowcount counts only rows whose version still matches (the
    optimistic check that fails a group)."""
    first, second = _flight(db, 1), _flight(db, 2)
    change = {"status": "delayed", "codeshares": ["UA2"], "estimated_arrival": ODD_TIMES[0],
              "lease_expires_at": ODD_TIMES[1], "tracked": False, "has_open_conflict": True,
              "updated_at": NOW, "version": 2}
    with db.session() as session:
        conn = session.connection()
        generic = conn.execute(_UPDATE_FLIGHT, [{"b_id": first, "b_version": 1, **change}])
        fast = SQLiteRows().update(conn, _F, [{"b_id": second, "b_version": 1, **change},
                                              {"b_id": second, "b_version": 7, **change}])
    assert generic.rowcount == 1
    assert fast == 1  # the second row names a stale version: not counted
    (a,), (b,) = _raw(db, "flight", f"id = {first}"), _raw(db, "flight", f"id = {second}")
    columns = [c.name for c in _F.columns]
    skip = {"id", "flight_number"}
    assert {c: v for c, v in zip(columns, a, strict=True) if c not in skip} == \
        {c: v for c, v in zip(columns, b, strict=True) if c not in skip}


def test_load_legs_reads_what_sqlalchemy_reads(db: Database) -> None:
    """The driver-level read behind load_legs on SQLite gives every column as SQLAlchemy's
    select gives it: aware UTC instants, dates, booleans, JSON lists."""
    _flight(db, 1)
    columns = [c.name for c in _F.columns]
    with db.session() as session:
        conn = session.connection()
        fast = select_rows(conn, _F, columns, "flight_number = ?", [1])
        generic = [list(row) for row in conn.execute(select(_F).where(_F.c.flight_number == 1))]
    assert fast == generic
    times = [v for v in fast[0] if isinstance(v, datetime)]
    assert times and all(v.tzinfo is UTC for v in times)


def test_load_legs_gives_stored_values_and_records(db: Database) -> None:
    """load_legs gives each leg's resolved values (unknown status and no codeshares as
    unset), its version and a FlightRecord carrying the stored row."""
    _flight(db, 1)
    key = ("LH", 1, "", date(2026, 3, 1))
    with db.session() as session:
        (leg,) = repo.load_legs(session, [key, ("LH", 2, "", date(2026, 3, 1))])[key]
    assert leg.values["status"] is FlightStatus.DELAYED
    assert leg.values["codeshares"] == ("UA1", "AC9")
    assert leg.values["scheduled_departure"] == ODD_TIMES[0]
    assert leg.values["arrival_gate"] is None
    assert leg.record.departure_gate == "B\u00e9" and leg.record.version == 1
    assert leg.record.last_synced_at == NOW and leg.open_conflicts == frozenset()


def test_json_text_and_content_hash_match_json_dumps_of_plain_values() -> None:
    """The prebuilt encoder renders domain values as json.dumps renders their
    to_json_value form, and the content hash is unchanged by how it is computed."""
    values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
    values.update(status=FlightStatus.BOARDING, scheduled_departure=ODD_TIMES[0],
                  codeshares=("UA1",), departure_gate="\u00e9\"\\", operating_flight_number=3)
    plain = {k: to_json_value(v) for k, v in values.items()}
    assert json_text(values) == json.dumps(plain)
    assert json_text("\u00e9") == json.dumps("\u00e9")
    canonical = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert repo.content_hash(values) == expected
    with pytest.raises(TypeError):
        json_text({"x": object()})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_observation_text_is_the_hashed_and_stored_form() -> None:
    """An observation is encoded once, canonically: its text is its plain values as compact
    JSON with keys sorted (json.dumps's own reading of them), its hash is of that text in
    the marked form 2, the hash stored before form 2 is json.dumps's sorted text's, and the
    bulk path stores the text as it is."""
    values: dict[str, Any] = {"status": FlightStatus.LANDED, "codeshares": ("UA1",),
                              "scheduled_departure": ODD_TIMES[0], "departure_gate": "B\u00e9",
                              "departure_date": date(2026, 3, 1), "_rejected": [{"field": "x"}]}
    plain = {k: to_json_value(v) for k, v in values.items()}
    text = observation_text(values)
    assert text == json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(text) == plain
    assert observation_hash(observation_json(values)) == HASH_FORM + hashlib.blake2b(
        text.encode(), digest_size=16).hexdigest()
    assert legacy_observation_hash(values) == hashlib.blake2b(
        json.dumps(plain, sort_keys=True).encode(), digest_size=16).hexdigest()
    assert json_column(text) == text
    assert json_column(str(text)) == json.dumps(str(text))  # a plain str is a JSON string


def test_json_value_reads_as_json_loads() -> None:
    """The stored JSON's decoder gives what json.loads gives, for the store's own text and
    for text with whitespace around it, and refuses what json.loads refuses."""
    for good in ('["UA1", "AC9"]', '{"amadeus": "ab", "x": null}', " [1] ", '"B\\u00e9"', "[]"):
        assert json_value(good) == json.loads(good)
    for bad in ("", "[1] x", "{", "nope"):
        with pytest.raises(json.JSONDecodeError):
            json_value(bad)


def test_group_rows_written_in_one_transaction_roll_back_together(db: Database) -> None:
    """Bulk statements run inside the session's transaction: an error after them leaves
    nothing stored."""
    flight_id = _flight(db, 1)
    with pytest.raises(RuntimeError), db.session() as session:
        SQLiteRows().insert(session.connection(), SourceObservation.__table__,  # type: ignore[attr-defined]
                            [{"flight_id": flight_id, "source": "amadeus", "values": {},
                              "observed_at": NOW, "confirmed_at": NOW}])
        raise RuntimeError("after the insert")
    with db.engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM source_observation")).scalar_one()
    assert count == 0
