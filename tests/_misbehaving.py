"""A provider server that misbehaves on purpose, for the deadline and size-cap tests.

A real loopback HTTP server on raw sockets (``socketserver``), one thread per connection, so
the answers can do what no well-behaved framework would let them: trickle a byte at a time,
stream a chunked body that never ends, announce 40 MB, nest JSON thousands deep, redirect, or
answer HTML. What each path answers is set per test through :meth:`Misbehaving.answer`; every
request is recorded, and so is how many body bytes each answer got out before the client went
away.

Not a test module (leading underscore): tests import it as ``from tests._misbehaving import``.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

TOKEN_BODY = json.dumps({"access_token": "misbehaving-token-0123456789", "token_type": "Bearer",
                         "expires_in": 3600}).encode()


@dataclass
class Misbehaving:
    """The server's state: the behaviour per path prefix, the requests seen, bytes sent."""

    base_url: str = ""
    behaviours: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, prefix: str, behaviour: str) -> None:
        """Answer every request whose path starts with ``prefix`` with ``behaviour`` (see
        :func:`_respond`); the longest matching prefix wins."""
        self.behaviours[prefix] = behaviour

    def behaviour_for(self, path: str) -> str:
        matches = [p for p in self.behaviours if path.startswith(p)]
        return self.behaviours[max(matches, key=len)] if matches else "not_found"

    def paths(self) -> list[str]:
        with self.lock:
            return list(self.requests)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        state = self.server.state
        sock: socket.socket = self.request
        sock.settimeout(5)
        reader = sock.makefile("rb")
        try:
            while not state.stopping.is_set():
                line = reader.readline(65536)
                if not line:
                    return
                _, path, _ = line.decode("latin-1").split(" ", 2)
                length = 0
                while True:
                    header = reader.readline(65536)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length:
                    reader.read(length)
                with state.lock:
                    state.requests.append(path)
                counter = [0]
                try:
                    _respond(sock, state.behaviour_for(path), state, counter)
                finally:
                    with state.lock:
                        state.sent.append(counter[0])
        except OSError:
            return  # the client gave up: what a deadline is for
        finally:
            reader.close()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: Misbehaving) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _whole(sock: socket.socket, body: bytes, content_type: str = "application/json",
           status: str = "200 OK", extra: dict[str, str] | None = None) -> None:
    sock.sendall(_head(status, {"Content-Type": content_type,
                                "Content-Length": str(len(body)), **(extra or {})}) + body)


def _respond(sock: socket.socket, behaviour: str, state: Misbehaving,
             counter: list[int]) -> None:
    """Send one answer, counting in ``counter`` the streamed body bytes that got out.
    Behaviours:

    - ``token``: a good OAuth token answer; ``trickle``: a JSON answer announced at 100 kB and
      sent one byte every 50 ms (each gap far below the read timeout); ``endless``: a chunked
      body that never ends (one blank a chunk, every 20 ms); ``huge``: 40 MB announced and
      sent as fast as the client reads; ``deep``: valid JSON nested 5,000 deep;
      ``redirect``: a 302 to another path; ``html``: a 200 HTML page; ``gzip``: JSON
      compressed although the client asked for none; ``not_found``: a plain 404.
    """
    if behaviour == "token":
        return _whole(sock, TOKEN_BODY)
    if behaviour == "trickle":
        sock.sendall(_head("200 OK", {"Content-Type": "application/json",
                                      "Content-Length": "100000"}))
        return _drip(sock, state, b" ", 0.05, 100000, counter)
    if behaviour == "endless":
        sock.sendall(_head("200 OK", {"Content-Type": "application/json",
                                      "Transfer-Encoding": "chunked"}))
        return _drip(sock, state, b"1\r\n \r\n", 0.02, None, counter)
    if behaviour == "huge":
        size = 40 * 1024 * 1024
        sock.sendall(_head("200 OK", {"Content-Type": "application/json",
                                      "Content-Length": str(size)}))
        block = b" " * 65536
        while counter[0] < size and not state.stopping.is_set():
            sock.sendall(block)
            counter[0] += len(block)
        return None
    if behaviour == "deep":
        return _whole(sock, b"[" * 5000 + b"]" * 5000)
    if behaviour == "redirect":
        return _whole(sock, b"", status="302 Found", extra={"Location": "/elsewhere"})
    if behaviour == "html":
        return _whole(sock, b"<html><body>Service moved</body></html>", "text/html")
    if behaviour == "gzip":
        import gzip  # noqa: PLC0415

        return _whole(sock, gzip.compress(b"{}"), extra={"Content-Encoding": "gzip"})
    return _whole(sock, b'{"error": "not found"}', status="404 Not Found")


def _drip(sock: socket.socket, state: Misbehaving, piece: bytes, gap: float,
          limit: int | None, counter: list[int]) -> None:
    while (limit is None or counter[0] < limit) and not state.stopping.is_set():
        sock.sendall(piece)
        counter[0] += len(piece)
        time.sleep(gap)


@contextmanager
def misbehaving_server() -> Iterator[Misbehaving]:
    """The server on a free loopback port until the block ends; its threads stop with it."""
    state = Misbehaving()
    server = _Server(state)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="misbehaving", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
