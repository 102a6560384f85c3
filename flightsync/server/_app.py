"""The ASGI app of `flightsync serve` (README, "Webhook server"): Starlette routes over one
Engine, opened when the server starts and closed when it stops.

- ``POST /webhooks/flightsync``: a Standard Webhooks event, exactly as `ingest-webhook`.
- ``POST /webhooks/flightaware/{token}``: an AeroAPI alert delivery; the token is compared in
  constant time, the source address checked against ``server.allowed_networks``.
- ``GET /healthz``: 200, or 503 with the alert lines `status --check` prints.
- ``GET /metrics``: the Prometheus exposition of the metrics the textfile holds.

Bodies are read as they come, no further than ``server.max_body_bytes`` (413) and for at most
``server.request_timeout_seconds`` (408); the work itself runs in worker threads.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flightsync import config
from flightsync.errors import (
    ConfigError,
    InputError,
    StoreError,
    WebhookError,
    WebhookIdReusedError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from flightsync.server._intake import Answer, Intake
from flightsync.server._limits import Limits

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from flightsync.config import Settings

log = structlog.get_logger(__name__)

FLIGHTAWARE_PREFIX = "/webhooks/flightaware/"


def spool_dir(settings: Settings) -> Path:
    return settings.server.spool_dir or config.state_dir(settings) / "spool"


def create_app(settings: Settings, *, run_id: str) -> ASGIApp:
    """The whole app, limits outermost."""
    server = settings.server
    networks = tuple(ipaddress.ip_network(n, strict=False) for n in server.allowed_networks)
    holder: dict[str, Intake] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        from flightsync.engine import open_engine  # noqa: PLC0415

        with contextlib.ExitStack() as stack:
            engine = stack.enter_context(open_engine(
                settings, run_kind="serve", run_id=run_id,
                lock_wait_seconds=server.lock_wait_seconds))
            sqlite = engine.database.dialect == "sqlite"
            intake = Intake(engine, spool_dir(settings),
                            concurrent_writes=1 if sqlite else server.max_concurrency,
                            slot_wait_seconds=server.lock_wait_seconds)
            intake.start()
            stack.callback(intake.stop)
            holder["intake"] = intake
            log.info("server.started", spool=str(intake.spool), backlog=intake.backlog)
            yield

    def intake() -> Intake:
        return holder["intake"]

    def accepting() -> None:
        if not settings.enabled:  # FLIGHT_SYNC_ENABLED=false: refuse, so senders retry later
            raise _Refused(503, "disabled", "flightsync is switched off (FLIGHT_SYNC_ENABLED="
                           "false or enabled: false): events are not taken; retry later")

    async def flightsync_event(request: Request) -> Response:
        accepting()
        body = await _body(request, server.max_body_bytes, server.request_timeout_seconds)
        headers = {k: v for k, v in request.headers.items()}
        return _json(await _work(lambda: intake().flightsync_event(body, headers)))

    async def flightaware(request: Request) -> Response:
        token = settings.flightaware_alert_token
        accepting()
        if not token:
            raise _Refused(404, "not_enabled", "FlightAware deliveries are not enabled here "
                           "(FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN is not set)")
        given = str(request.path_params["token"])
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise _Refused(403, "wrong_token", "the token in the path is not this server's")
        if networks and not _allowed(request, networks):
            raise _Refused(403, "network_not_allowed", "the source address is not in "
                           "server.allowed_networks")
        body = await _body(request, server.max_body_bytes, server.request_timeout_seconds)
        return _json(await _work(lambda: intake().flightaware_delivery(body)))

    async def healthz(_request: Request) -> Response:
        data = await _work(intake().engine.status)
        alerts = list(data.get("alerts") or [])
        body = {"status": "alert" if alerts else "ok", "alerts": alerts,
                "spool_pending": intake().backlog}
        return JSONResponse(body, status_code=503 if alerts else 200)

    async def metrics(_request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST  # noqa: PLC0415

        from flightsync.engine._metrics import collect, render  # noqa: PLC0415

        text = await _work(lambda: render(collect(intake().engine)))
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[Route("/webhooks/flightsync", flightsync_event, methods=["POST"]),
                Route(FLIGHTAWARE_PREFIX + "{token}", flightaware, methods=["POST"]),
                Route("/healthz", healthz, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"])],
        exception_handlers={HTTPException: _http_error, _Refused: _refused},  # type: ignore[dict-item]
        lifespan=lifespan)
    return Limits(app, max_concurrency=server.max_concurrency)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _refused(_request: Request, exc: _Refused) -> Response:
    return _error(exc.status, exc.code, exc.message)


async def _http_error(_request: Request, exc: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {404: "no such endpoint (POST /webhooks/flightsync, POST "
                    "/webhooks/flightaware/TOKEN, GET /healthz, GET /metrics)",
               405: "method not allowed here"}.get(exc.status_code, str(exc.detail))
    response = _error(exc.status_code, codes.get(exc.status_code, "http_error"), message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body: 415 unless JSON, 413 past ``limit`` bytes (by Content-Length before
    anything is read), 408 when it has not arrived whole within ``timeout`` seconds."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise _Refused(415, "unsupported_media_type", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, "body_too_large", f"the body exceeds {limit} bytes "
                       "(server.max_body_bytes)")
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _Refused(413, "body_too_large", f"the body exceeds {limit} bytes "
                                   "(server.max_body_bytes)")
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(408, "request_timeout", f"the body did not arrive within {timeout:g} s "
                       "(server.request_timeout_seconds)") from None
    except ClientDisconnect:
        raise _Refused(400, "client_disconnected", "the client went away mid-body") from None
    return b"".join(chunks)


async def _work(call: Callable[[], Any]) -> Any:
    """``call`` in a worker thread, its errors as the JSON answers they stand for."""
    try:
        return await run_in_threadpool(call)
    except WebhookSignatureError as exc:
        raise _Refused(401, exc.code, exc.message) from None
    except WebhookIdReusedError as exc:
        raise _Refused(409, exc.code, exc.message) from None
    except (WebhookPayloadError, WebhookError, InputError) as exc:
        raise _Refused(400, exc.code, exc.message) from None
    except StoreError as exc:
        raise _Refused(503, exc.code, exc.message) from None
    except ConfigError as exc:  # the server's own set-up (a malformed secret): not the client's
        log.warning("server.config_error", error=exc.message)
        raise _Refused(500, exc.code, exc.message) from None


def _json(answer: Answer) -> Response:
    return JSONResponse(answer.body, status_code=answer.status)


def _allowed(request: Request, networks: tuple[Any, ...]) -> bool:
    host = request.client.host if request.client else None
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in networks)


__all__ = ["create_app", "spool_dir"]
