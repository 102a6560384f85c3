"""One bad spool file never blocks the spool (issue 19, item 3), on SQLite and PostgreSQL.

A NUL byte in a header value used to make PostgreSQL refuse the id lookup: every run ended
with exit 70 and the good files behind it were never applied. Now each bad file (NUL in the
id or in a value, an extreme time, a body or headers file over the limit, an unreadable
headers file) goes to failed/ with its reason, the good ones are applied, and the next run
finds an empty spool.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flightsync.store import migrate
from tests._e2e import invoke, migrated_template, seed_database

KEY = b"spool-bad-files-test-key-0123456789"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


def _body(gate: str, **overrides: Any) -> bytes:
    event = {"type": "flight.updated", "provider": "flightaware", "flight": "UA900",
             "date": "2026-03-02", "occurred_at": "2026-03-01T10:00:00Z", "origin": "JFK",
             "changes": {"departure_gate": gate}}
    event.update(overrides)
    return json.dumps(event).encode()


def _drop(spool: Path, name: str, body: bytes, msg_id: str, age: int,
          headers: bytes | None = None) -> None:
    stamp = int(time.time()) - age
    mac = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    (spool / f"{name}.headers").write_bytes(headers if headers is not None else (
        f"webhook-id: {msg_id}\nwebhook-timestamp: {stamp}\n"
        f"webhook-signature: v1,{base64.b64encode(mac).decode()}\n").encode())
    (spool / f"{name}.json").write_bytes(body)
    os.utime(spool / f"{name}.json", (stamp, stamp))


BAD = {  # file -> what its .reason must say
    "a-nul-id": "webhook-id holds control characters",
    "b-nul-value": "changes.departure_gate",
    "c-extreme-time": "outside the times flightsync accepts",
    "d-huge-body": "payload exceeds the limit of 65536 bytes",
    "e-huge-headers": "e-huge-headers.headers: larger than 16 KiB",
    "f-not-utf8-headers": "cannot be read",
}


def _fill(spool: Path) -> None:
    spool.mkdir()
    _drop(spool, "a-nul-id", _body("A1"), "evt_a", 90,
          headers=b"webhook-id: evt\x00a\nwebhook-timestamp: 1\nwebhook-signature: v1,x\n")
    _drop(spool, "b-nul-value", _body("B\u00001"), "evt_b", 80)
    _drop(spool, "c-extreme-time", _body("C1", occurred_at="0001-01-01T00:00:00+14:00"),
          "evt_c", 70)
    _drop(spool, "d-huge-body", _body("D1", padding="x" * 70_000), "evt_d", 60)
    _drop(spool, "e-huge-headers", _body("E1"), "evt_e", 50,
          headers=b"webhook-id: evt_e\nx-padding: " + b"x" * 20_000 + b"\n")
    _drop(spool, "f-not-utf8-headers", _body("F1"), "evt_f", 40,
          headers=b"webhook-id: evt_\xff\n")
    _drop(spool, "y-good", _body("Y1"), "evt_y", 20)
    _drop(spool, "z-good", _body("Z2", occurred_at="2026-03-01T10:05:00Z"), "evt_z", 10)


def _check_drained(spool: Path, url: str, env: dict[str, str]) -> None:
    args = ["-q", "ingest-webhook", "--spool", str(spool), "--no-notify"]
    first = invoke(args, env)
    first.assert_clean()
    assert first.exit_code == 1, first.stderr
    statuses = {f["file"]: f["status"] for f in first.json["files"]}
    assert statuses == {**{f"{name}.json": "rejected" for name in BAD},
                        "y-good.json": "applied", "z-good.json": "applied"}
    for name, reason in BAD.items():
        assert reason in (spool / "failed" / f"{name}.reason").read_text(), name
    assert sorted(p.name for p in (spool / "done").iterdir()) == [
        "y-good.headers", "y-good.json", "z-good.headers", "z-good.json"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.text("SELECT event_id FROM webhook_event")
                                       ).scalars()) == ["evt_y", "evt_z"]
            assert conn.execute(sa.text("SELECT departure_gate FROM flight")).scalar_one() \
                == "Z2"
    finally:
        engine.dispose()
    second = invoke(args, env)
    assert second.exit_code == 0, second.stderr
    assert second.json["summary"]["files"] == 0


def test_bad_files_never_block_the_spool_on_sqlite(tmp_path: Path, state_dir: Path) -> None:
    """SQLite: every bad file goes to failed/ with its reason, the good ones behind them are
    applied, exit 1; the next run has nothing left to do (exit 0)."""
    db = seed_database(migrated_template(tmp_path / "template"), state_dir)
    _fill(tmp_path / "spool")
    _check_drained(tmp_path / "spool", f"sqlite:///{db}",
                   {"FLIGHTSYNC_WEBHOOK_SECRET": SECRET})


@pytest.mark.postgres
def test_bad_files_never_block_the_spool_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL, where a NUL in the webhook-id used to end every run with exit 70: the
    same files give the same outcome."""
    migrate.upgrade(pg_url)
    _fill(tmp_path / "spool")
    _check_drained(tmp_path / "spool", pg_url,
                   {"FLIGHTSYNC_WEBHOOK_SECRET": SECRET, "FLIGHTSYNC_DATABASE_URL": pg_url})


def test_without_a_secret_the_spool_is_left_alone(tmp_path: Path, state_dir: Path) -> None:
    """No FLIGHTSYNC_WEBHOOK_SECRET: the run is refused (exit 2, one error line) and every
    file stays in the spool, instead of all of them being filed under failed/."""
    seed_database(migrated_template(tmp_path / "template"), state_dir)
    spool = tmp_path / "spool"
    spool.mkdir()
    _drop(spool, "y-good", _body("Y1"), "evt_y", 20)
    refused = invoke(["-q", "ingest-webhook", "--spool", str(spool)], {})
    assert refused.exit_code == 2
    assert refused.error_lines() == [refused.stderr.strip()]
    assert "no webhook secret configured" in refused.stderr
    assert sorted(p.name for p in spool.iterdir()) == ["y-good.headers", "y-good.json"]
