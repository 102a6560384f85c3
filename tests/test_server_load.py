"""`flightsync serve` under load and under failure (README, "Webhook server"): 8 clients
offering 200 events a second (3 s here, 30 s with --heavy): none lost, none applied twice,
p50/p99 printed; SIGKILL in the middle of the load with events in the spool, then a restart:
every acknowledged event is in the database and the spool is drained; the database locked
by another process during a burst: events spooled (202) and applied in order once it is
released; a `changes` consumer that stops and resumes sees every change once, in order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from benchmarks._loadgen import SECRET, event_body, run_load, signed
from tests._server import running, start, wait_drained

DAY = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
CLIENTS, RATE = 8, 200.0


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, str], Path]:
    config = tmp_path / "flightsync.yaml"
    config.write_text("server:\n  lock_wait_seconds: 0.5\n  max_concurrency: 64\n",
                      encoding="utf-8")
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"), "FLIGHTSYNC_CONFIG": str(config),
           "FLIGHTSYNC_WEBHOOK_SECRET": SECRET, "FLIGHTSYNC_RAISE_ERRORS": "0"}
    return env, tmp_path / "state" / "flightsync.db"


def rows(path: Path, sql: str) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)).all())
    finally:
        engine.dispose()


def stored_ids(db: Path) -> list[str]:
    return [r[0] for r in rows(db, "SELECT event_id FROM webhook_event")]


def gate_changes(db: Path) -> int:
    return int(rows(db, "SELECT count(*) FROM flight_change WHERE field = 'departure_gate'"
                    )[0][0])


class Locker:
    """Another process holding the SQLite file's write lock (BEGIN EXCLUSIVE) until
    released: the database is unavailable to every writer meanwhile."""

    def __init__(self, db: Path) -> None:
        code = ("import sqlite3, sys\n"
                f"con = sqlite3.connect({str(db)!r}, isolation_level=None, timeout=30)\n"
                "con.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\n"
                "sys.stdin.read()\ncon.execute('ROLLBACK')\n")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == b"locked"

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(30)
        self.process.stdout.close()


def test_load_none_lost_none_applied_twice(setup: tuple[dict[str, str], Path], tmp_path: Path,
                                           heavy: bool) -> None:
    """Every event gets a 2xx, is stored once, and moves its flight's gate once."""
    env, db = setup
    seconds = 30.0 if heavy else 3.0
    with running(env, tmp_path / "server.log") as server:
        result = run_load(server.url, clients=CLIENTS, rate=RATE, seconds=seconds, day=DAY)
        wait_drained(server)
        print(f"\nload: {result.summary()}")
        assert '"level": "error"' not in server.stderr()
    acked = result.acked()
    assert len(acked) == len(result.sent) > 0, result.statuses()
    ids = stored_ids(db)
    assert sorted(ids) == sorted(acked)          # none lost, none extra
    assert len(ids) == len(set(ids))              # none stored twice
    assert gate_changes(db) == len(acked)         # each moved its gate exactly once


def test_sigkill_mid_load_loses_no_acknowledged_event(
        setup: tuple[dict[str, str], Path], tmp_path: Path) -> None:
    """Load, then the database locked (events spooled, 202), then SIGKILL; the lock goes,
    the server restarts: every acknowledged id is stored and the spool is empty."""
    env, db = setup
    server = start(env, tmp_path / "first.log")
    current = {"url": server.url}
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def load() -> None:
        outcome["result"] = run_load(lambda: current["url"], clients=CLIENTS, rate=RATE,
                                     seconds=4.0, day=DAY, stop=stop, timeout=5.0)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1.0)
        locker = Locker(db)
        time.sleep(1.5)
        server.kill()
        locker.release()
    finally:
        stop.set()
        worker.join(60)
    result = outcome["result"]
    spooled = [s for s in result.sent if s.status == 202]
    assert spooled, f"some events were spooled while the database was locked: {result.summary()}"
    with running(env, tmp_path / "second.log") as again:
        wait_drained(again)
    acked = set(result.acked())
    stored = stored_ids(db)
    assert acked <= set(stored), sorted(acked - set(stored))[:5]
    assert len(stored) == len(set(stored))
    assert not list((db.parent / "spool").glob("*.json"))
    print(f"\nkilled mid-load: {result.summary()}; {len(spooled)} spooled, all applied")


def test_database_locked_during_a_burst(setup: tuple[dict[str, str], Path],
                                        tmp_path: Path) -> None:
    """While another process holds the SQLite write lock, a burst of events for one flight
    is answered 202 (spooled); once released they are applied in the order they came."""
    env, db = setup
    with running(env, tmp_path / "server.log") as server:
        warm = event_body(7001, "W0", day=DAY)
        assert httpx.post(f"{server.url}/webhooks/flightsync", content=warm,
                          headers=signed(warm, "burst-warm"), timeout=10).status_code == 200
        locker = Locker(db)
        try:
            answers = []
            for n in range(20):
                body = event_body(7001, f"B{n:02d}", day=DAY)
                answers.append(httpx.post(f"{server.url}/webhooks/flightsync", content=body,
                                          headers=signed(body, f"burst-{n}"), timeout=10))
            assert [a.status_code for a in answers] == [202] * 20
            assert {a.json()["status"] for a in answers} == {"spooled"}
            assert len(list((db.parent / "spool").glob("*.json"))) == 20
        finally:
            locker.release()
        wait_drained(server)
    gates = [r[0] for r in rows(db, "SELECT new FROM flight_change WHERE field = "
                                "'departure_gate' ORDER BY id")]
    assert gates == [json.dumps(g) for g in ["W0", *[f"B{n:02d}" for n in range(20)]]]
    assert rows(db, "SELECT departure_gate FROM flight WHERE flight_number = 7001"
                ) == [("B19",)]


def changes(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "flightsync", "changes", *args],
                          env={**os.environ, **env}, capture_output=True,
                          timeout=60, check=True)
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


def test_changes_consumer_resumes_from_its_cursor(setup: tuple[dict[str, str], Path],
                                                  tmp_path: Path) -> None:
    """A consumer reads the feed, stops, changes happen while it is away, and it resumes
    from its last cursor; a --follow consumer sees new changes as they come. Together they
    see every stored change exactly once, in order."""
    env, db = setup
    with running(env, tmp_path / "server.log") as server:
        first = run_load(server.url, clients=4, rate=100, seconds=1.0, day=DAY, prefix="a")
        seen = changes(env)
        cursor = seen[-1]["cursor"]
        run_load(server.url, clients=4, rate=100, seconds=1.0, day=DAY, prefix="b")
        resumed = changes(env, "--since", str(cursor), "--limit", "50")
        seen += resumed
        follower = subprocess.Popen(
            [sys.executable, "-m", "flightsync", "changes", "--follow", "--interval", "0.1",
             "--since", str(seen[-1]["cursor"])],
            env={**os.environ, **env}, stdout=subprocess.PIPE)
        try:
            run_load(server.url, clients=4, rate=100, seconds=1.0, day=DAY, prefix="c")
            total = int(rows(db, "SELECT count(*) FROM flight_change")[0][0])
            assert follower.stdout is not None
            deadline = time.monotonic() + 30
            while len(seen) < total:
                assert time.monotonic() < deadline, (len(seen), total)
                seen.append(json.loads(follower.stdout.readline()))
        finally:
            follower.send_signal(signal.SIGTERM)
            code = follower.wait(30)
            assert follower.stdout is not None
            follower.stdout.close()
        assert code == 0
    assert first.acked()
    ids = [r[0] for r in rows(db, "SELECT id FROM flight_change ORDER BY id")]
    assert [c["cursor"] for c in seen] == ids
    assert {"flight", "date", "field", "old", "new", "source", "rule", "version",
            "cursor"} <= set(seen[0])


def test_changes_refusals(setup: tuple[dict[str, str], Path]) -> None:
    """--date without --flight, --limit with --follow: usage errors (exit 2)."""
    env, _ = setup
    for args in (["--date", DAY], ["--follow", "--limit", "3"]):
        done = subprocess.run([sys.executable, "-m", "flightsync", "changes", *args],
                              env={**os.environ, **env}, capture_output=True,
                              timeout=60, check=False)
        assert done.returncode == 2
        assert b"Traceback" not in done.stderr
