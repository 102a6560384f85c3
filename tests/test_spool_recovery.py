"""Spool recovery is idempotent at every instant (issue 19, item 2).

`flightsync ingest-webhook --spool` runs as a real process and kills itself with SIGKILL at a
chosen step of a chosen event's handling (``FLIGHTSYNC_TEST_KILL_AT=<step>:<n>``, the test
hook of ``engine/_killpoint.py``), so every gap between two steps is hit on purpose, not by
chance. The events were received an hour ago (their signatures' timestamps and the files'
times say so), far past the 300 s tolerance. A second run then recovers: every event the
killed run applied is a duplicate, every other one is applied, each exactly once, and
failed/ holds the forged event only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests._e2e import migrated_template, run, seed_database

KEY = b"spool-recovery-test-key-0123456789"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
RECEIVED = int(time.time()) - 3600   # an hour ago: 12 times the signature tolerance
GOOD = ("e1", "e2", "e3")
# Oldest first, as the spool applies them: a forged event between the good ones.
ORDER = ("e1", "forged", "e2", "e3")

# Every step of one event's handling, in order, and how often a run over ORDER reaches it.
# An applied event: read, (transaction) before commit, committed, recorded (run row, cache,
# notifications), headers linked into done/, .json moved (the commit point), .headers gone.
# The forged one: read, reason written, headers linked into failed/, .json moved, gone.
STEPS = {
    "spool.read": 4, "webhook.before_commit": 3, "webhook.committed": 3,
    "webhook.recorded": 3, "spool.reason_written": 1, "spool.headers_linked": 4,
    "spool.json_moved": 4, "spool.moved": 4,
}


def _event(name: str) -> bytes:
    number = 900 + int(name[1:]) if name in GOOD else 999
    return json.dumps({
        "type": "flight.updated", "provider": "flightaware", "flight": f"UA{number}",
        "date": "2026-03-02", "occurred_at": "2026-03-01T10:00:00Z", "origin": "JFK",
        "changes": {"departure_gate": f"G{name}"}}).encode()


def _fill(spool: Path) -> None:
    """The four events, each signed when it arrived an hour ago and written then."""
    spool.mkdir()
    for offset, name in enumerate(ORDER):
        body = _event(name)
        stamp = RECEIVED + offset
        key = KEY if name in GOOD else b"not-the-key"
        mac = hmac.new(key, f"msg_{name}.{stamp}.".encode() + body, hashlib.sha256).digest()
        (spool / f"{name}.headers").write_text(
            f"webhook-id: msg_{name}\nwebhook-timestamp: {stamp}\n"
            f"webhook-signature: v1,{base64.b64encode(mac).decode()}\n")
        (spool / f"{name}.json").write_bytes(body)
        for path in (spool / f"{name}.headers", spool / f"{name}.json"):
            os.utime(path, (stamp + 1, stamp + 1))


def _applied(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT event_id FROM webhook_event")]
    conn.close()
    return sorted(ids)


def _gates(db: Path) -> dict[int, str]:
    with sqlite3.connect(db) as conn:
        found = dict(conn.execute("SELECT flight_number, departure_gate FROM flight"))
    conn.close()
    return found


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated database for the module, copied into each trial's state directory."""
    return migrated_template(tmp_path_factory.mktemp("template"))


def _trials(heavy: bool) -> list[tuple[str, int]]:
    """Every step, killed at its second occurrence (mid-run: events before and after it);
    under --heavy at every occurrence."""
    return [(step, nth) for step, count in STEPS.items()
            for nth in (range(1, count + 1) if heavy else (min(2, count),))]


@pytest.mark.parametrize(("step", "nth"), _trials(heavy=False))
def test_a_kill_between_any_two_steps_is_recovered_late(tmp_path: Path, state_dir: Path,
                                                        template: Path, step: str,
                                                        nth: int) -> None:
    """Killed right after ``step`` (its nth time), then run again an hour after the events
    arrived: applied events are duplicates, the others applied, each once; done/ and
    failed/ hold exactly the right files; nothing is left in the spool."""
    _recover_after_kill(tmp_path, state_dir, template, step, nth)


@pytest.mark.slow
def test_a_kill_at_every_occurrence_of_every_step_is_recovered(tmp_path: Path,
                                                               template: Path) -> None:
    """--heavy: the same at every occurrence of every step (every event's every gap)."""
    for index, (step, nth) in enumerate(_trials(heavy=True)):
        trial = tmp_path / f"trial{index}"
        _recover_after_kill(trial, trial / "state", template, step, nth)


def _recover_after_kill(tmp_path: Path, state_dir: Path, template: Path, step: str,
                        nth: int) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = seed_database(template, state_dir)
    spool = tmp_path / "spool"
    _fill(spool)
    env = {"FLIGHTSYNC_STATE_DIR": str(state_dir), "FLIGHTSYNC_WEBHOOK_SECRET": SECRET}
    args = ["-q", "ingest-webhook", "--spool", str(spool), "--no-notify"]

    killed = run(args, {**env, "FLIGHTSYNC_TEST_KILL_AT": f"{step}:{nth}"})
    assert killed.exit_code == -signal.SIGKILL, (step, nth, killed.exit_code, killed.stderr)
    before = _applied(db)
    pending = {p.stem for p in spool.glob("*.json")}

    again = run(args, env)
    assert "Traceback" not in again.stderr, again.stderr
    assert again.exit_code == (1 if "forged" in pending else 0), (step, nth, again.stderr)
    statuses = {f["event_id"] or f["file"]: f["status"] for f in again.json["files"]}
    expected = {}
    for name in sorted(pending):
        if name == "forged":
            expected["msg_forged"] = "rejected"
        else:
            expected[f"msg_{name}"] = "duplicate" if f"msg_{name}" in before else "applied"
    assert statuses == expected, (step, nth, before)

    assert _applied(db) == [f"msg_{name}" for name in GOOD]
    assert _gates(db) == {900 + int(n[1:]): f"G{n}" for n in GOOD}
    assert _names(spool) == [".drain.lock", "done", "failed"]
    assert _names(spool / "done") == sorted(f"{n}.{ext}" for n in GOOD
                                            for ext in ("headers", "json"))
    assert _names(spool / "failed") == ["forged.headers", "forged.json", "forged.reason"]
    assert "no v1 signature" in (spool / "failed" / "forged.reason").read_text()
    for path in (spool / "done").iterdir():  # the files still say when they arrived
        assert path.stat().st_mtime < RECEIVED + 10


def test_only_a_linked_leftover_is_swept(tmp_path: Path, state_dir: Path,
                                         template: Path) -> None:
    """The next run removes a ``.headers`` whose ``.json`` already moved only when the same
    file is in done/ (the link the mover made); a receiver's ``.headers`` with a link of its
    own elsewhere and no ``.json`` yet is a delivery in progress and stays."""
    seed_database(template, state_dir)
    spool = tmp_path / "spool"
    (spool / "done").mkdir(parents=True)
    (spool / "left.headers").write_text("webhook-id: msg_left\n")
    os.link(spool / "left.headers", spool / "done" / "left.headers")
    (spool / "done" / "left.json").write_bytes(_event("e1"))
    (spool / "arriving.headers").write_text("webhook-id: msg_arriving\n")
    os.link(spool / "arriving.headers", tmp_path / "receiver-staging.headers")
    outcome = run(["-q", "ingest-webhook", "--spool", str(spool)],
                  {"FLIGHTSYNC_STATE_DIR": str(state_dir), "FLIGHTSYNC_WEBHOOK_SECRET": SECRET})
    assert outcome.exit_code == 0, outcome.stderr
    assert _names(spool) == [".drain.lock", "arriving.headers", "done"]
    assert _names(spool / "done") == ["left.headers", "left.json"]
