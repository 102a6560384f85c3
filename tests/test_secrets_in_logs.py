"""No secret leaves the process in output or logs: with every secret configured (provider
credentials, the inbound webhook secret, an outbound subscriber's secret, the database
password), `sync`, `batch`, `batch --due`, `status` and `providers` run through the real CLI
at debug level, failing and succeeding, and none of those values (nor the access tokens the
providers issued) appears on stdout, stderr or in the state directory outside the token
store. Every JSON log line carries the run's run_id."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import diskcache
import pytest

from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from flightsync.store import migrate

FLIGHTSYNC = Path(sys.executable).parent / "flightsync"
DAY = datetime.now(UTC).date() + timedelta(days=1)
DB_PASSWORD = "dbPass-4c21e9"
PROVIDER_SECRETS = {
    "AMADEUS_CLIENT_ID": "amaId-0c5e71", "AMADEUS_CLIENT_SECRET": "amaSecret-7f3a9c",
    "LUFTHANSA_CLIENT_ID": "lhId-88d2f0", "LUFTHANSA_CLIENT_SECRET": "lhSecret-51be0d",
    "AFKLM_API_KEY": "afklmKey-93c1e2", "BA_CLIENT_KEY": "baKey-2d8e44f",
    "FLIGHTAWARE_API_KEY": "faKey-6a0b7d1",
    "CIRIUM_APP_ID": "ciriumId-3e9d02", "CIRIUM_APP_KEY": "ciriumKey-b71f5a",
    "AVIATIONSTACK_ACCESS_KEY": "avsKey-3f9e02c",
}
WEBHOOK_KEY = "webhook-key-0123456789"
NOTIFY_KEY = "notify-key-abcdef"
OTHER_SECRETS = {
    "FLIGHTSYNC_WEBHOOK_SECRET": "whsec_" + base64.b64encode(WEBHOOK_KEY.encode()).decode(),
    "NOTIFY_SECRET": "whsec_" + base64.b64encode(NOTIFY_KEY.encode()).decode(),
}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as running:
        yield running


def run(env: dict[str, str], *args: str) -> tuple[str, str]:
    done = subprocess.run([str(FLIGHTSYNC), "-vv", *args], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    # 2: the sandbox refuses these credentials, and a run failing only on that is exit 2.
    assert done.returncode in (0, 1, 2, 3), (
        f"{args}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return done.stdout, done.stderr


def json_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode(errors="replace")
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif hasattr(value, "__dict__") or hasattr(value, "__slots__"):
        for name in getattr(value, "__slots__", ()) or vars(value):
            yield from strings_in(getattr(value, name, None))


def issued_tokens(state: Path) -> set[str]:
    """The access tokens the providers issued, as kept in the token store."""
    tokens: set[str] = set()
    with diskcache.Cache(str(state / "tokens")) as cache:
        for key in cache.iterkeys():
            tokens.update(s for s in strings_in(cache.get(key)) if len(s) >= 16)
    return tokens


def state_files_text(state: Path) -> str:
    return "\n".join(p.read_bytes().decode(errors="replace") for p in state.rglob("*")
                     if p.is_file() and "tokens" not in p.relative_to(state).parts)


def test_no_secret_appears_in_output_logs_or_state(
        pg_url: str, sandbox: Sandbox, tmp_path: Path, state_dir: Path) -> None:
    """Runs with refused credentials (errors everywhere) and with accepted ones (tokens
    issued) never show a configured secret, the webhook keys, the database password or an
    issued token; each JSON log line names the run_id of its run."""
    database_url = pg_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")
    migrate.upgrade(database_url)
    config = tmp_path / "flightsync.yaml"
    config.write_text("notify: [{url: 'http://127.0.0.1:9/hook', secret_env: NOTIFY_SECRET}]\n"
                      "retry: {attempts: 1}\n", encoding="utf-8")
    batch = tmp_path / "flights.csv"
    batch.write_text(f"flight,date\nLH400,{DAY}\nKL1001,{DAY}\nBA117,{DAY}\n", encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLIGHTSYNC_")}
    base.update(sandbox_environment(sandbox.base_url))
    base.update(OTHER_SECRETS, FLIGHTSYNC_DATABASE_URL=database_url,
                FLIGHTSYNC_STATE_DIR=str(state_dir), FLIGHTSYNC_CONFIG=str(config))
    refused = {**base, **PROVIDER_SECRETS}
    outputs = [run(refused, "batch", str(batch)), run(refused, "status")]
    # The refused credentials opened the breakers: a fresh host state lets the good run call
    # out; then one flight is made due for the cron job.
    base["FLIGHTSYNC_STATE_DIR"] = str(state_dir / "host2")
    outputs += [run(base, "sync", "LH400", "--date", DAY.isoformat()),
                run(base, "batch", str(batch)), run(base, "status", "--check")]
    tokens = issued_tokens(state_dir / "host2")
    assert tokens, "no provider issued a token"

    secrets = {*PROVIDER_SECRETS.values(), *OTHER_SECRETS.values(), WEBHOOK_KEY, NOTIFY_KEY,
               DB_PASSWORD, *(v.removeprefix("whsec_") for v in OTHER_SECRETS.values())}
    for stdout, stderr in outputs:
        for secret in secrets | tokens:
            assert secret not in stdout and secret not in stderr
        run_ids = {line.get("run_id") for line in json_lines(stderr)}
        assert len(run_ids) <= 1 and None not in run_ids
    logged = [err for _, err in outputs if json_lines(err)]
    assert len(logged) >= 3  # the syncing runs log at -vv
    assert len({line["run_id"] for err in logged for line in json_lines(err)}) == len(logged)
    stored = state_files_text(state_dir)
    for secret in secrets | tokens:
        assert secret not in stored
