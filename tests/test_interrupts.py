"""Interrupts that respect the user (README, "Interrupts"): the first SIGINT or SIGTERM during
a run whose provider hangs ends it with exit 130 within 2 s, the finished flights written and
printed, the rest reported `interrupted`, and the run's record closed `interrupted`; a run
killed with SIGKILL is reported by `status` as an abandoned run.

The real `flightsync` process runs against the sandbox server process; the sandbox's `hang`
fault keeps one flight's calls on the wire for 30 s, far past the 2 s the test allows.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._e2e import (
    FLIGHTSYNC,
    SandboxProcess,
    invoke,
    migrated_template,
    run,
    sandbox_process,
    seed_database,
    sqlite_file,
    write_config,
)

DAY = "2026-03-01"
HANGING = "BA117"   # every provider hangs on this flight
ANSWERED = "LH400"  # every provider answers this one at once
DEADLINE_SECONDS = 2.0
HANG_SECONDS = 30


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    scenario = {"hang_seconds": HANG_SECONDS,
                "faults": [{"provider": "*", "kind": "hang", "flight": HANGING}]}
    with sandbox_process(tmp_path_factory.mktemp("sandbox"), scenario) as server:
        yield server


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def env(sandbox: SandboxProcess, template: Path, state_dir: Path) -> dict[str, str]:
    """The sandbox's environment and a migrated database in the state directory."""
    seed_database(template, state_dir)
    return {**sandbox.environment(), "FLIGHTSYNC_STATE_DIR": str(state_dir)}


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(FLIGHTSYNC), *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the first run is still creating the schema
        return []
    finally:
        conn.close()


def _wait_for(condition: Any, what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll ``condition`` (at most 60 s: a loaded machine), failing if the run ended first."""
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.stderr!r}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _interrupt(process: subprocess.Popen[bytes], signum: int) -> tuple[float, str, str]:
    """Send ``signum``; how long the process took to exit, its stdout and stderr."""
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return time.monotonic() - sent, stdout.decode(), stderr.decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_batch_interrupted_during_a_hanging_provider_ends_at_once_with_what_finished(
        env: dict[str, str], state_dir: Path, tmp_path: Path, signum: int) -> None:
    """Interrupted while one flight's providers hang and the other is written: exit 130
    within 2 s, the JSON says `interrupted`, lists the written flight as synced and the
    hanging one as failed `interrupted` (not written), and the run's row is `interrupted`."""
    batch = tmp_path / "flights.csv"
    batch.write_text(f"flight,date\n{ANSWERED},{DAY}\n{HANGING},{DAY}\n", encoding="utf-8")
    db = sqlite_file(state_dir)
    process = _start(["batch", str(batch)], env)
    _wait_for(lambda: _rows(db, "SELECT count(*) FROM flight") == [(1,)],
              f"{ANSWERED} to be written", process)

    elapsed, stdout, stderr = _interrupt(process, signum)

    assert process.returncode == 130, stderr
    assert elapsed < DEADLINE_SECONDS, f"took {elapsed:.1f} s to stop"
    result = json.loads(stdout)
    assert result["interrupted"] is True
    assert [r["flight"]["carrier"] + str(r["flight"]["flight_number"])
            for r in result["successful"]] == [ANSWERED]
    assert [(f["flight"], f["error"]["code"]) for f in result["failed"]] == [
        (HANGING, "interrupted")]
    assert "interrupted: 1 of 2 flights synced" in stderr
    assert "Traceback" not in stderr
    assert _rows(db, "SELECT carrier || flight_number FROM flight") == [(ANSWERED,)]
    assert _rows(db, "SELECT kind, outcome FROM sync_run") == [("batch", "interrupted")]
    assert _rows(db, "SELECT count(*) FROM sync_run WHERE finished_at IS NULL") == [(0,)]
    # Stopped by an operator, not failing: no batch_success_rate alert for its 1 of 2.
    status = invoke(["status"], env)
    assert status.exit_code == 0, status.stderr
    assert not [a for a in status.json["alerts"] if a.startswith("batch_success_rate")]


def test_a_single_sync_interrupted_prints_its_result_and_exits_130(
        env: dict[str, str], state_dir: Path) -> None:
    """Ctrl-C during a sync whose every provider hangs: exit 130 within 2 s, the sync's
    JSON with error `interrupted` and every source `interrupted`, nothing written, the run
    closed `interrupted`."""
    db = sqlite_file(state_dir)
    process = _start(["sync", HANGING, "--date", DAY], env)
    _wait_for(lambda: _rows(db, "SELECT outcome FROM sync_run") == [("running",)],
              "the run to start", process)
    time.sleep(0.5)  # the calls are on the wire

    elapsed, stdout, stderr = _interrupt(process, signal.SIGINT)

    assert process.returncode == 130, stderr
    assert elapsed < DEADLINE_SECONDS, f"took {elapsed:.1f} s to stop"
    result = json.loads(stdout)
    assert result["success"] is False
    assert result["error"]["code"] == "interrupted"
    assert result["sources"] and {s["error"] for s in result["sources"]} == {"interrupted"}
    assert "interrupted:" in stderr and "nothing written" in stderr
    assert _rows(db, "SELECT count(*) FROM flight") == [(0,)]
    assert _rows(db, "SELECT outcome FROM sync_run") == [("interrupted",)]


def test_an_interrupted_due_run_leaves_its_unfinished_flights_due(
        env: dict[str, str], state_dir: Path, sandbox: SandboxProcess) -> None:
    """SIGTERM (systemd's stop) during `batch --due`: the answered flight is written and no
    longer due, the hanging one keeps its due time and loses its lease (the next run takes
    it at once, instead of 15 minutes later), and the run is closed `interrupted`."""
    db = sqlite_file(state_dir)
    sandbox.scenario(faults=[])
    try:
        for flight in (ANSWERED, HANGING):
            assert run(["sync", flight, "--date", DAY], env).exit_code == 0
    finally:
        sandbox.scenario(hang_seconds=HANG_SECONDS,
                         faults=[{"provider": "*", "kind": "hang", "flight": HANGING}])
    conn = sqlite3.connect(db, timeout=30)
    with conn:  # both tracked and overdue
        conn.execute("UPDATE flight SET tracked = 1, "
                     "next_sync_due_at = '2000-01-01 00:00:00.000000'")
    conn.close()
    process = _start(["batch", "--due"], env)
    _wait_for(lambda: _rows(db, "SELECT count(*) FROM flight WHERE next_sync_due_at > "
                                "'2001-01-01'") == [(1,)], f"{ANSWERED} to be written", process)

    elapsed, stdout, stderr = _interrupt(process, signal.SIGTERM)

    assert process.returncode == 130, stderr
    assert elapsed < DEADLINE_SECONDS, f"took {elapsed:.1f} s to stop"
    assert json.loads(stdout)["interrupted"] is True
    due = dict(_rows(db, "SELECT carrier || flight_number, next_sync_due_at FROM flight"))
    assert due[HANGING] == "2000-01-01 00:00:00.000000"
    assert due[ANSWERED] > "2001"
    assert _rows(db, "SELECT count(*) FROM flight WHERE lease_owner IS NOT NULL") == [(0,)]
    assert _rows(db, "SELECT outcome FROM sync_run WHERE kind = 'batch_due'") == [
        ("interrupted",)]


OTHERS = ("LH402", "LH404", "LH406", "LH408", "LH410")  # answered at once, like ANSWERED


def test_a_due_run_claims_past_a_hanging_round_and_an_interrupt_releases_every_open_one(
        env: dict[str, str], state_dir: Path, sandbox: SandboxProcess, tmp_path: Path) -> None:
    """Rounds of 2 flights on 8 workers, the hanging flight in the first round: the run goes on
    claiming and writing the later rounds while that round waits (a run that finished each
    round before claiming the next would write nothing more). SIGTERM then: every answered
    flight written once, the hanging one still due and unleased, no lease left on any round,
    the run `interrupted`."""
    db = sqlite_file(state_dir)
    flights = (HANGING, ANSWERED, *OTHERS)
    sandbox.scenario(faults=[])
    try:
        for flight in flights:
            assert run(["sync", flight, "--date", DAY], env).exit_code == 0
    finally:
        sandbox.scenario(hang_seconds=HANG_SECONDS,
                         faults=[{"provider": "*", "kind": "hang", "flight": HANGING}])
    conn = sqlite3.connect(db, timeout=30)
    with conn:  # all due; the hanging one departs first, so the first claim takes it
        conn.execute("UPDATE flight SET tracked = 1, "
                     "next_sync_due_at = '2000-01-01 00:00:00.000000'")
        conn.execute("UPDATE flight SET scheduled_departure = '2000-01-01 00:00:00.000000' "
                     "WHERE carrier || flight_number = ?", (HANGING,))
    conn.close()
    config = write_config(tmp_path / "rounds.yaml", batch={"size": 2}, http={"max_workers": 8})
    process = _start(["--json", "--config", str(config), "batch", "--due"], env)
    _wait_for(lambda: _rows(db, "SELECT count(*) FROM flight WHERE next_sync_due_at > "
                                "'2001-01-01'") == [(len(flights) - 1,)],
              "every flight but the hanging one to be written", process)

    elapsed, stdout, stderr = _interrupt(process, signal.SIGTERM)

    assert process.returncode == 130, stderr
    assert elapsed < DEADLINE_SECONDS, f"took {elapsed:.1f} s to stop"
    result = json.loads(stdout)
    assert result["interrupted"] is True
    assert sorted(r["flight"]["carrier"] + str(r["flight"]["flight_number"])
                  for r in result["successful"]) == sorted(flights[1:])
    assert [(f["flight"], f["error"]["code"]) for f in result["failed"]] == [
        (HANGING, "interrupted")]
    due = dict(_rows(db, "SELECT carrier || flight_number, next_sync_due_at FROM flight"))
    assert due[HANGING] == "2000-01-01 00:00:00.000000"
    assert all(due[flight] > "2001" for flight in flights[1:])
    assert dict(_rows(db, "SELECT carrier || flight_number, sync_attempts FROM flight "
                          "WHERE carrier || flight_number <> 'BA117'")) == dict.fromkeys(
        flights[1:], 2)
    assert _rows(db, "SELECT count(*) FROM flight WHERE lease_owner IS NOT NULL") == [(0,)]
    assert _rows(db, "SELECT outcome FROM sync_run WHERE kind = 'batch_due'") == [
        ("interrupted",)]


def test_a_run_killed_outright_is_reported_as_abandoned(
        env: dict[str, str], state_dir: Path, tmp_path: Path) -> None:
    """A run SIGKILLed mid-way leaves its row `running`; once older than
    alerts.abandoned_run_seconds, `status --check` names it (`abandoned_run`) and exits 3,
    while a run younger than the bound raises nothing."""
    db = sqlite_file(state_dir)
    process = _start(["sync", HANGING, "--date", DAY], env)
    _wait_for(lambda: _rows(db, "SELECT outcome FROM sync_run") == [("running",)],
              "the run to start", process)
    process.kill()
    process.communicate()
    (run_id,) = _rows(db, "SELECT run_id FROM sync_run")[0]

    patient = write_config(tmp_path / "patient.yaml", alerts={"abandoned_run_seconds": 3600})
    calm = run(["status", "--check"], {**env, "FLIGHTSYNC_CONFIG": str(patient)})
    assert calm.exit_code == 0, calm.stderr
    assert not any(a.startswith("abandoned_run") for a in calm.json["alerts"])

    strict = write_config(tmp_path / "strict.yaml", alerts={"abandoned_run_seconds": 0.01})
    time.sleep(0.05)
    alert = run(["status", "--check"], {**env, "FLIGHTSYNC_CONFIG": str(strict)})
    assert alert.exit_code == 3, alert.stderr
    lines = [a for a in alert.json["alerts"] if a.startswith("abandoned_run:")]
    assert len(lines) == 1 and run_id in lines[0]
    assert f"alert: {lines[0]}" in alert.stderr
