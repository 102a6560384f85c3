"""Outbound change notifications: a real sync against the sandbox notifies a loopback
subscriber (a tiny http.server here) with a Standard Webhooks signature this file checks on
its own; dead, hanging and flaky subscribers never fail the sync and are recorded."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
KEY = b"flightsync-notify-test-key-01234"
SECRET = "whsec_" + base64.b64encode(KEY).decode()



class Receiver:
    """A loopback subscriber answering each POST with the next of ``codes`` (then 204)."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = list(codes)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                          body))
                self.send_response(receiver.codes.pop(0) if receiver.codes else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/flights"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sandbox(state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with Sandbox(SandboxConfig(now=NOW)) as running:
        for name, value in sandbox_environment(running.base_url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("NOTIFY_SECRET", SECRET)
        yield


def configure(tmp_path: Path, url: str, timeout: float = 2) -> str:
    config = tmp_path / "flightsync.yaml"
    config.write_text(f"notify: [{{url: '{url}', secret_env: NOTIFY_SECRET, "
                      f"timeout_seconds: {timeout}}}]\n")
    return str(config)


def deliveries(state_dir: Path) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{state_dir / 'flightsync.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "SELECT message_id, url, status, attempts, last_status_code, last_error, "
                "flight_id, run_id, delivered_at FROM notification_delivery ORDER BY id")).all())
    finally:
        engine.dispose()


def sync(config: str, *extra: str) -> dict[str, Any]:
    result = runner.invoke(app, ["--config", config, "sync", "LH400", "--date", DAY, *extra])
    assert result.exit_code == 0, result.stderr
    return dict(json.loads(result.stdout))


def check_signature(headers: dict[str, str], body: bytes) -> bool:
    """The subscriber's side of Standard Webhooks, written from the convention."""
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    mac = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    fresh = abs(time.time() - int(stamp)) <= 300
    return fresh and any(hmac.compare_digest(expected, s)
                         for s in headers["webhook-signature"].split())


def test_a_change_is_posted_signed_and_recorded(sandbox: None, tmp_path: Path,
                                                state_dir: Path) -> None:
    """The first sync of a flight changes it: the subscriber receives one signed
    flight.changed POST with the changed fields' values, version and run id, and the
    delivery is recorded as delivered."""
    with Receiver([]) as receiver:
        result = sync(configure(tmp_path, receiver.url))
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert check_signature(headers, body)
    assert headers["content-type"] == "application/json"
    message = json.loads(body)
    flight = result["flight"]
    assert (message["type"], message["flight"], message["date"]) == (
        "flight.changed", "LH400", DAY)
    assert "departure_gate" in message["changed_fields"]
    assert message["legs"][0]["values"]["departure_gate"] == flight["departure_gate"]
    assert message["version"] == flight["version"]
    [row] = deliveries(state_dir)
    assert row.message_id == headers["webhook-id"]
    assert (row.url, row.status, row.attempts, row.last_status_code) == (
        receiver.url, "delivered", 1, 204)
    assert row.run_id == message["run_id"]
    assert row.flight_id is not None and row.delivered_at is not None


def test_an_unchanged_flight_and_no_notify_send_nothing(sandbox: None, tmp_path: Path,
                                                        state_dir: Path) -> None:
    """--no-notify sends nothing; a later sync that changes nothing sends nothing either."""
    with Receiver([]) as receiver:
        config = configure(tmp_path, receiver.url)
        sync(config, "--no-notify")
        sync(config, "--force")
    assert receiver.requests == []
    assert deliveries(state_dir) == []


def test_a_webhook_change_is_notified(sandbox: None, tmp_path: Path, state_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook that changes a flight notifies the subscribers with the changed field."""
    with Receiver([]) as receiver:
        config = configure(tmp_path, receiver.url)
        sync(config, "--no-notify")
        event = {"type": "flight.updated", "provider": "lufthansa", "flight": "LH400",
                 "date": DAY, "occurred_at": datetime.now(UTC).isoformat(), "id": "evt_n",
                 "changes": {"departure_gate": "N7"}}
        done = runner.invoke(app, ["--config", config, "ingest-webhook", "-", "--insecure"],
                             input=json.dumps(event))
        assert done.exit_code == 0, done.stderr
    [(headers, body)] = receiver.requests
    assert check_signature(headers, body)
    message = json.loads(body)
    assert message["changed_fields"] == ["departure_gate"]
    assert message["legs"][0]["values"] == {"departure_gate": "N7"}


def test_a_flaky_subscriber_is_retried(sandbox: None, tmp_path: Path, state_dir: Path) -> None:
    """A 503 is retried with the same message id (re-signed); the second attempt delivers."""
    with Receiver([503]) as receiver:
        sync(configure(tmp_path, receiver.url))
    assert len(receiver.requests) == 2
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert len(ids) == 1
    assert all(check_signature(h, b) for h, b in receiver.requests)
    [row] = deliveries(state_dir)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 204)


def test_a_refused_subscriber_is_not_retried(sandbox: None, tmp_path: Path,
                                             state_dir: Path) -> None:
    """A 4xx (other than 429) is final: one attempt, recorded as failed with the status."""
    with Receiver([410]) as receiver:
        sync(configure(tmp_path, receiver.url))
    assert len(receiver.requests) == 1
    [row] = deliveries(state_dir)
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 410)


def test_a_dead_subscriber_does_not_fail_the_sync(sandbox: None, tmp_path: Path,
                                                  state_dir: Path) -> None:
    """Connection refused: the sync still exits 0 with its result; the delivery is retried
    and recorded as failed with the error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = sync(configure(tmp_path, f"http://127.0.0.1:{port}/hook"))
    assert result["success"] is True
    [row] = deliveries(state_dir)
    assert (row.status, row.attempts) == ("failed", 3)
    assert "ConnectError" in row.last_error
    # The error names the subscriber by host and port: two on one host are told apart.
    assert f"http://127.0.0.1:{port}/hook" in row.last_error


def test_a_hanging_subscriber_times_out_and_is_recorded(sandbox: None, tmp_path: Path,
                                                        state_dir: Path) -> None:
    """A subscriber that accepts the connection and never answers: each attempt times out,
    the sync succeeds, and the delivery is recorded as failed with the timeout."""
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        port = hanging.getsockname()[1]
        result = sync(configure(tmp_path, f"http://127.0.0.1:{port}/hook", timeout=0.2))
    assert result["success"] is True
    [row] = deliveries(state_dir)
    assert row.status == "failed"
    assert row.attempts >= 1
    assert "no answer within" in row.last_error


def test_a_missing_subscriber_secret_is_recorded_not_sent(
        sandbox: None, tmp_path: Path, state_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """secret_env names an unset variable: nothing is sent unsigned, the sync succeeds, and
    the delivery is recorded as failed naming the variable."""
    monkeypatch.delenv("NOTIFY_SECRET")
    with Receiver([]) as receiver:
        sync(configure(tmp_path, receiver.url))
    assert receiver.requests == []
    [row] = deliveries(state_dir)
    assert row.status == "failed"
    assert "NOTIFY_SECRET" in row.last_error


def test_a_subscriber_is_shown_without_credentials_or_query() -> None:
    """Logs and delivery errors name a subscriber by scheme, host, port and path: never the
    user and password or the query string a hook URL may carry a token in."""
    from flightsync.engine._notify import _Target  # noqa: PLC0415

    target = _Target(url="https://user:s3cr3t@hooks.example:8443/in?token=abc", timeout=1.0,
                     key=None, problem=None)
    assert target.shown == "https://hooks.example:8443/in"
