"""FlightAware AeroAPI alerts in the sandbox (docs/SANDBOX.md, "FlightAware alerts"): the
alert endpoints in AeroAPI's format, and deliveries in its ``deliver_alert`` format when a
scenario change alters a flight an alert watches.

- ``PUT|GET|DELETE /aeroapi/alerts/endpoint``: the account-wide delivery URL (``{"url"}``).
- ``POST /aeroapi/alerts``: 201, empty body, ``Location: /alerts/{id}``; 400 with AeroAPI's
  error body for a bad configuration (no ident, an unknown key or event, a start before the
  current day, a target URL that is not http(s)).
- ``GET /aeroapi/alerts`` (``{"alerts", "links", "num_pages"}``), ``GET|DELETE
  /aeroapi/alerts/{id}`` (404 for an unknown id).

A delivery is queued and sent by one background thread (:class:`AlertDeliverer`), so the
sandbox never waits for a receiver: each POST has a bounded timeout and is retried a few times
(AeroAPI itself never retries; the sandbox does, so that a test's receiver that starts a moment
late still gets it). The delivery URL holds a secret: it is never logged.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog

from flightsync.sandbox._base import Context, Reply, Request
from flightsync.sandbox._truth import FlightTruth

log = structlog.get_logger(__name__)

EVENTS = ("arrival", "cancelled", "departure", "diverted", "filed", "out", "off", "on", "in",
          "hold_start", "hold_end")
_KEYS = frozenset({
    "ident", "ident_icao", "ident_iata", "origin", "origin_icao", "origin_iata", "origin_lid",
    "destination", "destination_icao", "destination_iata", "destination_lid", "aircraft_type",
    "start", "end", "max_weekly", "eta", "impending_arrival", "impending_departure", "events",
    "target_url", "description", "enabled", "user_ident"})
# AeroAPI sends a change of an estimated time only past this (1801 s, not configurable).
CHANGE_THRESHOLD = timedelta(seconds=1801)
_MAX_DAYS = 3  # days an alert's start..end may span in the sandbox
# Fields of the delivered flight object (the deliver_alert schema: no status, no time zones;
# the airports are plain code strings).
_FLIGHT_FIELDS = (
    "ident", "ident_icao", "ident_iata", "fa_flight_id", "operator", "operator_icao",
    "operator_iata", "flight_number", "registration", "atc_ident", "blocked", "diverted",
    "cancelled", "position_only", "departure_delay", "arrival_delay", "filed_ete",
    "scheduled_out", "estimated_out", "actual_out", "scheduled_off", "estimated_off",
    "actual_off", "scheduled_on", "estimated_on", "actual_on", "scheduled_in", "estimated_in",
    "actual_in", "aircraft_type", "gate_origin", "gate_destination", "terminal_origin",
    "terminal_destination", "baggage_claim")


def error(status: int, title: str, reason: str, detail: str) -> Reply:
    return Reply.json(status, {"title": title, "reason": reason, "detail": detail,
                               "status": status})


def _bad(detail: str) -> Reply:
    return error(400, "Invalid argument", "INVALID_ARGUMENT", detail)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One queued delivery and, once sent, its outcome."""

    alert_id: int
    event_code: str
    url: str = field(repr=False)
    payload: Mapping[str, Any] = field(repr=False)


class AlertDeliverer:
    """POSTs deliveries from a background thread with a queue: ``send`` never blocks. Each
    POST waits at most ``timeout`` seconds and is tried ``attempts`` times (a 2xx ends it);
    usable on its own against any URL."""

    def __init__(self, *, timeout: float = 5.0, attempts: int = 3, backoff: float = 0.5,
                 capacity: int = 1000) -> None:
        self._queue: queue.Queue[Delivery | None] = queue.Queue(maxsize=capacity)
        self._timeout, self._attempts, self._backoff = timeout, attempts, backoff
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sandbox-alert-delivery",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop sending (what is still queued is dropped); waits at most ``timeout``."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        thread.join(timeout)

    def send(self, delivery: Delivery) -> bool:
        """Queue ``delivery``; False (and dropped) when the queue is full."""
        self.start()
        with self._lock:
            self._pending += 1
        try:
            self._queue.put_nowait(delivery)
        except queue.Full:
            self._record(delivery, "dropped", 0, None)
            return False
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Until every queued delivery is done (sent, failed or dropped), at most ``timeout``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def outcomes(self) -> list[dict[str, Any]]:
        """Each delivery's ``alert_id``, ``event_code``, ``status`` (``delivered``, ``failed``,
        ``dropped``), ``attempts`` and ``status_code``, oldest first."""
        with self._lock:
            return [dict(item) for item in self._log]

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                break
            status, attempts, code = self._post(item)
            self._record(item, status, attempts, code)

    def _post(self, item: Delivery) -> tuple[str, int, int | None]:
        body = json.dumps(item.payload).encode()
        code: int | None = None
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(  # noqa: S310 - http(s) only, checked on create
                item.url, data=body, method="POST",
                headers={"Content-Type": "application/json; charset=UTF-8",
                         "User-Agent": "AeroAPI/4.0"})
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as answer:  # noqa: S310
                    code = answer.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except (OSError, ValueError) as exc:
                code = None
                log.info("sandbox.alert.delivery_error", alert_id=item.alert_id,
                         error=type(exc).__name__)
            if code is not None and 200 <= code < 300:
                return "delivered", attempt, code
            if code is not None and 400 <= code < 500 and code != 429:
                return "failed", attempt, code  # the receiver refused it: retrying cannot help
            if self._stop.wait(self._backoff * attempt):
                break
        return "failed", self._attempts, code

    def _record(self, item: Delivery, status: str, attempts: int, code: int | None) -> None:
        log.info("sandbox.alert.delivery", alert_id=item.alert_id, event_code=item.event_code,
                 status=status, attempts=attempts, status_code=code)
        with self._idle:
            self._log.append({"alert_id": item.alert_id, "event_code": item.event_code,
                              "status": status, "attempts": attempts, "status_code": code})
            self._pending -= 1
            self._idle.notify_all()


class AlertBook:
    """The alerts and the account endpoint the sandbox holds, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[int, dict[str, Any]] = {}
        self._endpoint: str | None = None
        self._next_id = 1001

    # -- the HTTP endpoints -------------------------------------------------------------
    def put_endpoint(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        body = _json(request)
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not _http_url(url):
            return _bad("url must be an http or https URL")
        with self._lock:
            self._endpoint = url
        return Reply(204)

    def get_endpoint(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        with self._lock:
            return Reply.json(200, {"url": self._endpoint})

    def delete_endpoint(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        with self._lock:
            self._endpoint = None
        return Reply(204)

    def create(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        body = _json(request)
        if not isinstance(body, dict):
            return _bad("the body must be a JSON object")
        problem = _check(body, ctx.now())
        if problem is not None:
            return _bad(problem)
        events = body.get("events") or {}
        with self._lock:
            alert_id = self._next_id
            self._next_id += 1
            now = ctx.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._alerts[alert_id] = {
                "id": alert_id, "description": body.get("description"),
                "ident": body["ident"], "ident_icao": None, "ident_iata": None,
                "origin": body.get("origin"), "destination": body.get("destination"),
                "aircraft_type": body.get("aircraft_type"), "created": now, "changed": now,
                "start": body.get("start"), "end": body.get("end"),
                "user_ident": body["ident"], "eta": body.get("eta") or 0,
                "impending_arrival": body.get("impending_arrival"),
                "impending_departure": body.get("impending_departure"),
                "events": {name: events.get(name) is True for name in EVENTS},
                "target_url": body.get("target_url"), "enabled": body.get("enabled", True)}
        return Reply(201, b"", headers={"Location": f"/alerts/{alert_id}"})

    def list(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        with self._lock:
            alerts = [dict(alert) for alert in self._alerts.values()]
        return Reply.json(200, {"alerts": alerts, "links": None, "num_pages": 1})

    def get(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        with self._lock:
            alert = self._alerts.get(int(match["id"]))
        if alert is None:
            return error(404, "Not found", "NOT_FOUND", "No alert with that id")
        return Reply.json(200, dict(alert))

    def delete(self, request: Request, ctx: Context, match: re.Match[str]) -> Reply:
        with self._lock:
            alert = self._alerts.pop(int(match["id"]), None)
        if alert is None:
            return error(404, "Not found", "NOT_FOUND", "No alert with that id")
        return Reply(204)

    # -- deliveries ---------------------------------------------------------------------
    def watched(self) -> Iterator[tuple[dict[str, Any], str, date]]:
        """(alert, its delivery URL, a date it covers) for every enabled alert with a URL."""
        with self._lock:
            alerts = [dict(a) for a in self._alerts.values() if a.get("enabled") is not False]
            endpoint = self._endpoint
        for alert in alerts:
            url = alert.get("target_url") or endpoint
            start = _day(alert.get("start"))
            end = _day(alert.get("end")) or start
            if not url or start is None or end is None:
                continue
            day = start
            while day <= min(end, start + timedelta(days=_MAX_DAYS - 1)):
                yield alert, url, day
                day += timedelta(days=1)


Render = Callable[[FlightTruth, int, datetime], dict[str, Any]]


def changes(before: Mapping[str, Any], after: Mapping[str, Any],
            events: Mapping[str, bool]) -> list[tuple[str, str]]:
    """The deliveries one leg's change calls for, as (event_code, what changed), in the order
    AeroAPI would send them, limited to the alert's ``events``."""
    out: list[tuple[str, str]] = []
    if after.get("cancelled") and not before.get("cancelled"):
        if events.get("cancelled"):
            out.append(("cancelled", "cancelled"))
        return out
    for key, code, bundle, what in (
            ("actual_out", "out", None, "left the gate"),
            ("actual_off", "departure", "departure", "departed"),
            ("actual_off", "off", None, "took off"),
            ("actual_on", "arrival", "arrival", "arrived"),
            ("actual_on", "on", None, "landed"),
            ("actual_in", "in", None, "reached the gate")):
        if after.get(key) and not before.get(key) and events.get(bundle or code):
            out.append((code, what))
    departed = bool(after.get("actual_off"))
    # A change rides in the departure bundle before take-off, in the arrival bundle after.
    if events.get("arrival" if departed else "departure"):
        moved = [f"{label} is now {after.get(key)}" for key, label in (
            ("gate_origin", "departure gate"), ("gate_destination", "arrival gate"),
            ("terminal_origin", "departure terminal"),
            ("terminal_destination", "arrival terminal"))
            if after.get(key) != before.get(key)]
        moved += [f"{label} moved to {after.get(key)}" for key, label in (
            ("estimated_out", "estimated departure"), ("estimated_in", "estimated arrival"))
            if _shift(before.get(key), after.get(key)) > CHANGE_THRESHOLD]
        if moved:
            out.append(("change", "; ".join(moved)))
    return out


def payload(alert_id: int, code: str, what: str, leg: Mapping[str, Any]) -> dict[str, Any]:
    """One ``deliver_alert`` body: descriptions, ``event_code``, ``alert_id``, ``flight``."""
    flight = {name: leg.get(name) for name in _FLIGHT_FIELDS}
    origin, destination = _code(leg.get("origin")), _code(leg.get("destination"))
    flight["origin"], flight["destination"] = origin, destination
    ident = leg.get("ident")
    short = f"{ident} ({origin}-{destination}) {what}"
    return {"long_description": f"Flight {ident} from {origin} to {destination}: {what}.",
            "short_description": short, "summary": f"{ident} {code}",
            "event_code": code, "alert_id": alert_id, "flight": flight}


def _code(place: Any) -> str | None:
    return place.get("code") if isinstance(place, dict) else place


def _shift(before: Any, after: Any) -> timedelta:
    if not isinstance(before, str) or not isinstance(after, str):
        return timedelta(0)
    return abs(datetime.fromisoformat(after) - datetime.fromisoformat(before))


def _json(request: Request) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        return None


def _http_url(url: str) -> bool:
    return re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", url) is not None


def _day(text: Any) -> date | None:
    if not isinstance(text, str):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _check(body: dict[str, Any], now: datetime) -> str | None:  # noqa: PLR0911 - one per rule
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        return f"unknown field {unknown[0]!r}"
    if not isinstance(body.get("ident"), str) or not body["ident"].strip():
        return "ident is required"
    events = body.get("events")
    if events is not None and (not isinstance(events, dict) or any(
            k not in EVENTS or not isinstance(v, bool) for k, v in events.items())):
        return "events must map " + ", ".join(EVENTS) + " to booleans"
    for key in ("start", "end"):
        if body.get(key) is not None and _day(body[key]) is None:
            return f"{key} must be a date YYYY-MM-DD"
    start, end = _day(body.get("start")), _day(body.get("end"))
    if start is not None and start < now.astimezone(UTC).date():
        return "start cannot be before current day"
    if start is not None and end is not None and end < start:
        return "end cannot be before start"
    url = body.get("target_url")
    if url is not None and (not isinstance(url, str) or not _http_url(url)):
        return "target_url must be an http or https URL"
    return None


__all__ = ["EVENTS", "AlertBook", "AlertDeliverer", "Delivery", "changes", "error", "payload"]
