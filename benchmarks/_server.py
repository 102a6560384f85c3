"""``python -m benchmarks._server [--seconds 8] [--clients 8] [--no-postgres]``: events
`flightsync serve` accepts per second, with p50/p99 latency, on SQLite and on PostgreSQL,
against a floor measured in the same run with the same client: a bare Starlette app on
uvicorn that reads the body and answers 200.

Each server runs as its own process on a free port; the client is benchmarks/_loadgen.py
(``clients`` threads, each with a keep-alive connection, offering far more than any server
takes, so each thread sends its next event as soon as the last is answered). Every event is
signed, new (its own id) and moves a flight's gate, so each is a real write: verified,
merged by the policy, committed with its audit rows. PostgreSQL gets a private database,
created and dropped here (postgresql+psycopg://postgres@127.0.0.1:5432/).
"""

from __future__ import annotations

import argparse
import os
import platform
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from benchmarks._env import private_postgres
from benchmarks._loadgen import SECRET, LoadResult, run_load

OFFERED = 5000.0  # events a second offered: far above what any server here takes

FLOOR_APP = """
import socket, sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def accept(request):
    await request.body()
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/webhooks/flightsync", accept, methods=["POST"]),
                        Route("/healthz", lambda r: JSONResponse({}), methods=["GET"])])
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen(2048)
print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False)).run(sockets=[sock])
"""


@contextmanager
def server(argv: list[str], env: Mapping[str, str]) -> Iterator[str]:
    process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        line = b""
        while not line.endswith(b"\n"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("server did not start")
            if selector.select(1):
                line += os.read(process.stdout.fileno(), 1)
        url = line.decode().strip().removeprefix("listening on ")
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


def measure(url: str, *, clients: int, seconds: float, day: str, prefix: str) -> LoadResult:
    run_load(url, clients=clients, rate=OFFERED, seconds=0.5, day=day, prefix=f"warm{prefix}")
    return run_load(url, clients=clients, rate=OFFERED, seconds=seconds, day=day,
                    prefix=prefix, flights=200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks._server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    day = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    serve = [sys.executable, "-m", "flightsync", "serve", "--host", "127.0.0.1", "--port", "0"]
    rows: list[tuple[str, LoadResult]] = []
    with tempfile.TemporaryDirectory(prefix="fs-bench-server-") as tmp:
        with server([sys.executable, "-c", FLOOR_APP], {}) as url:
            rows.append(("bare Starlette app (floor)", measure(
                url, clients=args.clients, seconds=args.seconds, day=day, prefix="floor")))
        env = {"FLIGHTSYNC_STATE_DIR": f"{tmp}/sqlite", "FLIGHTSYNC_WEBHOOK_SECRET": SECRET}
        with server(serve, env) as url:
            rows.append(("flightsync serve, SQLite", measure(
                url, clients=args.clients, seconds=args.seconds, day=day, prefix="sqlite")))
        if not args.no_postgres:
            with private_postgres("fs_bench") as pg_url:
                subprocess.run([sys.executable, "-m", "flightsync", "migrate"], check=True,
                               env={**os.environ, "FLIGHTSYNC_DATABASE_URL": pg_url},
                               capture_output=True, timeout=120)
                env = {"FLIGHTSYNC_STATE_DIR": f"{tmp}/pg", "FLIGHTSYNC_WEBHOOK_SECRET": SECRET,
                       "FLIGHTSYNC_DATABASE_URL": pg_url}
                with server(serve, env) as url:
                    rows.append(("flightsync serve, PostgreSQL", measure(
                        url, clients=args.clients, seconds=args.seconds, day=day,
                        prefix="pg")))
    load = os.getloadavg()
    floor_rate = len(rows[0][1].acked()) / rows[0][1].elapsed
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; {args.clients} clients, {args.seconds:g} s each")
    print("| server | accepted/s | x floor | p50 ms | p99 ms | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, result in rows:
        rate = len(result.acked()) / result.elapsed
        bad = len(result.sent) - len(result.acked())
        print(f"| {name} | {rate:.0f} | {rate / floor_rate:.2f} | "
              f"{result.percentile(0.5) * 1000:.0f} | {result.percentile(0.99) * 1000:.0f} | "
              f"{bad} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["main"]
