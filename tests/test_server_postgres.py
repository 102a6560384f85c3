"""`flightsync serve` on PostgreSQL when the database goes away: the server reaches it
through a TCP relay this test controls (the shared PostgreSQL is never stopped). With the
relay down, a burst of events is spooled and answered 202; with it back, they are applied
in the order they came."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from benchmarks._loadgen import SECRET, event_body, signed
from flightsync.store import migrate
from tests._server import running, wait_drained

pytestmark = pytest.mark.postgres
DAY = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


class Relay:
    """A TCP relay 127.0.0.1:port -> PostgreSQL that can be cut (every connection closed,
    new ones refused) and restored on the same port."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):  # shutdown wakes the blocked accept() (Linux)
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", 5432), timeout=10)
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_postgres_away_during_a_burst(pg_url: str, tmp_path: Path) -> None:
    migrate.upgrade(pg_url)
    relay = Relay()
    relay.up()
    relayed = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    config = tmp_path / "flightsync.yaml"
    config.write_text("server:\n  lock_wait_seconds: 1\n", encoding="utf-8")
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"), "FLIGHTSYNC_CONFIG": str(config),
           "FLIGHTSYNC_WEBHOOK_SECRET": SECRET, "FLIGHTSYNC_DATABASE_URL": relayed,
           "FLIGHTSYNC_RAISE_ERRORS": "0"}
    try:
        with running(env, tmp_path / "server.log") as server:
            def send(n: int, gate: str) -> httpx.Response:
                body = event_body(7100, gate, day=DAY)
                return httpx.post(f"{server.url}/webhooks/flightsync", content=body,
                                  headers=signed(body, f"pg-{n}"), timeout=30)

            assert send(0, "P00").status_code == 200
            relay.down()
            answers = [send(n, f"P{n:02d}") for n in range(1, 11)]
            assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
            time.sleep(0.5)
            relay.up()
            wait_drained(server)
            assert '"level": "error"' not in server.stderr()
    finally:
        relay.down()
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            gates = [r[0] for r in conn.execute(sa.text(
                "SELECT new FROM flight_change WHERE field = 'departure_gate' ORDER BY id"))]
            ids = conn.execute(sa.text("SELECT count(*) FROM webhook_event")).scalar()
    finally:
        engine.dispose()
    assert gates == [json.dumps(f"P{n:02d}") for n in range(11)]
    assert ids == 11
