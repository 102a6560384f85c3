"""The sandbox's FlightAware alerts: AeroAPI's alert endpoints with its auth checks and error
bodies, and deliveries in the deliver_alert format to the registered URL when a scenario
change alters a watched flight, sent from a background queue (docs/SANDBOX.md)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from flightsync.sandbox import Sandbox, SandboxConfig
from flightsync.sandbox._fa_alerts import AlertDeliverer, Delivery

DAY = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
TOKEN = "tok_sandbox_0123456789"
KEY = {"x-apikey": "sandbox"}


@dataclass
class Receiver:
    """A tiny local HTTP receiver: records each POST (path, JSON body) and answers
    ``status``; with ``hold`` set, each answer waits until it is released."""

    status: int = 200
    got: list[tuple[str, Any]] = field(default_factory=list)
    hold: threading.Event | None = None
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if box.hold is not None:
                box.hold.wait(30)
            box.got.append((self.path, json.loads(body)))
            self.send_response(box.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    box.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/flightaware/{TOKEN}"
    try:
        yield box
    finally:
        if box.hold is not None:
            box.hold.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as running:
        yield running


def _create(sandbox: Sandbox, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}/aeroapi/alerts", json=body, headers=KEY)


def _alert(url: str, **events: bool) -> dict[str, Any]:
    return {"ident": "LH400", "start": DAY, "end": DAY, "target_url": url,
            "events": {"arrival": True, "departure": True, "cancelled": True, **events}}


def test_alert_endpoints_speak_aeroapi(sandbox: Sandbox, receiver: Receiver) -> None:
    """POST answers 201 with Location /alerts/{id}; GET /alerts lists it in AeroAPI's shape;
    GET and DELETE /alerts/{id} find it, then 404; PUT/GET /alerts/endpoint keep the URL."""
    created = _create(sandbox, _alert(receiver.url))
    assert created.status_code == 201
    alert_id = int(created.headers["location"].removeprefix("/alerts/"))
    listed = httpx.get(f"{sandbox.base_url}/aeroapi/alerts", headers=KEY).json()
    assert set(listed) == {"alerts", "links", "num_pages"}
    (alert,) = listed["alerts"]
    assert (alert["id"], alert["ident"], alert["start"], alert["target_url"]) == (
        alert_id, "LH400", DAY, receiver.url)
    assert alert["events"]["arrival"] is True and alert["events"]["filed"] is False
    one = f"{sandbox.base_url}/aeroapi/alerts/{alert_id}"
    assert httpx.get(one, headers=KEY).json()["id"] == alert_id
    assert httpx.delete(one, headers=KEY).status_code == 204
    assert httpx.delete(one, headers=KEY).status_code == 404
    endpoint = f"{sandbox.base_url}/aeroapi/alerts/endpoint"
    assert httpx.put(endpoint, json={"url": receiver.url}, headers=KEY).status_code == 204
    assert httpx.get(endpoint, headers=KEY).json() == {"url": receiver.url}


def test_alert_endpoints_check_the_key_and_the_body(sandbox: Sandbox) -> None:
    """Without the API key: 401 in AeroAPI's error body. A body without ident, with an
    unknown event or a start before the current day: 400 INVALID_ARGUMENT with a detail."""
    refused = httpx.get(f"{sandbox.base_url}/aeroapi/alerts")
    assert refused.status_code == 401 and refused.json()["reason"] == "UNAUTHORIZED"
    for body, detail in (
            ({"start": DAY}, "ident is required"),
            ({"ident": "LH400", "events": {"gate": True}}, "events must map"),
            ({"ident": "LH400", "start": "2020-01-01"}, "start cannot be before current day")):
        answer = _create(sandbox, body)
        assert answer.status_code == 400
        assert answer.json()["reason"] == "INVALID_ARGUMENT"
        assert detail in answer.json()["detail"]


def test_a_gate_change_and_delay_post_one_change_delivery(
        sandbox: Sandbox, receiver: Receiver) -> None:
    """A scenario that moves the departure gate and delays the flight 45 minutes posts one
    `change` delivery to the alert's URL, in the deliver_alert shape, checked field by field."""
    alert_id = int(_create(sandbox, _alert(receiver.url)).headers["location"].split("/")[-1])
    before = httpx.get(f"{sandbox.base_url}/aeroapi/flights/LH400", headers=KEY, params={
        "start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z"}).json()["flights"][0]
    sandbox.set_scenario({"overrides": [{"provider": "flightaware", "flight": "LH400",
                                         "fields": {"departure_gate": "Z99",
                                                    "delay_minutes": 45}}]})
    assert sandbox.deliverer.wait_idle(30)
    assert [d["status"] for d in sandbox.deliveries()] == ["delivered"]
    ((path, body),) = receiver.got
    assert path == f"/webhooks/flightaware/{TOKEN}"
    assert set(body) == {"long_description", "short_description", "summary", "event_code",
                         "alert_id", "flight"}
    assert body["event_code"] == "change"
    assert body["alert_id"] == alert_id
    for text in ("long_description", "short_description", "summary"):
        assert isinstance(body[text], str) and body[text]
    assert "Z99" in body["short_description"]
    flight = body["flight"]
    assert flight["ident"] == "DLH400" and flight["ident_iata"] == "LH400"
    assert flight["fa_flight_id"] == before["fa_flight_id"]
    assert flight["origin"] == before["origin"]["code"]            # plain code strings
    assert flight["destination"] == before["destination"]["code"]
    assert flight["gate_origin"] == "Z99"
    assert flight["gate_destination"] == before["gate_destination"]
    assert flight["scheduled_out"] == before["scheduled_out"]
    moved = datetime.fromisoformat(flight["estimated_out"])
    assert moved - datetime.fromisoformat(before["scheduled_out"]) == timedelta(minutes=45)
    assert flight["cancelled"] is False and flight["actual_out"] is None
    assert "status" not in flight


def test_cancellation_posts_a_cancelled_delivery_and_unwatched_flights_post_none(
        sandbox: Sandbox, receiver: Receiver) -> None:
    """Cancelling a watched flight posts `cancelled`; a change to a flight no alert watches,
    or to an alert without the `cancelled` event, posts nothing."""
    _create(sandbox, _alert(receiver.url))
    _create(sandbox, {**_alert(receiver.url), "ident": "BA117",
                      "events": {"cancelled": False, "departure": False, "arrival": False}})
    sandbox.set_scenario({"overrides": [
        {"flight": "LH400", "fields": {"cancelled": True}},
        {"flight": "BA117", "fields": {"cancelled": True}},
        {"flight": "AF1", "fields": {"departure_gate": "K1"}}]})
    assert sandbox.deliverer.wait_idle(30)
    assert [(b["event_code"], b["flight"]["ident_iata"], b["flight"]["cancelled"])
            for _, b in receiver.got] == [("cancelled", "LH400", True)]


def test_a_departure_in_the_scenario_clock_posts_departure(
        sandbox: Sandbox, receiver: Receiver) -> None:
    """Moving the scenario's clock past the flight's take-off posts `departure` (and past
    its landing, `arrival`)."""
    _create(sandbox, _alert(receiver.url))
    flight = httpx.get(f"{sandbox.base_url}/aeroapi/flights/LH400", headers=KEY, params={
        "start": f"{DAY}T00:00:00Z", "end": f"{DAY}T23:59:59Z"}).json()["flights"][0]
    off = datetime.fromisoformat(flight["estimated_off"])
    on = datetime.fromisoformat(flight["estimated_on"])
    sandbox.set_scenario({"now": (off - timedelta(hours=1)).isoformat()})
    sandbox.set_scenario({"now": (off + timedelta(minutes=1)).isoformat()})
    sandbox.set_scenario({"now": (on + timedelta(minutes=1)).isoformat()})
    assert sandbox.deliverer.wait_idle(30)
    assert [b["event_code"] for _, b in receiver.got] == ["departure", "arrival"]


def test_a_slow_receiver_never_holds_the_sandbox(sandbox: Sandbox, receiver: Receiver) -> None:
    """While a delivery waits on a receiver that has not answered, set_scenario has returned
    and the sandbox answers requests; the delivery completes once the receiver answers."""
    receiver.hold = threading.Event()
    _create(sandbox, _alert(receiver.url))
    sandbox.set_scenario({"overrides": [{"flight": "LH400",
                                         "fields": {"departure_gate": "Q1"}}]})
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").status_code == 200
    assert sandbox.deliveries() == []          # still waiting on the receiver
    receiver.hold.set()
    assert sandbox.deliverer.wait_idle(30)
    assert [d["status"] for d in sandbox.deliveries()] == ["delivered"]


def test_the_deliverer_retries_a_failing_receiver_then_gives_up(receiver: Receiver) -> None:
    """A receiver answering 500 is tried `attempts` times, then the delivery is `failed`; the
    deliverer works against any URL, outside a sandbox."""
    receiver.status = 500
    deliverer = AlertDeliverer(timeout=5, attempts=3, backoff=0.01)
    try:
        deliverer.send(Delivery(7, "change", receiver.url, {"alert_id": 7}))
        assert deliverer.wait_idle(30)
    finally:
        deliverer.stop()
    assert deliverer.outcomes() == [{"alert_id": 7, "event_code": "change", "status": "failed",
                                     "attempts": 3, "status_code": 500}]
    assert len(receiver.got) == 3
