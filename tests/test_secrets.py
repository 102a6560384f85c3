"""Secrets at rest and in motion (issue 8), for the default SQLite setup where the database
lives in the state directory: with every secret configured (provider credentials, the inbound
webhook secret, a subscriber's notify secret), runs that fail on credentials, apply and refuse
webhooks and notify a subscriber leave no secret (nor an issued access token) in their output,
their debug logs, the database or any state file outside the token store, and leave no state
file or folder readable by other users. (tests/test_secrets_in_logs.py covers PostgreSQL.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import stat
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import diskcache
import pytest

from tests._e2e import (
    SECRET_VAR,
    Outcome,
    SandboxProcess,
    invoke,
    sandbox_process,
    sqlite_file,
    write_config,
)

DAY = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
REFUSED = {"AMADEUS_CLIENT_ID": "amadeus-id-5be1c0", "LUFTHANSA_CLIENT_ID": "lh-id-0d93aa",
           **{var: f"{provider}-secret-{index}c7f2e9"
              for index, (provider, var) in enumerate(SECRET_VAR.items())}}
WEBHOOK_KEY = b"inbound-webhook-key-4d1f7b"
NOTIFY_KEY = b"notify-subscriber-key-9a3e05"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()
NOTIFY_SECRET = "whsec_" + base64.b64encode(NOTIFY_KEY).decode()
SECRETS = {*REFUSED.values(), WEBHOOK_SECRET, NOTIFY_SECRET, WEBHOOK_SECRET[6:],
           NOTIFY_SECRET[6:], WEBHOOK_KEY.decode(), NOTIFY_KEY.decode()}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    with sandbox_process(tmp_path) as server:
        yield server


def _signed(body: bytes, event_id: str, key: bytes) -> list[str]:
    now = str(int(time.time()))
    mac = hmac.new(key, f"{event_id}.{now}.".encode() + body, hashlib.sha256).digest()
    return ["--header", f"webhook-id: {event_id}", "--header", f"webhook-timestamp: {now}",
            "--header", f"webhook-signature: v1,{base64.b64encode(mac).decode()}"]


def _tokens(state_dir: Path) -> set[str]:
    """Access tokens the providers issued, as kept in the token store."""
    found: set[str] = set()
    folder = state_dir / "tokens"
    if not folder.exists():
        return found
    with diskcache.Cache(str(folder)) as cache:
        for key in cache.iterkeys():
            found.update(_strings(cache.get(key)))
    return {token for token in found if len(token) >= 16}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif hasattr(value, "__dict__"):
        yield from _strings(vars(value))


def test_no_secret_at_rest_and_private_state_files(
        tmp_path: Path, sandbox: SandboxProcess, state_dir: Path) -> None:
    """Every secret configured, runs failing and succeeding: no secret or token in output,
    logs, the SQLite database or other state files; no state file or folder is accessible to
    group or others."""
    config = write_config(tmp_path / "flightsync.yaml",
                          notify=[{"url": f"{sandbox.base_url}/subscriber",
                                   "secret_env": "NOTIFY_SECRET"}],
                          retry={"attempts": 1})
    good = {**sandbox.environment(), "FLIGHTSYNC_CONFIG": str(config),
            "FLIGHTSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET, "NOTIFY_SECRET": NOTIFY_SECRET}
    refused = {**good, **REFUSED}
    event = json.dumps({"type": "flight.updated", "provider": "lufthansa", "flight": "LH400",
                        "date": DAY, "occurred_at": datetime.now(UTC).isoformat(),
                        "changes": {"departure_gate": "Q7"}}).encode()
    (tmp_path / "event.json").write_bytes(event)
    outcomes: list[Outcome] = [
        invoke(["-vv", "sync", "LH400", "--date", DAY], good),
        invoke(["-vv", "ingest-webhook", str(tmp_path / "event.json"),
                *_signed(event, "evt-good-1", WEBHOOK_KEY)], good),
        invoke(["-vv", "ingest-webhook", str(tmp_path / "event.json"),
                *_signed(event, "evt-forged-1", NOTIFY_KEY)], good),
        invoke(["-vv", "providers"], good),
    ]
    tokens = _tokens(state_dir)
    assert tokens, "no access token was issued"
    outcomes += [invoke(["-vv", "breaker", "reset"], refused),
                 invoke(["-vv", "sync", "LH401", "--date", DAY, "--force"], refused),
                 invoke(["-vv", "status"], refused)]
    # The refused sync is exit 2: every provider refused the credentials (README, exit codes).
    assert [o.exit_code for o in outcomes] == [0, 0, 2, 0, 0, 2, 0], [
        (o.exit_code, o.stderr[-300:]) for o in outcomes]
    assert any(o.events() for o in outcomes), "the runs logged nothing to check"

    for outcome in outcomes:
        text = outcome.stdout + outcome.stderr
        leaked = [s for s in SECRETS | tokens if s in text]
        assert not leaked, (leaked, text[-2000:])

    db = sqlite_file(state_dir)
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
        # Raw answers are stored compressed (README, "Retention"): read them as text too.
        dump += "\n".join(zlib.decompress(raw).decode() for (raw,) in conn.execute(
            "SELECT raw_zlib FROM source_observation WHERE raw_zlib IS NOT NULL"))
    conn.close()
    assert "LH400" in dump  # the dump is of the database the runs wrote
    assert not [s for s in SECRETS | tokens if s in dump]
    for path in state_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path.relative_to(state_dir)} has mode {oct(mode)}"
        if path.is_file() and "tokens" not in path.relative_to(state_dir).parts:
            data = path.read_bytes()
            assert not [s for s in SECRETS | tokens if s.encode() in data], path
