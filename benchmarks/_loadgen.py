"""An open-loop load generator for `flightsync serve`: ``clients`` threads, each with its own
keep-alive httpx client, sending signed Standard Webhooks events on a fixed schedule so that
together they offer ``rate`` events a second for ``seconds``. A client that falls behind
sends its next event at once (none is skipped to catch up), and stops at the end of the
time: the offered rate is an upper bound of what is sent.

Used by benchmarks/_server.py and tests/test_server_load.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

KEY = b"flightsync-load-test-key-0123456"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


@dataclass
class Sent:
    event_id: str
    status: int | None  # None: no answer (connection refused or reset)
    seconds: float


@dataclass
class LoadResult:
    sent: list[Sent] = field(default_factory=list)
    elapsed: float = 0.0

    def acked(self) -> list[str]:
        return [s.event_id for s in self.sent if s.status is not None and 200 <= s.status < 300]

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sent:
            key = str(s.status)
            out[key] = out.get(key, 0) + 1
        return out

    def percentile(self, share: float) -> float:
        times = sorted(s.seconds for s in self.sent if s.status is not None)
        if not times:
            return float("nan")
        return times[min(len(times) - 1, int(share * len(times)))]

    def summary(self) -> str:
        rate = len(self.acked()) / self.elapsed if self.elapsed else 0.0
        return (f"{len(self.sent)} sent, {len(self.acked())} acknowledged in "
                f"{self.elapsed:.1f} s ({rate:.0f}/s); p50 {self.percentile(0.5) * 1000:.0f} "
                f"ms, p99 {self.percentile(0.99) * 1000:.0f} ms; statuses {self.statuses()}")


def event_body(flight: int, gate: str, *, day: str, origin: str = "FRA") -> bytes:
    return json.dumps({
        "type": "flight.updated", "provider": "lufthansa", "flight": f"LH{flight}",
        "date": day, "origin": origin, "occurred_at": datetime.now(UTC).isoformat(),
        "changes": {"departure_gate": gate, "destination": "JFK"}}).encode()


def signed(body: bytes, event_id: str) -> dict[str, str]:
    stamp = int(time.time())
    mac = hmac.new(KEY, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"content-type": "application/json", "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(mac).decode()}


def run_load(url: str | Callable[[], str], *, clients: int, rate: float, seconds: float,
             day: str, flights: int = 40, prefix: str = "load",
             stop: threading.Event | None = None, timeout: float = 10.0) -> LoadResult:
    """Offer ``rate`` events a second from ``clients`` threads for ``seconds``. Event ``n``
    of client ``c`` is ``{prefix}-{c}-{n}`` and moves flight ``LH(9000 + n % flights)``'s
    gate to a value of its own. ``url`` may be a callable (a server restarted elsewhere)."""
    result = LoadResult()
    lock = threading.Lock()
    every = clients / rate
    start = time.monotonic()
    halt = stop or threading.Event()

    def client(c: int) -> None:
        mine: list[Sent] = []
        with httpx.Client(timeout=timeout) as http:
            n = 0
            while not halt.is_set():
                due = start + (c / clients) * every + n * every
                if due - start >= seconds or time.monotonic() - start >= seconds:
                    break
                wait = due - time.monotonic()
                if wait > 0 and halt.wait(wait):
                    break
                event_id = f"{prefix}-{c}-{n}"
                body = event_body(9000 + (c * 7 + n) % flights, f"G{c}-{n}", day=day)
                base = url() if callable(url) else url
                began = time.monotonic()
                try:
                    answer = http.post(f"{base}/webhooks/flightsync", content=body,
                                       headers=signed(body, event_id))
                    status: int | None = answer.status_code
                except httpx.HTTPError:
                    status = None
                mine.append(Sent(event_id, status, time.monotonic() - began))
                n += 1
        with lock:
            result.sent.extend(mine)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout + 30)
    result.elapsed = time.monotonic() - start
    return result


__all__ = ["KEY", "SECRET", "LoadResult", "event_body", "run_load", "signed"]
