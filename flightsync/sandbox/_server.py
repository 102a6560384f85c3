"""The loopback HTTP server: one port, every provider's real paths, plus ``/_sandbox/*``.

A thread per connection, so a request's latency or a ``hang`` fault sleeps only its own
thread. Sleeps wait on the stop event, so ``stop()`` never waits for a hanging request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import structlog

from flightsync.errors import ConfigError
from flightsync.sandbox._aerodatabox import AeroDataBox
from flightsync.sandbox._afklm import AirFranceKlm
from flightsync.sandbox._amadeus import Amadeus
from flightsync.sandbox._aviationstack import Aviationstack
from flightsync.sandbox._base import Endpoint, Provider, Reply, Request, bearer
from flightsync.sandbox._british_airways import BritishAirways
from flightsync.sandbox._cirium import Cirium
from flightsync.sandbox._config import Fault, SandboxConfig
from flightsync.sandbox._fa_alerts import AlertDeliverer
from flightsync.sandbox._flightaware import FlightAware
from flightsync.sandbox._lufthansa import Lufthansa
from flightsync.sandbox._state import SandboxState
from flightsync.sandbox._truth import warm_up

log = structlog.get_logger(__name__)

_PROVIDERS: tuple[type[Provider], ...] = (Amadeus, Lufthansa, AirFranceKlm, BritishAirways,
                                          FlightAware, Cirium, Aviationstack, AeroDataBox)
_MALFORMED = b'{"data": [{"type": "DatedFlight", "flightDesignator": {"carrierCode": '
_WRONG_SHAPE = ["valid JSON", {"of": "the wrong shape"}, 42]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128    # benchmarks open many connections at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake every handler blocked on a keep-alive read so its thread ends."""
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60        # an idle keep-alive connection is closed after a minute
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and delayed
        # ACKs add ~40 ms to every answer, which would swamp the configured latency.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every request is counted in /_sandbox/stats; stderr stays quiet

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command, path=parts.path,
            query=dict(reversed(parse_qsl(parts.query, keep_blank_values=True))),
            headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        try:
            reply = self.server.sandbox.answer(request)
        except Exception as exc:  # a sandbox bug must not look like a dropped connection
            log.error("sandbox.internal_error", path=request.path, error=type(exc).__name__)
            reply = Reply.json(500, {"error": "sandbox internal error"})
        if reply is None:
            self.close_connection = True
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True  # the client gave up (a hang outlived its timeout)


class Sandbox:
    """The sandbox server. ``start()`` binds 127.0.0.1 (port 0: an ephemeral one) and serves
    from a background thread; ``stop()`` ends it. Also a context manager."""

    def __init__(self, config: SandboxConfig | None = None, *, port: int = 0,
                 host: str = "127.0.0.1") -> None:
        self._providers = {cls.name: cls() for cls in _PROVIDERS}
        self._routes: list[tuple[Provider, Endpoint]] = [
            (provider, endpoint) for provider in self._providers.values()
            for endpoint in provider.endpoints()]
        self._state = SandboxState(config or SandboxConfig(), self._providers)
        self._flightaware = cast(FlightAware, self._providers[FlightAware.name])
        # Alert deliveries leave from their own thread: a slow receiver never holds a request.
        self.deliverer = AlertDeliverer()
        self._address = (host, port)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SandboxConfig:
        return self._state.config

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> str:
        """Bind and serve in a background thread; returns the base URL."""
        if self._server is None:
            warm_up()  # load the airport table once, not in every concurrent first request
            self._stopping.clear()
            self._server = _Server(self._address, self)
            # A short poll interval keeps stop() quick; the loop is idle otherwise.
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                            name="flightsync-sandbox", daemon=True)
            self._thread.start()
            log.info("sandbox.started", base_url=self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving, wake sleeping requests and close every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
        self.deliverer.stop()
        log.info("sandbox.stopped")

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per provider: ``requests`` (data calls), ``token_requests`` and ``faults`` injected."""
        return self._state.stats()

    def request_times(self) -> dict[str, list[float]]:
        """Per provider: when each data call arrived (epoch seconds, oldest first), as
        ``GET /_sandbox/requests`` returns them: what a provider's own rate limit sees."""
        return self._state.request_times()

    def reset(self) -> None:
        """Zero the counters and restart every scripted fault's ``times``."""
        self._state.reset()

    def set_scenario(self, scenario: SandboxConfig | Mapping[str, Any]) -> None:
        """Put a new scenario in force: a whole config, or scenario keys (as in the YAML) that
        replace just those keys of the current one. Raises ConfigError when invalid."""
        if not isinstance(scenario, SandboxConfig):
            scenario = SandboxConfig.from_mapping(dict(scenario), base=self._state.config)
        before = self._state.config
        self._state.set_config(scenario)
        # A flight an alert watches that the new scenario changes: AeroAPI would push it.
        for delivery in self._flightaware.alert_deliveries(self._state, before, scenario):
            self.deliverer.send(delivery)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every alert delivery so far: ``alert_id``, ``event_code``, ``status``
        (``delivered``, ``failed``, ``dropped``), ``attempts``, ``status_code``."""
        return self.deliverer.outcomes()

    # -- one request --------------------------------------------------------------------

    def answer(self, request: Request) -> Reply | None:
        """The reply to ``request``; None means: drop the connection without answering."""
        if request.path.startswith("/_sandbox/"):
            return self._control(request)
        allowed = False
        for provider, endpoint in self._routes:
            match = endpoint.pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed = True
            if endpoint.method == request.method:
                return self._provider_call(provider, endpoint, match, request)
        if allowed:
            return Reply.json(405, {"error": "method not allowed"})
        return Reply.json(404, {"error": f"no sandbox endpoint at {request.path[:80]}"})

    def _provider_call(self, provider: Provider, endpoint: Endpoint, match: Any,
                       request: Request) -> Reply | None:
        state, name = self._state, provider.name
        if endpoint.kind != "alerts":  # alert management is no flight data call
            state.count(name, "token_requests" if endpoint.kind == "token" else "requests")
        self._stopping.wait(state.config.latency_for(name) / 1000)
        if endpoint.kind == "token":
            return endpoint.handler(request, state, match)
        refusal = provider.authenticate(request, state)
        if refusal is not None:
            return refusal
        fault = state.pick_fault(name, provider.target(request, match))
        if fault is not None:
            state.count(name, "faults")
            log.info("sandbox.fault", provider=name, kind=fault.kind)
            return self._fault(fault, provider, endpoint, match, request)
        if state.random_failure():
            state.count(name, "faults")
            return provider.server_error(503)
        return endpoint.handler(request, state, match)

    def _fault(  # noqa: PLR0911 - one answer per fault kind
            self, fault: Fault, provider: Provider, endpoint: Endpoint, match: Any,
            request: Request) -> Reply | None:
        kind = fault.kind
        if kind == "status_5xx":
            return provider.server_error(fault.status)
        if kind == "rate_limit":
            return provider.rate_limited(fault.retry_after)
        if kind == "not_found":
            return provider.not_found()
        if kind == "quota":
            return provider.quota_exhausted(request)
        if kind == "malformed_json":
            return Reply(200, _MALFORMED)
        if kind == "wrong_shape":
            return Reply.json(200, _WRONG_SHAPE)
        if kind == "connection_close":
            return None
        if kind == "expired_token":
            token = bearer(request, exact_case=False)
            if token is not None:
                self._state.expire(token)
            return provider.token_expired()
        # hang: answer normally, but only after the client has given up waiting.
        seconds = fault.seconds if fault.seconds is not None else self.config.hang_seconds
        self._stopping.wait(seconds)
        return endpoint.handler(request, self._state, match)

    def _control(self, request: Request) -> Reply:
        path, method = request.path, request.method
        reads: dict[str, Callable[[], Any]] = {
            "/_sandbox/stats": self.stats, "/_sandbox/requests": self.request_times,
            "/_sandbox/deliveries": lambda: {"deliveries": self.deliveries()}}
        if path in reads and method == "GET":
            return Reply.json(200, reads[path]())
        if path == "/_sandbox/reset" and method == "POST":
            self.reset()
            return Reply.json(200, {"reset": True})
        if path == "/_sandbox/scenario" and method == "POST":
            try:
                scenario = json.loads(request.body or b"{}")
                self.set_scenario(SandboxConfig.from_mapping(scenario, base=self.config))
            except ValueError:
                return Reply.json(400, {"error": "the scenario body is not valid JSON"})
            except ConfigError as exc:
                return Reply.json(400, {"error": exc.message})
            return Reply.json(200, {"scenario": "replaced"})
        return Reply.json(404, {"error": f"no sandbox control at {method} {path[:80]}"})
