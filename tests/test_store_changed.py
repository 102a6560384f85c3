"""Store what changed (issue 16): a provider's observation of a leg is stored when it differs
from that provider's previous one, otherwise only its ``confirmed_at`` moves; raw answers are
kept compressed. The 0005 migration moves existing rows both ways on a populated database."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text, update

from flightsync.models import OBSERVED_FIELDS, FlightQuery, FlightStatus
from flightsync.store import Database, migrate
from flightsync.store import repository as repo
from flightsync.store._write import HASH_FORM, decompress_raw, legacy_observation_hash
from flightsync.store.tables import Flight, SourceObservation

NOW = datetime(2026, 3, 1, 5, tzinfo=UTC)
DAY = date(2026, 3, 1)
QUERY = FlightQuery(carrier="LH", number=400, departure_date=DAY)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flightsync.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def database(url: str) -> Any:
    migrate.upgrade(url)
    db = Database.open(url)
    yield db
    db.close()


def _leg(gates: dict[str, str]) -> repo.LegWrite:
    values: dict[str, Any] = dict.fromkeys(OBSERVED_FIELDS)
    values.update(destination="JFK", status=FlightStatus.SCHEDULED,
                  departure_gate=next(iter(gates.values())),
                  scheduled_departure=NOW + timedelta(hours=2))
    observations = {}
    for source, gate in gates.items():
        said = {k: v for k, v in values.items() if v is not None}
        said["departure_gate"] = gate
        observations[source] = (said, NOW, f'{{"gate": "{gate}", "source": "{source}"}}')
    return repo.LegWrite(leg_index=0, origin="FRA", values=values,
                         decisions={"departure_gate": ("amadeus", "priority")},
                         observations=observations)


def _write(db: Database, gates: dict[str, str], now: datetime) -> None:
    with db.session() as session:
        stored = repo.load_legs(session, [repo.key_of(QUERY)]).get(repo.key_of(QUERY), [])
        repo.write_flight(session, QUERY, [_leg(gates)], stored, run_id=f"r-{now:%H%M}",
                          now=now, sync_status="synced", next_due=now + timedelta(minutes=15),
                          tracked=True, source_of_truth="amadeus")


def _observations(db: Database) -> list[Any]:
    obs = SourceObservation.__table__  # type: ignore[attr-defined]
    with db.session() as session:
        return list(session.execute(select(obs).order_by(obs.c.id)).all())


def test_an_unchanged_refetch_stores_no_new_observation(database: Database) -> None:
    """The same answers again add no row: each provider's stored observation keeps its
    observed_at and raw answer, and its confirmed_at moves to the re-fetch."""
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, NOW)
    later = NOW + timedelta(minutes=15)
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, later)

    rows = _observations(database)
    assert [row.source for row in rows] == ["amadeus", "lufthansa"]
    for row in rows:
        assert row.observed_at == NOW
        assert row.confirmed_at == later
        assert decompress_raw(row.raw_zlib) == f'{{"gate": "A1", "source": "{row.source}"}}'


def test_a_changed_answer_is_stored_and_only_its_provider_gets_a_row(
        database: Database) -> None:
    """When one provider's answer changes, that provider gets a new observation (compressed
    raw answer with it); the other, unchanged, is only confirmed."""
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, NOW)
    later = NOW + timedelta(minutes=15)
    _write(database, {"amadeus": "B7", "lufthansa": "A1"}, later)

    rows = _observations(database)
    assert [(row.source, row.observed_at, row.confirmed_at) for row in rows] == [
        ("amadeus", NOW, NOW), ("lufthansa", NOW, later), ("amadeus", later, later)]
    assert zlib.decompress(rows[2].raw_zlib) == b'{"gate": "B7", "source": "amadeus"}'
    # And back to the first value: a change again, so a new row (the history is kept).
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, later + timedelta(minutes=15))
    assert [row.source for row in _observations(database)] == [
        "amadeus", "lufthansa", "amadeus", "amadeus"]



def test_hashes_stored_before_the_canonical_form_still_recognise_unchanged_answers(
        database: Database) -> None:
    """A database written before hash form 2 (json.dumps's sorted text hashed, no prefix):
    the same answers again are confirmed, not stored twice, and the leg's hashes move to
    form 2; a changed answer is still stored."""
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, NOW)
    said = _leg({"amadeus": "A1", "lufthansa": "A1"}).observations
    legacy = {source: legacy_observation_hash(values) for source, (values, _, _) in said.items()}
    flight = Flight.__table__  # type: ignore[attr-defined]
    with database.session() as session:
        session.execute(update(flight).values(observation_hashes=legacy))

    later = NOW + timedelta(minutes=15)
    _write(database, {"amadeus": "B7", "lufthansa": "A1"}, later)

    rows = _observations(database)
    assert [(row.source, row.observed_at, row.confirmed_at) for row in rows] == [
        ("amadeus", NOW, NOW), ("lufthansa", NOW, later), ("amadeus", later, later)]
    with database.session() as session:
        hashes = session.execute(select(flight.c.observation_hashes)).scalar_one()
    assert sorted(hashes) == ["amadeus", "lufthansa"]
    assert all(value.startswith(HASH_FORM) for value in hashes.values())
    assert hashes["lufthansa"] != legacy["lufthansa"]

def test_explain_reads_the_confirmed_claim(database: Database) -> None:
    """The latest observation per source (what explain and a source-limited sync read) is
    the confirmed one, with its confirmation time."""
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, NOW)
    later = NOW + timedelta(hours=1)
    _write(database, {"amadeus": "A1", "lufthansa": "A1"}, later)
    with database.session() as session:
        [leg] = repo.load_legs(session, [repo.key_of(QUERY)])[repo.key_of(QUERY)]
        latest = repo.observations_for(session, [leg.id])[leg.id]
        learned = repo.latest_observation_values(session, since=later)
    assert {s: row["confirmed_at"] for s, row in latest.items()} == {
        "amadeus": later, "lufthansa": later}
    assert "raw_zlib" not in latest["amadeus"]
    # The learning window reads confirmed_at: both claims count once each.
    assert sorted(source for _, source, _ in learned) == ["amadeus", "lufthansa"]


def _sql(url: str, statement: str, **params: Any) -> list[Any]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def test_the_migration_moves_populated_rows_up_and_down(url: str) -> None:
    """Upgrading a populated 0004 database compresses every raw answer into raw_zlib and sets
    confirmed_at to observed_at; downgrading restores the raw text, byte for byte."""
    migrate.upgrade(url, "0004_fa_alerts")
    _sql(url, "INSERT INTO flight (id, carrier, flight_number, suffix, departure_date, "
         "leg_index, origin, status, codeshares, sync_status, tracked, sync_attempts, "
         "consecutive_failures, version, has_open_conflict, created_at, updated_at) VALUES "
         "(1, 'LH', 400, '', :day, 0, 'FRA', 'scheduled', '[]', 'synced', true, 1, 0, 1, "
         "false, :now, :now)", day=DAY, now=NOW)
    raws: list[str | None] = [f'{{"n": {i}, "text": "caf\u00e9"}}' for i in range(3)]
    raws.append(None)
    for i, raw in enumerate(raws):
        _sql(url, "INSERT INTO source_observation (flight_id, source, \"values\", "
             "observed_at, raw) VALUES (1, 'amadeus', '{}', :at, :raw)",
             at=NOW + timedelta(minutes=i), raw=raw)

    migrate.upgrade(url)
    rows = _sql(url, "SELECT observed_at, confirmed_at, raw_zlib FROM source_observation "
                "ORDER BY id")
    assert [decompress_raw(None if r[2] is None else bytes(r[2])) for r in rows] == raws
    assert all(r[0] == r[1] for r in rows)

    migrate.downgrade(url, "0004_fa_alerts")
    assert [r[0] for r in _sql(url, "SELECT raw FROM source_observation ORDER BY id")] == raws
    migrate.upgrade(url)  # and up again: the round trip is repeatable
    assert migrate.current(url) == migrate.heads()[0]


def test_a_sqlite_file_is_left_in_incremental_auto_vacuum(tmp_path: Path) -> None:
    """After the upgrade (which runs its VACUUM outside the migration's transaction) a SQLite
    file gives freed pages back on PRAGMA incremental_vacuum."""
    url = f"sqlite:///{tmp_path / 'v.db'}"
    migrate.upgrade(url, "0004_fa_alerts")
    migrate.upgrade(url)
    assert _sql(url, "PRAGMA auto_vacuum") == [(2,)]
