"""The transport of every provider client: a hard deadline on the whole exchange and a cap
on the size of an answer, so no adapter (built in or plugin) needs code of its own.

httpx's timeouts bound each socket operation (connect, one read, one write), never a whole
exchange: an answer trickled a byte at a time, or a chunked body that never ends, keeps a call
alive without limit. :class:`DeadlineTransport` opens a deadline per request when the engine
has not opened one for the whole call (:mod:`flightsync.providers._deadline`), clamps the
request's httpx timeouts to what is left, and runs httpx's own transport over a network backend
that clamps every single connect, read and write to what is left then, refusing to start one
once the deadline has passed. httpcore raises the matching timeout, which
``_http.mapped_transport_errors`` turns into ProviderTimeout.

The answer's size is counted while it streams in, so a 40 MB answer costs at most the cap in
memory before it is refused as ProviderBadResponse. Provider clients ask for uncompressed
answers (``Accept-Encoding: identity``), so the bytes counted are the bytes decoded; an answer
compressed anyway is refused rather than decoded without a bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from flightsync.errors import ProviderBadResponse
from flightsync.providers._deadline import current_deadline, provider_deadline, seconds_left

if TYPE_CHECKING:
    import ssl


def _clamp(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    left = seconds_left()
    if left is None:
        return timeout
    if left <= 0:
        raise expired("the provider call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the current deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(
            ssl_context, server_hostname, _clamp(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend with every connection a :class:`_DeadlineStream`."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_tcp(
            host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address,
            socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                            ) -> httpcore.NetworkStream:  # pragma: no cover - no UDS clients
        return _DeadlineStream(self._backend.connect_unix_socket(
            path, _clamp(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore retries only
        self._backend.sleep(seconds)


class _CappedBody(httpx.SyncByteStream):
    """A response body read under the request's deadline and refused past ``limit`` bytes."""

    def __init__(self, inner: httpx.SyncByteStream, at: float, limit: int,
                 provider: str) -> None:
        self._inner = inner
        self._at = at
        self._limit = limit
        self._provider = provider

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        chunks = iter(self._inner)
        while True:
            # The context variable is set around each read only: this generator is resumed
            # from the caller's context, which may have left the call's deadline block.
            with provider_deadline(self._at):
                chunk = next(chunks, None)
            if chunk is None:
                return
            seen += len(chunk)
            if seen > self._limit:
                raise ProviderBadResponse(
                    f"{self._provider}: answer larger than {self._limit} bytes "
                    "(http.max_response_bytes)", provider=self._provider)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport over :class:`_DeadlineBackend`, with the deadline and the size cap
    applied to every request of one provider's client."""

    def __init__(self, *, provider: str, verify: ssl.SSLContext, limits: httpx.Limits,
                 deadline_seconds: float, max_response_bytes: int) -> None:
        super().__init__(verify=verify, limits=limits)
        # httpx takes no network backend yet (encode/httpx#3180, PR #3749): the pool is
        # rebuilt the way HTTPTransport builds it (no proxy, HTTP/1.1) with ours.
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, http1=True, http2=False,
            network_backend=_DeadlineBackend())
        self._provider = provider
        self._seconds = deadline_seconds
        self._limit = max_response_bytes

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        at = time.monotonic() + self._seconds
        with provider_deadline(at):
            at = current_deadline() or at
            left = max(at - time.monotonic(), 0.0)
            # The pool wait and the first operations are clamped here too; the backend
            # clamps each later one to what is left then.
            timeouts = dict(request.extensions.get("timeout", {}))
            for phase in ("connect", "read", "write", "pool"):
                configured = timeouts.get(phase)
                timeouts[phase] = left if configured is None else min(configured, left)
            request.extensions["timeout"] = timeouts
            response = super().handle_request(request)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            response.close()
            raise ProviderBadResponse(
                f"{self._provider}: answer compressed ({encoding[:20]}) although "
                "uncompressed was asked for", provider=self._provider,
                status=response.status_code)
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _CappedBody(response.stream, at, self._limit, self._provider)
        return response
