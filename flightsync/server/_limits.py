"""Request limits and JSON errors around the whole app (pure ASGI, outermost).

- Request headers of at most 16 KiB (431 past that).
- At most ``max_concurrency`` requests in the app at once; one more gets 503 at once (with
  ``Retry-After``), so a flood queues nowhere. uvicorn bounds connections and header size.
- Every failure is answered as one JSON object ``{"error": {"code", "message"}}``; an
  unexpected exception is logged as a warning (its type and first line, no traceback) and
  answered 500 without details, and never reaches uvicorn (which would log it at error level
  with its traceback).
"""

from __future__ import annotations

import json
import threading

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flightsync.errors import first_line

log = structlog.get_logger(__name__)

MAX_HEADER_BYTES = 16 * 1024


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def send_error(send: Send, status: int, code: str, message: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(code, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class Limits:
    """The outermost layer: the concurrency limit and the last-resort error answer."""

    def __init__(self, app: ASGIApp, *, max_concurrency: int,
                 max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_concurrency = max_concurrency
        self.max_header_bytes = max_header_bytes
        self._busy = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
        if size > self.max_header_bytes:
            # uvicorn (h11) bounds a header block that arrives slowly; one that arrives whole
            # is measured here.
            await send_error(send, 431, "headers_too_large",
                             f"the request headers exceed {self.max_header_bytes} bytes")
            return
        with self._lock:
            full = self._busy >= self.max_concurrency
            if not full:
                self._busy += 1
        if full:
            await send_error(send, 503, "busy", f"more than {self.max_concurrency} requests at "
                             "once (server.max_concurrency); retry shortly",
                             [(b"retry-after", b"1")])
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:  # the answer of last resort
            log.warning("server.internal_error", path=_path(scope),
                        error_type=type(exc).__name__, error=first_line(exc))
            if not started:
                await send_error(send, 500, "internal_error",
                                 "internal error; details in the server's log")
        finally:
            with self._lock:
                self._busy -= 1


def _path(scope: Scope) -> str:
    path = str(scope.get("path", ""))
    # The FlightAware path carries the secret token: never logged.
    head, found, _ = path.partition("/webhooks/flightaware/")
    return f"{head}/webhooks/flightaware/***" if found else path[:100]


__all__ = ["Limits", "error_body", "send_error"]
