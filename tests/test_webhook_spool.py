"""`ingest-webhook --spool DIR`: oldest first, each file to done/ or failed/ (with its
reason), a summary per file, exit 1 when any failed, and re-running is safe."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment

runner = CliRunner()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = "2026-03-02"
KEY = b"flightsync-spool-test-key-012345"
SECRET = "whsec_" + base64.b64encode(KEY).decode()



@pytest.fixture
def env(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """LH400 synced from the sandbox into this test's database; the webhook secret set."""
    with Sandbox(SandboxConfig(now=NOW)) as running:
        for name, value in sandbox_environment(running.base_url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("FLIGHTSYNC_WEBHOOK_SECRET", SECRET)
        synced = runner.invoke(app, ["sync", "LH400", "--date", DAY])
        assert synced.exit_code == 0, synced.stderr
        yield state_dir / "flightsync.db"


def drop(spool: Path, name: str, payload: dict[str, Any] | bytes, msg_id: str | None, *,
         age: int, key: bytes = KEY) -> Path:
    """Write ``name``.json (and its .headers when ``msg_id`` is given), ``age`` s old."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    path = spool / f"{name}.json"
    path.write_bytes(body)
    if msg_id is not None:
        stamp = int(time.time())
        mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        (spool / f"{name}.headers").write_text(
            f"webhook-id: {msg_id}\nwebhook-timestamp: {stamp}\n"
            f"webhook-signature: v1,{base64.b64encode(mac).decode()}\n")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def gate_event(gate: str) -> dict[str, Any]:
    return {"type": "flight.updated", "provider": "lufthansa", "flight": "LH400", "date": DAY,
            "occurred_at": datetime.now(UTC).isoformat(),  # after the seeding sync
            "changes": {"departure_gate": gate}}


def stored_gate(db: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text(
                "SELECT departure_gate FROM flight WHERE carrier = 'LH'")).scalar_one())
    finally:
        engine.dispose()


def test_a_mixed_spool_is_applied_oldest_first_and_sorted_out(env: Path, tmp_path: Path) -> None:
    """Good, replayed, id-reusing, badly signed and malformed files: the good ones are applied
    oldest first and moved to done/ (the replay as a duplicate), the bad ones to failed/ with
    a .reason (an id reused with another body as webhook_id_reused); the summary lists each
    file and the exit code is 1."""
    spool = tmp_path / "spool"
    spool.mkdir()
    first = json.dumps(gate_event("A1")).encode()
    drop(spool, "a-first", first, "evt_a", age=50)
    drop(spool, "b-second", gate_event("B2"), "evt_b", age=40)
    drop(spool, "c-replay", first, "evt_a", age=30)
    drop(spool, "c-reused", gate_event("C3"), "evt_a", age=25)
    drop(spool, "d-forged", gate_event("D4"), "evt_d", age=20, key=b"not-the-key")
    drop(spool, "e-broken", b'{"type": ', "evt_e", age=10)
    result = runner.invoke(app, ["ingest-webhook", "--spool", str(spool)])
    assert result.exit_code == 1, result.stderr
    out = json.loads(result.stdout)
    assert [(f["file"], f["status"]) for f in out["files"]] == [
        ("a-first.json", "applied"), ("b-second.json", "applied"),
        ("c-replay.json", "duplicate"), ("c-reused.json", "rejected"),
        ("d-forged.json", "rejected"), ("e-broken.json", "rejected")]
    assert out["summary"] == {"applied": 2, "duplicate": 1, "rejected": 3, "files": 6}
    assert stored_gate(env) == "B2"   # the newer of the two applied events
    assert sorted(p.name for p in spool.iterdir()) == [".drain.lock", "done", "failed"]
    assert sorted(p.name for p in (spool / "done").iterdir()) == [
        "a-first.headers", "a-first.json", "b-second.headers", "b-second.json",
        "c-replay.headers", "c-replay.json"]
    failed = spool / "failed"
    assert (failed / "c-reused.reason").read_text().startswith(
        "webhook_id_reused: webhook-id 'evt_a' was applied before with a different body")
    assert "no v1 signature" in (failed / "d-forged.reason").read_text()
    assert "malformed JSON" in (failed / "e-broken.reason").read_text()
    assert (failed / "d-forged.json").exists()
    assert (failed / "e-broken.json").exists()


def test_re_running_after_a_crash_is_a_no_op(env: Path, tmp_path: Path) -> None:
    """An event applied but not moved (a crash in between) is a duplicate next time, moved to
    done/ without applying again; an empty spool exits 0."""
    spool = tmp_path / "spool"
    spool.mkdir()
    drop(spool, "evt", gate_event("K9"), "evt_k", age=5)
    kept = tmp_path / "copy"
    kept.mkdir()
    for path in spool.iterdir():
        shutil.copy(path, kept / path.name)
    assert runner.invoke(app, ["ingest-webhook", "--spool", str(spool)]).exit_code == 0
    for path in kept.iterdir():      # as if the first run died before moving the file
        shutil.copy(path, spool / path.name)
    again = runner.invoke(app, ["ingest-webhook", "--spool", str(spool)])
    assert again.exit_code == 0, again.stderr
    assert [f["status"] for f in json.loads(again.stdout)["files"]] == ["duplicate"]
    assert sorted(p.name for p in (spool / "done").iterdir()) == [
        "evt.1.headers", "evt.1.json", "evt.headers", "evt.json"]
    empty = runner.invoke(app, ["ingest-webhook", "--spool", str(spool)])
    assert empty.exit_code == 0
    assert json.loads(empty.stdout)["summary"]["files"] == 0


def test_file_and_spool_together_is_a_usage_error(env: Path, tmp_path: Path) -> None:
    """Exactly one of FILE and --spool: both (or neither) is exit 2."""
    assert runner.invoke(app, ["ingest-webhook", "-", "--spool", str(tmp_path)]).exit_code == 2
    assert runner.invoke(app, ["ingest-webhook"]).exit_code == 2


def test_an_event_without_its_headers_file_names_the_missing_file(env: Path,
                                                                 tmp_path: Path) -> None:
    """A spooled event whose .headers file is missing is rejected with a reason that names
    that file (not a missing header), and moved to failed/ untouched."""
    spool = tmp_path / "spool"
    spool.mkdir()
    drop(spool, "lonely", gate_event("L1"), None, age=10)
    result = runner.invoke(app, ["ingest-webhook", "--spool", str(spool)])
    assert result.exit_code == 1, result.stderr
    [entry] = json.loads(result.stdout)["files"]
    assert entry["status"] == "rejected"
    assert "lonely.headers is missing" in (spool / "failed" / "lonely.reason").read_text()
    assert stored_gate(env) != "L1"


def test_a_drain_while_another_drainer_holds_the_spool_waits_then_exits_5(
        env: Path, tmp_path: Path) -> None:
    """`ingest-webhook --spool` while another drainer (here: the lock `flightsync serve`
    takes, held by this test) has the spool: it waits --wait seconds, then one error line
    naming the problem and the holder, exit 5, and nothing applied or moved."""
    from flightsync.engine._lock import file_lock  # noqa: PLC0415

    spool = tmp_path / "spool"
    spool.mkdir()
    drop(spool, "evt", gate_event("Q7"), "evt_q", age=5)
    before = stored_gate(env)
    with file_lock(spool / ".drain.lock", owner="run_id=the-server"):
        busy = runner.invoke(app, ["ingest-webhook", "--spool", str(spool), "--wait", "0.2"])
        busy_json = runner.invoke(app, ["--json", "ingest-webhook", "--spool", str(spool),
                                        "--wait", "0"])
    assert busy.exit_code == 5
    assert busy.stderr.strip().splitlines() == [
        f"error: the spool {spool} is being drained by another process (pid={os.getpid()} "
        "run_id=the-server; waited 0.2 s): nothing applied; run again once it is done"]
    assert busy_json.exit_code == 5
    assert json.loads(busy_json.stdout)["error"]["code"] == "spool_busy"
    assert stored_gate(env) == before
    assert sorted(p.name for p in spool.iterdir()) == [".drain.lock", "evt.headers",
                                                       "evt.json"]
    after = runner.invoke(app, ["ingest-webhook", "--spool", str(spool)])  # lock released
    assert after.exit_code == 0, after.stderr
    assert stored_gate(env) == "Q7"


def test_wait_without_spool_is_a_usage_error(env: Path) -> None:
    """--wait only means something for --spool."""
    assert runner.invoke(app, ["ingest-webhook", "-", "--wait", "1"], input="{}").exit_code == 2


def test_two_drainers_at_once_apply_each_event_once_and_in_order(
        env: Path, tmp_path: Path) -> None:
    """Two `ingest-webhook --spool` processes started together on one spool (a cron job and
    an operator; the server's drainer takes the same lock): every event is applied exactly
    once, by one of them, oldest first, and the flight's gate history is the events' order."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    spool = tmp_path / "spool"
    spool.mkdir()
    gates = [f"T{n:02d}" for n in range(1, 13)]
    for n, gate in enumerate(gates):
        drop(spool, f"evt{n:02d}", gate_event(gate), f"evt_t{n:02d}", age=60 - n)
    command = [sys.executable, "-m", "flightsync", "--json", "ingest-webhook", "--spool",
               str(spool), "--wait", "60"]
    drainers = [subprocess.Popen(command, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [d.communicate(timeout=120) for d in drainers]
    assert [d.returncode for d in drainers] == [0, 0], [err[-2000:] for _, err in outputs]
    files = [f for out, _ in outputs for f in json.loads(out)["files"]]
    assert sorted((f["file"], f["status"]) for f in files) == [
        (f"evt{n:02d}.json", "applied") for n in range(len(gates))]
    for out, _ in outputs:  # whoever drained, drained oldest first
        names = [f["file"] for f in json.loads(out)["files"]]
        assert names == sorted(names)
    assert stored_gate(env) == gates[-1]
    engine = sa.create_engine(f"sqlite:///{env}")
    try:
        with engine.connect() as conn:
            history = [json.loads(row[0]) for row in conn.execute(sa.text(
                "SELECT new FROM flight_change WHERE field = 'departure_gate' ORDER BY id"))]
    finally:
        engine.dispose()
    assert history[-len(gates):] == gates


def test_the_servers_drainer_leaves_a_spool_another_drainer_holds(env: Path,
                                                                  tmp_path: Path) -> None:
    """`flightsync serve`'s drain thread, while an `ingest-webhook --spool` run (here: the
    lock, held by this test) drains: it does not wait or apply anything ("another drainer
    has it"), and drains the spool once the lock is free."""
    from flightsync.config import load_settings  # noqa: PLC0415
    from flightsync.engine import open_engine  # noqa: PLC0415
    from flightsync.engine._lock import file_lock  # noqa: PLC0415
    from flightsync.server._intake import Intake  # noqa: PLC0415

    spool = tmp_path / "spool"
    spool.mkdir()
    drop(spool, "evt", gate_event("S5"), "evt_s", age=5)
    before = stored_gate(env)
    with open_engine(load_settings(None, dict(os.environ)), run_kind="webhook") as engine:
        intake = Intake(engine, spool, concurrent_writes=1, slot_wait_seconds=5)
        with file_lock(spool / ".drain.lock", owner="run_id=by-hand"):
            assert intake.drain_once() is True
            assert stored_gate(env) == before
            assert (spool / "evt.json").exists()
        assert intake.drain_once() is True
    assert stored_gate(env) == "S5"
    assert not (spool / "evt.json").exists()
