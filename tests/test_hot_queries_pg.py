"""Every hot query uses an index on a large PostgreSQL database: 200,000 tracked flights
(2,000 due; with --heavy the issue's 1,000,000, 10,000 due, about a minute to seed) with audit
rows, observations and conflicts, analysed as autovacuum would. The
statements are the ones the store really sends (captured from the engine's cursor), each
EXPLAINed with its own parameters; a sequential scan of a large table fails the test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from benchmarks._seed import key_of, seed
from flightsync.store import Database, migrate
from flightsync.store import repository as repo


@dataclass(frozen=True)
class Sizes:
    flights: int
    due: int

NOW = datetime.now(UTC).replace(microsecond=0)
# Flights from two days ago on (four days of them): as at a steady state where retention runs
# every batch, few rows are past any horizon.
FIRST_DAY = (NOW - timedelta(days=2)).date()
LARGE = {"flight", "flight_change", "source_observation", "conflict"}


@pytest.fixture(scope="module")
def sizes(request: pytest.FixtureRequest) -> Sizes:
    """The seeded database's size: 200,000 flights, or the issue's million under --heavy."""
    heavy = bool(request.config.getoption("--heavy"))
    return Sizes(1_000_000, 10_000) if heavy else Sizes(200_000, 2_000)


@pytest.fixture(scope="module")
def big_db(sizes: Sizes) -> Iterator[Database]:
    """One seeded database for the module (seeding is the slow part: a few seconds)."""
    import uuid  # noqa: PLC0415

    from tests.conftest import PG_URL, _postgres_reachable  # noqa: PLC0415

    if not _postgres_reachable():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    name = f"fs_test_{uuid.uuid4().hex[:12]}"
    admin = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        migrate.upgrade(url)
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            seed(conn, flights=sizes.flights, due=sizes.due, now=NOW, first_day=FIRST_DAY)
        database = Database.open(url)
        yield database
        database.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sent(database: Database, call: Callable[[Session], Any]) -> list[tuple[str, Any]]:
    """The statements ``call`` sends (with their parameters), rolled back afterwards."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if not executemany:
            sent.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        with database.engine.connect() as conn, Session(bind=conn) as session:
            call(session)
            conn.rollback()
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    return [(s, p) for s, p in sent if s.lstrip().upper().startswith(
        ("SELECT", "UPDATE", "DELETE", "WITH", "INSERT"))]


def _scans(plan: dict[str, Any], parent: str = "") -> Iterator[tuple[dict[str, Any], str]]:
    """Every node of a plan with its parent's node type."""
    yield plan, parent
    for child in plan.get("Plans", []):
        yield from _scans(child, plan["Node Type"])


def _seq_scans(database: Database, statement: str, parameters: Any) -> list[str]:
    with database.engine.connect() as conn:
        (found,) = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}",
                                        parameters).one()
        conn.rollback()
    plan = (found if isinstance(found, list) else json.loads(found))[0]["Plan"]
    # A scan feeding a Limit directly stops at the limit's row: the planner takes it only
    # when it expects the matches early (a bounded count stops at its cap). A scan below a
    # sort, a join or an aggregate reads the whole table.
    return [node["Relation Name"] for node, parent in _scans(plan)
            if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in LARGE
            and parent != "Limit"]


KEYS = [key_of(n, first_day=FIRST_DAY) for n in (1, 777, 150_001)]


def _pruning(session: Session) -> None:
    """Retention's queries (store/_prune.py): each horizon's count and one chunk of its
    removal (rolled back by the caller), flights past their day included."""
    from flightsync.config import RetentionSettings  # noqa: PLC0415
    from flightsync.store._prune import horizons, remover_for  # noqa: PLC0415

    conn = session.connection()
    for horizon in horizons(RetentionSettings(flights_days=400), NOW):
        remover = remover_for("postgresql", horizon.kind)
        remover.count(conn, horizon, None)
        remover.chunk(conn, horizon, None, 500)

HOT: dict[str, Callable[[Session], Any]] = {
    "claim due (batch --due)": lambda s: repo.claim_due(
        s, now=NOW, limit=100, owner="t", lease_seconds=60, postgres=True, due_by=NOW,
        alerted_every=300.0),
    "due preview (batch --due --dry-run)": lambda s: repo.due_flights(
        s, now=NOW, limit=100, alerted_every=300.0),
    "flight by designator and date (write path)": lambda s: repo.load_legs(s, KEYS),
    "flight by designator and date (flights show)": lambda s: (
        repo.tracking_of(s, KEYS[1]), repo.leg_id(s, KEYS[1]),
        repo.last_origin(s, "LH", 7, "")),
    "flight history (flights show)": lambda s: (
        repo.observations_for(s, [5, 6]), repo.latest_changes(s, [5, 6])),
    "open conflicts (conflicts list)": lambda s: repo.list_conflicts(
        s, include_resolved=False, limit=50),
    "status counts (status)": lambda s: repo.counts(s, now=NOW),
    "departing unsynced (status --check)": lambda s: repo.unsynced_departing(
        s, now=NOW, within=timedelta(hours=6), older_than=timedelta(hours=2)),
    "flights list": lambda s: repo.list_flights(
        s, now=NOW, tracked_only=True, due_only=False, limit=50),
    "flights list --due": lambda s: repo.list_flights(
        s, now=NOW, tracked_only=False, due_only=True, limit=50, alerted_every=300.0),
    "pruning (prune, batch --due's slice)": _pruning,
}


@pytest.mark.parametrize("name", list(HOT))
def test_hot_query_uses_an_index(big_db: Database, name: str) -> None:
    """Each statement of the hot path reads the large tables through an index."""
    sent = _sent(big_db, HOT[name])
    assert sent, f"{name}: no statement captured"
    for statement, parameters in sent:
        assert _seq_scans(big_db, statement, parameters) == [], statement


def test_seed_holds_what_the_queries_need(big_db: Database) -> None:
    """The seeded database has the rows the plans depend on: due flights to claim, open
    conflicts to list (a plan over empty tables would prove nothing)."""
    with big_db.session() as session:
        claimed = repo.claim_due(session, now=NOW, limit=100, owner="t", lease_seconds=60,
                                 postgres=True)
        session.rollback()
        conflicts = repo.list_conflicts(session, include_resolved=False, limit=50)
    assert len(claimed) == 100
    assert len(conflicts) == 50


def _cli(database: Database, *args: str) -> Any:
    """The real CLI against the seeded database, JSON out."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from flightsync.cli import app  # noqa: PLC0415

    url = database.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(app, ["--json", *args],
                                env={"FLIGHTSYNC_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_gives_an_estimate_of_a_large_table_and_says_so(big_db: Database,
                                                               sizes: Sizes) -> None:
    """Above 100,000 rows `status` gives the planner's row estimate as flights_estimated
    (no full count) and lists it among the estimates; the other figures stay exact."""
    database = _cli(big_db, "status")["database"]
    assert "flights" not in database
    assert abs(database["flights_estimated"] - sizes.flights) < sizes.flights * 0.05
    assert database["estimates"] == ["flights_estimated"]
    assert database["stale"] == sizes.due
    assert database["open_conflicts"] == sizes.flights // 20 // 10


def test_status_counts_a_small_table_exactly(pg_url: str) -> None:
    """Below the threshold the flights figure is an exact count and nothing is estimated."""
    migrate.upgrade(pg_url)
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        seed(conn, flights=500, due=10, now=NOW, first_day=FIRST_DAY)
    database = Database.open(pg_url)
    try:
        with database.session() as session:
            counts = repo.counts(session, now=NOW)
    finally:
        database.close()
    assert counts == {"flights": 500, "stale": 10, "open_conflicts": 2, "estimates": []}


def test_conflicts_list_is_bounded_and_says_more_exist(big_db: Database) -> None:
    """`conflicts list --limit 3` gives the three oldest open conflicts and more=true;
    the default is 50."""
    limited = _cli(big_db, "conflicts", "list", "--limit", "3")
    assert [row["status"] for row in limited["conflicts"]] == ["open"] * 3
    assert limited["more"] is True
    ids = [row["id"] for row in limited["conflicts"]]
    assert ids == sorted(ids)
    assert len(_cli(big_db, "conflicts", "list")["conflicts"]) == 50


def test_flights_list_total_stops_at_the_cap(big_db: Database, sizes: Sizes) -> None:
    """`flights list` over 200,000 tracked flights counts up to 10,000 and says the total
    is capped; `--due` (2,000 matches; 10,000 under --heavy) gives the exact total."""
    listed = _cli(big_db, "flights", "list", "--tracked", "--limit", "5")
    assert (listed["total"], listed["total_capped"]) == (10_000, True)
    assert len(listed["flights"]) == 5 and all(f["legs"] == 1 for f in listed["flights"])
    due = _cli(big_db, "flights", "list", "--due", "--limit", "5")
    assert (due["total"], due["total_capped"]) == (sizes.due, False)
