"""Several hosts running `flightsync batch --due` against one PostgreSQL database: the lease
claim (FOR UPDATE SKIP LOCKED) splits the due flights so that each is synced exactly once,
without deadlock or lost update, and a crashed worker's expired lease is taken over.

Each worker is a real CLI subprocess with its own state directory, as a separate host would
have; every worker talks to one running sandbox with some latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks._seed import mark_synced
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from flightsync.store import Database, migrate
from flightsync.store import repository as repo

FLIGHTSYNC = Path(sys.executable).parent / "flightsync"
DAY = datetime.now(UTC).date() + timedelta(days=1)
WORKERS = 4


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(default_latency_ms=10)) as running:
        yield running


def environment(pg_url: str, sandbox: Sandbox, state: Path, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTSYNC_")}
    env.update(sandbox_environment(sandbox.base_url))
    env.update(FLIGHTSYNC_DATABASE_URL=pg_url, FLIGHTSYNC_STATE_DIR=str(state),
               FLIGHTSYNC_CONFIG=str(config), FLIGHTSYNC_RAISE_ERRORS="1")
    return env


def flightsync(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(FLIGHTSYNC), "--json", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, f"exit {process.returncode}\n{out[-2000:]}\n{err[-2000:]}"
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def seed(pg_url: str, sandbox: Sandbox, tmp_path: Path, count: int) -> tuple[Path, list[str]]:
    """Sync ``count`` flights once, then make every one of them due."""
    migrate.upgrade(pg_url)
    config = tmp_path / "flightsync.yaml"
    config.write_text("batch: {size: 25}\n", encoding="utf-8")
    carriers = ("LH", "KL", "BA", "AF")
    flights = [f"{carriers[i % len(carriers)]}{100 + i}" for i in range(count)]
    batch = tmp_path / "flights.csv"
    batch.write_text("flight,date\n" + "".join(f"{f},{DAY}\n" for f in flights),
                     encoding="utf-8")
    seeded = finish(flightsync(environment(pg_url, sandbox, tmp_path / "seed", config),
                               "batch", str(batch)))
    assert seeded["summary"]["synced"] == count
    engine = create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE flight SET next_sync_due_at = now() - interval '1 hour'"))
    finally:
        engine.dispose()
    return config, flights


def per_flight(pg_url: str, sql: str) -> dict[tuple[str, int], Any]:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return {(row[0], row[1]): row[2] for row in conn.execute(text(sql))}
    finally:
        engine.dispose()


def test_concurrent_workers_sync_every_due_flight_exactly_once(
        pg_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    """Four `batch --due` workers over a few hundred due flights: the summaries add up to
    every flight, every flight was synced exactly once more than the seed (sync_attempts; its
    providers' observations confirmed or renewed after the seed's), no lease is left, every
    flight is due again only later, and the work was split between workers."""
    config, flights = seed(pg_url, sandbox, tmp_path, 200)
    workers = [flightsync(environment(pg_url, sandbox, tmp_path / f"host{n}", config),
                          "batch", "--due") for n in range(WORKERS)]
    results = [finish(worker) for worker in workers]

    run_ids = {r["run_id"] for r in results}
    assert len(run_ids) == WORKERS
    synced = [r["summary"]["synced"] for r in results]
    assert sum(synced) == len(flights)
    assert all(r["summary"]["failed"] == 0 for r in results)
    assert sum(1 for n in synced if n > 0) >= 2, synced

    # An unchanged answer confirms the seed's observation (issue 16): seen again, no new row.
    seen_again = per_flight(pg_url, """
        SELECT f.carrier, f.flight_number, max(o.confirmed_at) > min(o.observed_at)
        FROM flight f JOIN source_observation o ON o.flight_id = f.id
        WHERE f.leg_index = 0 GROUP BY f.carrier, f.flight_number""")
    assert len(seen_again) == len(flights)
    assert set(seen_again.values()) == {True}
    attempts = per_flight(pg_url, "SELECT carrier, flight_number, max(sync_attempts) "
                                  "FROM flight GROUP BY carrier, flight_number")
    assert set(attempts.values()) == {2}
    leftovers = per_flight(pg_url, """
        SELECT carrier, flight_number, count(*) FROM flight
        WHERE lease_owner IS NOT NULL OR next_sync_due_at <= now()
        GROUP BY carrier, flight_number""")
    assert leftovers == {}


def test_a_crashed_workers_lease_is_taken_over_once_it_expires(
        pg_url: str, sandbox: Sandbox, tmp_path: Path) -> None:
    """Flights leased by a worker that died: while its lease runs, another worker leaves
    them alone; once it expired, the next worker syncs them."""
    config, flights = seed(pg_url, sandbox, tmp_path, 30)
    database = Database.open(pg_url)
    now = datetime.now(UTC)
    try:
        with database.session() as session:
            alive = repo.claim_due(session, now=now, limit=5, owner="alive:1",
                                   lease_seconds=3600, postgres=True)
            dead = repo.claim_due(session, now=now - timedelta(hours=1), limit=5,
                                  owner="dead:1", lease_seconds=60, postgres=True)
    finally:
        database.close()
    assert len(alive) == len(dead) == 5
    env = environment(pg_url, sandbox, tmp_path / "host", config)
    result = finish(flightsync(env, "batch", "--due"))
    synced = {(r["flight"]["carrier"], r["flight"]["flight_number"])
              for r in result["successful"]}
    assert len(synced) == len(flights) - len(alive)
    assert {(q.carrier, q.number) for q in dead} <= synced
    assert not {(q.carrier, q.number) for q in alive} & synced
    owners = per_flight(pg_url, "SELECT carrier, flight_number, lease_owner FROM flight "
                                "WHERE leg_index = 0 AND lease_owner IS NOT NULL")
    assert set(owners.values()) == {"alive:1"}


def test_only_the_claims_own_transaction_skips_the_wal_flush(pg_url: str) -> None:
    """A claim turns synchronous_commit off for its own transaction (a lease is soft state,
    store/_due.py): off right after the claim, back on for the connection's next
    transaction, which a durable write may use."""
    import psycopg  # noqa: PLC0415

    from benchmarks._seed import seed as seed_flights  # noqa: PLC0415

    migrate.upgrade(pg_url)
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        seed_flights(conn, flights=20, due=10, now=datetime.now(UTC))
    database = Database.open(pg_url)
    try:
        with database.engine.connect() as conn:
            before = conn.execute(text("SHOW synchronous_commit")).scalar()
            conn.rollback()
            with Session(bind=conn) as session:
                claimed = repo.claim_due(session, now=datetime.now(UTC), limit=5,
                                         owner="w:1", lease_seconds=60, postgres=True)
                during = conn.execute(text("SHOW synchronous_commit")).scalar()
                session.commit()
            after = conn.execute(text("SHOW synchronous_commit")).scalar()
            conn.rollback()
    finally:
        database.close()
    assert len(claimed) == 5
    assert (before, during, after) == ("on", "off", "on")


def test_claims_racing_with_other_workers_syncs_take_each_flight_once(pg_url: str) -> None:
    """Six claimers at once, each "syncing" what it claimed at once (the lease cleared, next
    due tomorrow, as a write leaves a flight): no flight is claimed twice. A row another
    worker leased and synced during a claim statement is re-checked as due on its newest
    version, not taken because the claim's window, read before, still listed it as due.
    (A race: without that re-check this failed 4 runs of 6, not every run.)"""
    import threading  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from benchmarks._seed import seed as seed_flights  # noqa: PLC0415

    migrate.upgrade(pg_url)
    raw_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw_url) as conn:
        seeded = seed_flights(conn, flights=4_000, due=2_000, now=datetime.now(UTC))
    started = datetime.now(UTC)
    claimed: list[tuple[str, int, Any]] = []
    failures: list[BaseException] = []

    def claimer(index: int) -> None:
        database = Database.open(pg_url)
        try:
            with psycopg.connect(raw_url) as sync:
                while True:
                    with database.session() as session:
                        got = repo.claim_due(session, now=datetime.now(UTC), due_by=started,
                                             limit=5, owner=f"w:{index}", lease_seconds=600,
                                             postgres=True)
                    if not got:
                        return
                    claimed.extend((q.carrier, q.number, q.departure_date) for q in got)
                    mark_synced(sync, got)
                    sync.commit()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert len(claimed) == len(set(claimed)) == seeded.due
