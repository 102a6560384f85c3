"""`flightsync serve` over real HTTP: the server runs as a subprocess on a free port and an
httpx client (or a raw socket, for a slow client) talks to it. Each refusal is checked for
its status and its JSON error; each acceptance against the database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests._server import Server, running

KEY = b"flightsync-server-test-key-01234"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER_KEY = b"flightsync-other-secret-key-5678"
TOKEN = "fa-token-0123456789abcdef"
DAY = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    config = folder / "flightsync.yaml"
    config.write_text("server:\n  max_body_bytes: 4096\n  request_timeout_seconds: 1\n",
                      encoding="utf-8")
    env = {"FLIGHTSYNC_STATE_DIR": str(folder / "state"), "FLIGHTSYNC_CONFIG": str(config),
           "FLIGHTSYNC_WEBHOOK_SECRET": SECRET, "FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN": TOKEN}
    with running(env, folder / "server.log") as started:
        yield started
    assert "Traceback" not in started.stderr()
    assert '"level": "error"' not in started.stderr()


def db(server: Server) -> Path:
    return Path(server.log.parent / "state" / "flightsync.db")


def rows(path: Path, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())
    finally:
        engine.dispose()


def event(number: int, gate: str = "A1", **overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "type": "flight.updated", "provider": "lufthansa", "flight": f"LH{number}",
        "date": DAY, "origin": "FRA", "occurred_at": datetime.now(UTC).isoformat(),
        "changes": {"departure_gate": gate, "destination": "JFK"}}
    body.update(overrides)
    return json.dumps(body).encode()


def sign(key: bytes, msg_id: str, stamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(body: bytes, msg_id: str, *, key: bytes = KEY, stamp: int | None = None,
            extra: tuple[str, ...] = ()) -> dict[str, str]:
    when = int(time.time()) if stamp is None else stamp
    return {"content-type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": str(when),
            "webhook-signature": " ".join((*extra, sign(key, msg_id, when, body)))}


def post(server: Server, body: bytes, hdrs: dict[str, str],
         path: str = "/webhooks/flightsync") -> httpx.Response:
    return httpx.post(server.url + path, content=body, headers=hdrs, timeout=10)


def delivery(number: int, gate: str, *, code: str = "change") -> bytes:
    """An AeroAPI deliver_alert body: airports as plain (ICAO) code strings, no status."""
    out = datetime.fromisoformat(f"{DAY}T08:00:00+00:00")
    flight = {
        "ident": f"DLH{number}", "ident_icao": f"DLH{number}", "ident_iata": f"LH{number}",
        "fa_flight_id": f"DLH{number}-1-schedule-0000", "operator": "DLH",
        "operator_icao": "DLH", "operator_iata": "LH", "flight_number": str(number),
        "registration": "D-AIXA", "cancelled": False, "diverted": False,
        "origin": "EDDF", "destination": "KJFK",
        "scheduled_out": out.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "estimated_out": (out + timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scheduled_in": (out + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gate_origin": gate, "terminal_origin": "1"}
    return json.dumps({"long_description": f"LH{number} departure gate is now {gate}.",
                       "short_description": f"DLH{number} changed", "summary": "change",
                       "event_code": code, "alert_id": 424242, "flight": flight}).encode()


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"error"}
    error: dict[str, Any] = data["error"]
    assert error["message"] and "Traceback" not in error["message"]
    return error


def test_flightsync_event_applied_then_replayed(server: Server) -> None:
    """A signed event is applied (200, the changed fields) and stored once; the same event
    again is a duplicate (200) and changes nothing."""
    body = event(1001, "B12")
    first = post(server, body, headers(body, "evt-applied-1"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "applied"
    assert "departure_gate" in first.json()["changed_fields"]
    again = post(server, body, headers(body, "evt-applied-1"))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert rows(db(server), "SELECT count(*) FROM webhook_event WHERE event_id = 'evt-applied-1'"
                ) == [(1,)]
    assert rows(db(server), "SELECT departure_gate FROM flight WHERE flight_number = 1001"
                ) == [("B12",)]


def test_forged_signature_refused(server: Server) -> None:
    """Signed with another key: 401 invalid_signature, nothing stored."""
    body = event(1002)
    response = post(server, body, headers(body, "evt-forged", key=OTHER_KEY))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_signature"
    assert rows(db(server), "SELECT count(*) FROM flight WHERE flight_number = 1002") == [(0,)]


def test_expired_signature_refused(server: Server) -> None:
    """A timestamp an hour old (tolerance 5 minutes): 401."""
    body = event(1003)
    response = post(server, body, headers(body, "evt-expired", stamp=int(time.time()) - 3600))
    assert response.status_code == 401
    assert "timestamp" in error_of(response)["message"]


def test_rotated_signatures_accepted(server: Server) -> None:
    """During a key rotation the sender signs with both keys: one valid signature among
    several is enough."""
    body = event(1004)
    stale = sign(OTHER_KEY, "evt-rotated", int(time.time()), body)
    response = post(server, body, headers(body, "evt-rotated", extra=(stale,)))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"


def test_reused_id_with_another_body_is_a_conflict(server: Server) -> None:
    """An applied id sent again with another body: 409, the first body stays applied."""
    body = event(1005, "C1")
    assert post(server, body, headers(body, "evt-reused")).status_code == 200
    other = event(1005, "C2")
    response = post(server, other, headers(other, "evt-reused"))
    assert response.status_code == 409
    assert error_of(response)["code"] == "webhook_id_reused"
    assert rows(db(server), "SELECT departure_gate FROM flight WHERE flight_number = 1005"
                ) == [("C1",)]


def test_malformed_body_refused(server: Server) -> None:
    """Not JSON: 400 invalid_payload naming the problem; an unknown key likewise."""
    body = b'{"type": "flight.updated", '
    response = post(server, body, headers(body, "evt-malformed"))
    assert response.status_code == 400
    assert "malformed JSON" in error_of(response)["message"]
    unknown = event(1006, colour="red")
    response = post(server, unknown, headers(unknown, "evt-unknown-key"))
    assert response.status_code == 400
    assert "colour" in error_of(response)["message"]


def test_wrong_content_type_refused(server: Server) -> None:
    body = event(1007)
    response = post(server, body, {**headers(body, "evt-text"), "content-type": "text/plain"})
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_oversized_body_refused(server: Server) -> None:
    """Past server.max_body_bytes (4096 here): 413, by Content-Length or while streaming."""
    big = event(1008, notes="x" * 5000)
    response = post(server, big, headers(big, "evt-big"))
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = httpx.post(server.url + "/webhooks/flightsync", content=chunks(),
                          headers={"content-type": "application/json"}, timeout=10)
    assert streamed.status_code == 413


def test_slow_client_gets_408(server: Server) -> None:
    """A body that stops arriving: 408 after server.request_timeout_seconds (1 s here)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/flightsync HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\"")
        answer = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            assert time.monotonic() < deadline
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_flightaware_delivery_creates_the_flight_then_replays(server: Server) -> None:
    """A delivery for a flight not stored creates it from the route it names (ICAO codes
    read as IATA), tracked; the same delivery again is a duplicate."""
    body = delivery(1010, "B44")
    path = f"/webhooks/flightaware/{TOKEN}"
    first = post(server, body, {"content-type": "application/json; charset=UTF-8"}, path)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "applied"
    again = post(server, body, {"content-type": "application/json"}, path)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    found = rows(db(server), "SELECT origin, destination, departure_gate, tracked, status "
                 "FROM flight WHERE carrier = 'LH' AND flight_number = 1010")
    assert found == [("FRA", "JFK", "B44", 1, "delayed")]
    assert rows(db(server), "SELECT source FROM source_observation o JOIN flight f "
                "ON f.id = o.flight_id WHERE f.flight_number = 1010") == [("flightaware",)]


def test_flightaware_wrong_token_refused(server: Server) -> None:
    body = delivery(1011, "B45")
    response = post(server, body, {"content-type": "application/json"},
                    "/webhooks/flightaware/not-the-token")
    assert response.status_code == 403
    assert error_of(response)["code"] == "wrong_token"
    assert rows(db(server), "SELECT count(*) FROM flight WHERE flight_number = 1011") == [(0,)]


def test_flightaware_malformed_delivery_refused(server: Server) -> None:
    response = post(server, b'{"event_code": "change"}', {"content-type": "application/json"},
                    f"/webhooks/flightaware/{TOKEN}")
    assert response.status_code == 400
    assert "flight" in error_of(response)["message"]


def test_unknown_path_and_method(server: Server) -> None:
    assert error_of(httpx.get(server.url + "/nope", timeout=5))["code"] == "not_found"
    response = httpx.get(server.url + "/webhooks/flightsync", timeout=5)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_healthz_and_metrics(server: Server) -> None:
    """/healthz: 200 on a healthy install, with the alert list `status --check` uses;
    /metrics: the Prometheus text of the textfile's metrics."""
    health = httpx.get(server.url + "/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json()["alerts"] == []
    metrics = httpx.get(server.url + "/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "flightsync_syncs_total" in metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")


def test_healthz_503_names_the_alerts_status_check_names(tmp_path: Path) -> None:
    """With an alert condition holding, /healthz is 503 with the very alert lines
    `status --check` prints (and exits 3 on)."""
    config = tmp_path / "alerting.yaml"
    config.write_text("alerts:\n  open_conflicts_max: -1\n", encoding="utf-8")
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"), "FLIGHTSYNC_CONFIG": str(config)}
    with running(env, tmp_path / "server.log") as alerting:
        health = httpx.get(alerting.url + "/healthz", timeout=10)
        check = subprocess.run([sys.executable, "-m", "flightsync", "status", "--check"],
                               env={**os.environ, **env}, capture_output=True, timeout=60,
                               check=False)
    assert health.status_code == 503
    assert health.json()["status"] == "alert"
    assert check.returncode == 3
    printed = [line.removeprefix("alert: ") for line in check.stderr.decode().splitlines()
               if line.startswith("alert: ")]
    assert health.json()["alerts"] == printed != []


def test_slow_clients_do_not_starve_good_ones(server: Server) -> None:
    """Ten connections that send half a body and stall: a good request meanwhile is still
    answered at once, and each stalled one gets its 408."""
    host, port = server.url.removeprefix("http://").split(":")
    slow = []
    for _ in range(10):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"POST /webhooks/flightsync HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        slow.append(sock)
    try:
        body = event(1020, "S1")
        good = post(server, body, headers(body, "evt-amid-slow"))
        assert good.status_code == 200
        for sock in slow:
            assert sock.recv(4096).startswith(b"HTTP/1.1 408")
    finally:
        for sock in slow:
            sock.close()


def test_oversized_headers_refused_by_the_http_layer(server: Server) -> None:
    """A header block past 16 KiB is refused (431, JSON) and nothing is applied; the server
    goes on serving."""
    body = event(1030)
    response = post(server, body, {**headers(body, "evt-huge-header"), "x-pad": "a" * 20_000})
    assert response.status_code == 431
    assert error_of(response)["code"] == "headers_too_large"
    assert rows(db(server), "SELECT count(*) FROM flight WHERE flight_number = 1030") == [(0,)]
    assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200


def test_switched_off_refuses_events_with_503(tmp_path: Path) -> None:
    """FLIGHT_SYNC_ENABLED=false: events are refused (503, so senders retry), not taken and
    dropped; /healthz still answers."""
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"), "FLIGHT_SYNC_ENABLED": "false",
           "FLIGHTSYNC_WEBHOOK_SECRET": SECRET}
    with running(env, tmp_path / "server.log") as off:
        body = event(1031)
        response = post(off, body, headers(body, "evt-off"))
        assert response.status_code == 503
        assert error_of(response)["code"] == "disabled"
        assert httpx.get(off.url + "/healthz", timeout=10).status_code == 200


def test_two_workers_share_the_port_and_stop_cleanly(tmp_path: Path) -> None:
    """--workers 2: both processes serve the one announced port (events applied once each),
    and SIGTERM stops them all with exit 0."""
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"), "FLIGHTSYNC_WEBHOOK_SECRET": SECRET}
    with running(env, tmp_path / "server.log", "--workers", "2") as pair:
        for n in range(6):
            body = event(1040 + n)
            assert post(pair, body, headers(body, f"evt-w{n}")).status_code == 200
        code = pair.stop()
    assert code == 0
    assert rows(tmp_path / "state" / "flightsync.db",
                "SELECT count(*) FROM webhook_event WHERE event_id LIKE 'evt-w%'") == [(6,)]


def test_a_database_behind_its_schema_is_one_line_before_listening(tmp_path: Path) -> None:
    """A database that is not migrated: `serve` prints the usual one-line error and exits 4
    without listening, and no traceback."""
    empty = tmp_path / "empty.db"
    empty.touch()
    done = subprocess.run(
        [sys.executable, "-m", "flightsync", "serve", "--port", "0"],
        env={**os.environ, "FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"),
             "FLIGHTSYNC_DATABASE_URL": f"sqlite:///{empty}"},
        capture_output=True, timeout=60, check=False)
    assert done.returncode == 4
    assert b"listening" not in done.stdout
    assert b"flightsync migrate" in done.stderr and b"Traceback" not in done.stderr
