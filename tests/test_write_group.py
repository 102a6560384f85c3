"""store.repository.GroupWriter: a group of flights written with one statement per table keeps
every flight's rows (legs, audit trail, observations, conflicts) as writing them one by one
did, and a stale version anywhere fails the whole group with nothing stored."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from flightsync.errors import ConcurrentUpdateError
from flightsync.models import OBSERVED_FIELDS, FieldConflict, FlightQuery, FlightStatus
from flightsync.store import Database, migrate
from flightsync.store import repository as repo

NOW = datetime(2026, 3, 1, 5, tzinfo=UTC)
DAY = date(2026, 3, 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh database on each backend, migrated to head."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flightsync.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
    migrate.upgrade(url)
    db = Database.open(url)
    yield db
    db.close()


def _leg(index: int, origin: str, gate: str, *, conflict: bool = False) -> repo.LegWrite:
    values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
    values.update(destination="JFK", status=FlightStatus.SCHEDULED, departure_gate=gate,
                  scheduled_departure=NOW + timedelta(hours=index + 2), codeshares=("UA1",))
    reported = {k: v for k, v in values.items() if v is not None}
    conflicts = [FieldConflict(field="departure_gate", values={"amadeus": gate, "lufthansa": "Z9"},
                               chosen=gate, rule="priority", escalated=True,
                               leg_index=index)] if conflict else []
    return repo.LegWrite(
        leg_index=index, origin=origin, values=values,
        decisions={k: ("amadeus", "priority") for k in reported},
        observations={"amadeus": (reported, NOW, "{}"), "lufthansa": (reported, None, "{}")},
        conflicts=conflicts)


FLIGHTS = {
    FlightQuery(carrier="LH", number=1, departure_date=DAY): ("FRA", "MUC"),
    FlightQuery(carrier="LH", number=2, departure_date=DAY): ("FRA",),
    FlightQuery(carrier="LH", number=3, departure_date=DAY): ("MUC",),
}


def _write_group(db: Database, gate: str, *, conflict: bool = False,
                 ) -> dict[FlightQuery, repo.WriteOutcome]:
    outcomes = {}
    with db.session() as session:
        stored = repo.load_legs(session, [repo.key_of(q) for q in FLIGHTS])
        writer = repo.GroupWriter(session, run_id=f"run-{gate}", now=NOW)
        for query, origins in FLIGHTS.items():
            legs = [_leg(i, o, gate, conflict=conflict) for i, o in enumerate(origins)]
            outcomes[query] = writer.add(
                query, legs, stored.get(repo.key_of(query), []), sync_status="synced",
                next_due=NOW + timedelta(minutes=15), tracked=True, source_of_truth="amadeus")
        writer.flush()
    return outcomes


def _rows(db: Database, sql: str) -> list[Any]:
    with db.session() as session:
        return list(session.execute(text(sql)).all())


def test_a_group_stores_each_legs_rows_under_its_own_id(database: Database) -> None:
    """New legs get their ids from the grouped insert and every audit, observation and
    conflict row lands on the right leg; a second group updates them (version 2) and audits
    exactly the changed field."""
    first = _write_group(database, "A1", conflict=True)
    legs = {(r.flight_number, r.origin): r for r in _rows(
        database, "SELECT id, flight_number, origin, departure_gate, version, "
                  "has_open_conflict FROM flight")}
    assert set(legs) == {(1, "FRA"), (1, "MUC"), (2, "FRA"), (3, "MUC")}
    for leg in legs.values():
        assert (leg.departure_gate, leg.version, bool(leg.has_open_conflict)) == ("A1", 1, True)
    per_leg = {r.flight_id: r.n for r in _rows(
        database, "SELECT flight_id, count(*) AS n FROM source_observation GROUP BY flight_id")}
    assert per_leg == {leg.id: 2 for leg in legs.values()}
    conflicts = {r.flight_id for r in _rows(database, "SELECT flight_id FROM conflict")}
    assert conflicts == {leg.id for leg in legs.values()}
    assert all(o.records[0].version == 1 and o.opened_conflicts == len(FLIGHTS[q])
               for q, o in first.items())

    second = _write_group(database, "B2", conflict=True)
    changes = _rows(database, "SELECT flight_id, field, old, new, version FROM flight_change "
                              "WHERE run_id = 'run-B2'")
    assert sorted((c.flight_id, c.field, c.old, c.new, c.version) for c in changes) == sorted(
        (leg.id, "departure_gate", '"A1"', '"B2"', 2) for leg in legs.values())
    assert {r.version for r in _rows(database, "SELECT version FROM flight")} == {2}
    # An open conflict on a field is not opened twice.
    assert len(_rows(database, "SELECT id FROM conflict")) == len(legs)
    assert all(o.changed == tuple((i, "departure_gate") for i in range(len(FLIGHTS[q])))
               for q, o in second.items())


def test_a_stale_version_fails_the_whole_group_and_stores_nothing(database: Database) -> None:
    """When another writer bumped one leg's version after the group loaded it, flush raises
    ConcurrentUpdateError and the transaction leaves every flight of the group as it was."""
    _write_group(database, "A1")
    before = {name: _rows(database, f"SELECT count(*) FROM {name}")[0][0]
              for name in ("flight_change", "source_observation")}
    with pytest.raises(ConcurrentUpdateError), database.session() as session:
        stored = repo.load_legs(session, [repo.key_of(q) for q in FLIGHTS])
        writer = repo.GroupWriter(session, run_id="late", now=NOW)
        for query, origins in FLIGHTS.items():
            writer.add(query, [_leg(i, o, "C3") for i, o in enumerate(origins)],
                       stored.get(repo.key_of(query), []), sync_status="synced",
                       next_due=NOW, tracked=True, source_of_truth="amadeus")
        session.execute(text("UPDATE flight SET version = version + 1 "
                             "WHERE flight_number = 2"))  # as another run would have
        writer.flush()
    assert {r.departure_gate for r in _rows(database, "SELECT departure_gate FROM flight")} == {
        "A1"}
    after = {name: _rows(database, f"SELECT count(*) FROM {name}")[0][0]
             for name in ("flight_change", "source_observation")}
    assert after == before
