"""`flightsync serve --port 0` as a subprocess for tests: started with a given environment,
its port read from the `listening on http://HOST:PORT` line, stopped (SIGTERM, then SIGKILL)
when the block ends. Every wait has a deadline."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_SECONDS = 30.0
DRAIN_SECONDS = 60.0


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown, as a power cut or the OOM killer would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self._close()

    def _close(self) -> None:
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._close()
        return self.process.returncode

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(env: Mapping[str, str], log: Path, *args: str) -> Server:
    """Start the server and wait (at most START_SECONDS) until it answers /healthz."""
    full = {**os.environ, **env}
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "flightsync", "serve", "--host", "127.0.0.1", "--port", "0",
             *args], env=full, stdout=subprocess.PIPE, stderr=err)
    assert process.stdout is not None
    deadline = time.monotonic() + START_SECONDS
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or process.poll() is not None:
            process.kill()
            process.stdout.close()
            raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")
        if selector.select(left):
            chunk = os.read(process.stdout.fileno(), 1)
            if not chunk:
                continue
            line += chunk
    selector.close()
    text = line.decode().strip()
    assert text.startswith("listening on http://127.0.0.1:"), text
    server = Server(process, text.removeprefix("listening on "), log)
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=5).status_code in (200, 503):
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop()
    raise AssertionError(f"server never answered: {log.read_text()[-2000:]}")


@contextmanager
def running(env: Mapping[str, str], log: Path, *args: str) -> Iterator[Server]:
    server = start(env, log, *args)
    try:
        yield server
    finally:
        server.stop()


def wait_drained(server: Server) -> None:
    """Until /healthz counts no event in the spool (at most DRAIN_SECONDS)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        if httpx.get(f"{server.url}/healthz", timeout=10).json()["spool_pending"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("the spool was not drained in time")
