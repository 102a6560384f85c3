"""Concurrent runs on one SQLite database (issue 8): the cron job (`batch --due`) and an
operator's loop of `sync` commands, as separate processes, at the same time, while the
providers keep changing what they say. Neither may fail with "database is locked", and no
update may be lost: every leg's audit trail replays to its stored row, each version was written
by exactly one run, and the last values the providers gave are the ones stored.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests._e2e import (
    Outcome,
    SandboxProcess,
    integrity_problems,
    invoke,
    run,
    sandbox_process,
    sqlite_file,
    write_config,
)

# Tomorrow: flights still tracked, so `batch --due` picks them up (past ones are not tracked).
DAY = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
FLIGHTS = [f"LH{n}" for n in range(400, 416)] + ["KL1009", "AF1006", "BA117"]
OPERATOR_FLIGHTS = ["LH400", "KL1009", "LH405", "AF1006", "BA117"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    with sandbox_process(tmp_path, {"default_latency_ms": 10}) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, sandbox: SandboxProcess, state_dir: Path) -> dict[str, str]:
    config = write_config(
        tmp_path / "flightsync.yaml",
        http={"timeout_seconds": 10, "max_workers": 4}, batch={"size": 5},
        retry={"attempts": 2, "backoff_initial_seconds": 0, "backoff_max_seconds": 0})
    return {**sandbox.environment(), "FLIGHTSYNC_CONFIG": str(config),
            "FLIGHTSYNC_STATE_DIR": str(state_dir)}


def _time_passes(state_dir: Path) -> None:
    """Every tracked flight is due now, as if its refresh time had come."""
    with sqlite3.connect(sqlite_file(state_dir), timeout=30) as conn:
        conn.execute("UPDATE flight SET next_sync_due_at = created_at")
    conn.close()


def test_cron_batch_and_operator_syncs_do_not_collide(
        tmp_path: Path, sandbox: SandboxProcess, env: dict[str, str], state_dir: Path) -> None:
    """A `batch --due` and a loop of `sync`s on the same flights, run together while the
    gates change, all exit 0, never report a locked database, and lose no update."""
    batch_file = tmp_path / "flights.csv"
    batch_file.write_text("flight,date\n" + "".join(f"{f},{DAY}\n" for f in FLIGHTS),
                          encoding="utf-8")
    sandbox.scenario(overrides=[{"fields": {"departure_gate": "A0"}}])
    seed = invoke(["batch", str(batch_file)], env)
    assert seed.exit_code == 0, seed.stderr[-2000:]
    _time_passes(state_dir)

    outcomes: list[Outcome] = []
    stop = threading.Event()

    def operator() -> None:
        for flight in OPERATOR_FLIGHTS:
            outcomes.append(run(["sync", flight, "--date", DAY, "--force"], env))

    def changing_gates() -> None:
        gate = 0
        while not stop.wait(0.05):
            gate += 1
            sandbox.scenario(overrides=[{"fields": {"departure_gate": f"A{gate}"}}])

    threads = [threading.Thread(target=operator), threading.Thread(target=changing_gates)]
    for thread in threads:
        thread.start()
    try:
        cron = [run(["batch", "--due"], env)]
    finally:
        threads[0].join()
        stop.set()
        threads[1].join()

    for outcome in [*cron, *outcomes]:
        assert "locked" not in (outcome.stdout + outcome.stderr).lower(), outcome.stderr[-1500:]
        assert "Traceback" not in outcome.stderr
        assert outcome.exit_code == 0, outcome.stdout[-1500:] + outcome.stderr[-1500:]
    assert len(outcomes) == len(OPERATOR_FLIGHTS)
    assert all(c.json["summary"]["failed"] == 0 for c in cron)
    # A flight the operator synced just before the cron claimed it is no longer due.
    assert len(FLIGHTS) - len(OPERATOR_FLIGHTS) <= cron[0].json["requested"] <= len(FLIGHTS)
    problems = integrity_problems(sqlite_file(state_dir))
    assert not problems, problems

    # And the last word wins: one more run with the gates settled stores the final value.
    sandbox.scenario(overrides=[{"fields": {"departure_gate": "Z9"}}])
    _time_passes(state_dir)
    final = invoke(["batch", "--due"], env)
    assert final.exit_code == 0
    assert final.json["requested"] == len(FLIGHTS)
    assert {leg["departure_gate"] for r in final.json["successful"] for leg in r["legs"]} == {"Z9"}
    assert not integrity_problems(sqlite_file(state_dir))
