"""``python -m benchmarks.budgets [--json] [--calls N] [--batch N] [--rate R]``.

Two figures, each against a floor measured in the same run (benchmarks/budgets/README.md):

- ``limiter_diskcache`` / ``limiter_redis``: one admitted call (``acquire_sent`` with a
  provider's three limits, its four call counters and two spend charges, then
  ``settle_sent``), median microseconds, against the bare backend's own atomic add
  (diskcache ``Cache.incr`` in its own transaction; redis-py ``INCR``). Redis is a private
  ``redis-server`` on a free loopback port (skipped without one).
- ``batch_rate``: ``flightsync batch`` of N flights through one provider limited to R/second,
  measured at the sandbox from its request times: the ideal span between the first and the
  last call ((N - R) / R seconds) over the real one, and the most calls seen in any second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import diskcache
import httpx
import yaml

from benchmarks._report import Row, render
from flightsync.config import ProviderSettings
from flightsync.resilience._budget import Budgets, provider_budgets
from flightsync.resilience._limits import DiskcacheStorage, SentWindowStorage, SharedRedisStorage
from flightsync.sandbox import sandbox_environment

FLIGHTSYNC = Path(sys.executable).parent / "flightsync"
LIMITS = "1000000/second;100000000/hour;1000000000/month"  # never full: the cost alone


def _time_calls(fn: Callable[[], None], calls: int) -> float:
    """Median microseconds of ``fn`` over ``calls`` calls, after 50 untimed ones."""
    for _ in range(50):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e6)
    return float(statistics.median(times))


def _limiter_us(storage: SentWindowStorage, calls: int) -> float:
    settings = {"bench": ProviderSettings(limits=LIMITS, cost_per_call=0.01,
                                          budget={"day": 1e9, "month": 1e9})}
    budgets = Budgets(lambda: storage, provider_budgets(settings, {}), hold_seconds=30)

    def one() -> None:
        with budgets.call("bench", deadline=time.monotonic() + 30):
            pass

    return _time_calls(one, calls)


def limiter_rows(folder: Path, calls: int) -> list[Row]:
    disk = DiskcacheStorage(f"flightsync+diskcache://{folder / 'limits'}")
    floor_cache = diskcache.Cache(str(folder / "floor"))

    def bare_disk() -> None:
        with floor_cache.transact():
            floor_cache.incr("n")

    disk_floor = _time_calls(bare_disk, calls)
    disk_us = _limiter_us(disk, calls)
    rows = [Row("limiter_diskcache", "one admitted call, state directory", "median per call",
                "us", None, True, disk_us,
                {"floor_incr_us": disk_floor, "ratio_to_floor": disk_us / disk_floor})]
    redis_row = Row("limiter_redis", "one admitted call, Redis (2 round trips)",
                    "median per call", "us", 2000.0, True)
    binary = shutil.which("redis-server")
    if binary is None:
        redis_row.note = "redis-server not installed"
        return [*rows, redis_row]
    port = _free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(folder)], stdout=subprocess.DEVNULL)
    try:
        _wait_for(port)
        url = f"redis://127.0.0.1:{port}/0"
        shared = SharedRedisStorage(url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}")
        client = shared.storage
        floor = _time_calls(lambda: client.incr("bench-floor"), calls)
        value = _limiter_us(shared, calls)
        redis_row.value = value
        redis_row.detail = {"floor_incr_us": floor, "ratio_to_floor": value / floor}
    finally:
        server.terminate()
        server.wait(timeout=10)
    return [*rows, redis_row]


def batch_row(folder: Path, flights: int, rate: int) -> Row:
    folder.mkdir(parents=True, exist_ok=True)
    row = Row("batch_rate", f"batch of {flights} flights, one provider at {rate}/second",
              "ideal span / actual span", "x", 0.9, False)
    sandbox = subprocess.Popen([str(FLIGHTSYNC), "sandbox", "serve", "--latency-ms", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert sandbox.stdout is not None
    base = sandbox.stdout.readline().decode().strip()
    try:
        day = datetime.now(UTC).date().isoformat()
        (folder / "batch.csv").write_text(
            "flight,date\n" + "".join(f"UA{2000 + i},{day}\n" for i in range(flights)))
        (folder / "config.yaml").write_text(yaml.safe_dump({"providers": {"flightaware": {
            "limits": f"{rate}/second", "max_wait_seconds": 5}}}))
        env = {**os.environ, **sandbox_environment(base),
               "FLIGHTSYNC_STATE_DIR": str(folder / "state")}
        for name in ("AMADEUS_CLIENT_ID", "LUFTHANSA_CLIENT_ID", "AFKLM_API_KEY",
                     "BA_CLIENT_KEY", "CIRIUM_APP_ID", "AVIATIONSTACK_ACCESS_KEY",
                     "AERODATABOX_API_KEY"):
            env[name] = ""  # flightaware alone
        done = subprocess.run([str(FLIGHTSYNC), "--config", str(folder / "config.yaml"),
                               "batch", str(folder / "batch.csv")], env=env,
                              capture_output=True, timeout=600, check=False)
        summary = json.loads(done.stdout)["summary"] if done.stdout else {}
        times = sorted(httpx.get(f"{base}/_sandbox/requests").json()["flightaware"])
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    ideal = (len(times) - rate) / rate
    row.value = ideal / span if span > 0 else None
    row.detail = {"calls": len(times), "span_s": span, "ideal_span_s": ideal,
                  "most_in_one_second": _most_in_window(times), "left_for_later":
                  summary.get("left_for_later"), "failed": summary.get("failed")}
    return row


def _most_in_window(times: list[float]) -> int:
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _wait_for(port: int) -> None:
    import socket  # noqa: PLC0415

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("redis-server did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budgets")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per limiter row")
    parser.add_argument("--batch", type=int, default=300, help="flights in the batch row")
    parser.add_argument("--rate", type=int, default=50, help="the batch's limit per second")
    args = parser.parse_args(argv)
    header: dict[str, Any] = {"load_avg_1m": os.getloadavg()[0], "nproc": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="flightsync-budgets-") as tmp:
        folder = Path(tmp)
        rows = [*limiter_rows(folder, args.calls),
                batch_row(folder / "batch", args.batch, args.rate)]
    header["load_avg_1m_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"header": header, "scenarios": [r.to_json() for r in rows]},
                         indent=2))
    else:
        print(render(rows, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
