"""End to end: `alerts register` against the sandbox points AeroAPI at the running server;
the sandbox's scenario moves the gate and delays the flight; its deliver_alert reaches
`flightsync serve`, the stored flight changes, the subscribers are notified, and `changes`
shows it."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from flightsync.sandbox import SandboxConfig
from tests._sandbox_cli import SandboxCli, only_providers, sandbox_cli
from tests._server import running

TOKEN = "tok_e2e_secret_0123456789"
NOTIFY_KEY = b"flightsync-e2e-notify-key-012345"
SOON = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()


class Subscriber:
    """A loopback notification subscriber recording each POST body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber()
    try:
        yield sub
    finally:
        sub.close()


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    env = {**only_providers("flightaware"), "FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN": TOKEN,
           "NOTIFY_SECRET": "whsec_" + base64.b64encode(NOTIFY_KEY).decode()}
    with sandbox_cli(state_dir, SandboxConfig(), extra_env=env) as running_cli:
        yield running_cli


def test_alert_delivery_changes_the_flight_and_notifies(
        cli: SandboxCli, subscriber: Subscriber, tmp_path: Path) -> None:
    """register -> scenario change -> delivery -> stored change -> notification."""
    assert cli.sync("LH400", SOON).exit_code == 0
    before = cli.rows("SELECT departure_gate, estimated_departure FROM flight "
                      "WHERE carrier = 'LH' AND flight_number = 400")[0]
    config = tmp_path / "server.yaml"
    settings: dict[str, Any] = {"notify": [{"url": subscriber.url,
                                            "secret_env": "NOTIFY_SECRET"}]}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = {**cli.env, "FLIGHTSYNC_CONFIG": str(config), "FLIGHTSYNC_RAISE_ERRORS": "0"}
    with running(env, tmp_path / "server.log") as server:
        config.write_text(yaml.safe_dump({**settings, "flightaware_alerts": {
            "public_url": server.url, "events": ["arrival", "departure", "cancelled"]}}),
            encoding="utf-8")
        registered = cli.run("alerts", "register", "--json", config=config)
        assert registered.exit_code == 0, registered.stderr
        assert [a["flight"] for a in registered.data["created"]] == ["LH400"]
        cli.sandbox.set_scenario({"overrides": [{"flight": "LH400", "fields": {
            "departure_gate": "Z99", "delay_minutes": 45}}]})
        assert cli.sandbox.deliverer.wait_idle(30)
        assert [(d["event_code"], d["status"], d["status_code"])
                for d in cli.sandbox.deliveries()] == [("change", "delivered", 200)]
        deadline = time.monotonic() + 20
        while not subscriber.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "Traceback" not in server.stderr()
    after = cli.rows("SELECT departure_gate, estimated_departure FROM flight "
                     "WHERE carrier = 'LH' AND flight_number = 400")[0]
    assert after["departure_gate"] == "Z99" != before["departure_gate"]
    assert after["estimated_departure"] != before["estimated_departure"]
    changed = cli.rows("SELECT field, source FROM flight_change WHERE run_id IS NOT NULL "
                       "AND source = 'flightaware' AND field = 'departure_gate'")
    assert changed, "the gate change is in the audit trail"
    assert subscriber.bodies, "the subscriber was notified"
    note = subscriber.bodies[0]
    assert "departure_gate" in json.dumps(note)
    feed = cli.run("changes", "--flight", "LH400", "--date", SOON)
    assert feed.exit_code == 0, feed.stderr
    lines = [json.loads(line) for line in feed.stdout.splitlines()]
    gate = [c for c in lines if c["field"] == "departure_gate"]
    assert gate[-1]["new"] == "Z99" and gate[-1]["source"] == "flightaware"
