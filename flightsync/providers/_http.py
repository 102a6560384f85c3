"""HTTP edge shared by every adapter: httpx errors and HTTP statuses mapped once, table-driven,
into the ProviderError tree (docs/ARCHITECTURE.md, providers), plus the time parsing every
format needs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from flightsync.errors import (
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)

if TYPE_CHECKING:
    import httpx


@cache
def _transport_errors() -> tuple[tuple[type[httpx.HTTPError], type[ProviderError], str], ...]:
    """Transport failures, most specific first; every httpx.HTTPError lands on one row.
    Built on first use: httpx (~0.1 s to import) loads only in a process that fetches."""
    import httpx  # noqa: PLC0415

    return (
        (httpx.TimeoutException, ProviderTimeout, "timed out"),
        (httpx.ConnectError, ProviderUnavailable, "connection failed"),
        (httpx.TransportError, ProviderUnavailable, "transport error"),
        (httpx.HTTPError, ProviderUnavailable, "HTTP error"),
    )


@contextmanager
def mapped_transport_errors(provider: str) -> Iterator[None]:
    """Turn any httpx exception raised inside the block into the matching ProviderError."""
    table = _transport_errors()
    try:
        yield
    except table[-1][0] as exc:
        for source, target, what in table:
            if isinstance(exc, source):
                raise target(f"{provider}: {what}: {type(exc).__name__}",
                             provider=provider) from exc
        raise  # pragma: no cover - the last row matches every httpx.HTTPError


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_status(response: httpx.Response, provider: str) -> None:
    """Map a non-2xx answer to the error tree. Adapters handle provider-specific bodies
    (e.g. Amadeus quota code 38195, token-expired 401s) before calling this.

    A 4xx other than 401/403/404/429 is ProviderRequestRejected: the provider answered and
    refused what we asked, which retrying cannot change and which says nothing about the
    provider's health (docs/CONTRACTS.md section 7). Other 1xx/3xx answers stay ProviderBadResponse:
    redirects are not followed, so one means a base URL that points somewhere else."""
    status = response.status_code
    if status < 300:
        return
    detail = response.text[:200].replace("\n", " ")
    if status == 404:
        raise FlightNotFound(f"{provider}: no such flight", provider=provider, status=status)
    if status == 429:
        raise ProviderRateLimited(f"{provider}: rate limited", provider=provider,
                                  retry_after=retry_after_seconds(response))
    if status in (401, 403):
        raise ProviderAuthError(f"{provider}: authorization refused ({status})",
                                provider=provider, status=status)
    if status >= 500:
        raise ProviderUnavailable(f"{provider}: server error {status}", provider=provider,
                                  status=status)
    if status >= 400:
        raise ProviderRequestRejected(f"{provider}: request rejected ({status}): {detail}",
                                      provider=provider, status=status)
    raise ProviderBadResponse(f"{provider}: unexpected status {status}: {detail}",
                              provider=provider, status=status)


def json_body(response: httpx.Response, provider: str) -> Any:
    """The decoded JSON body, or ProviderBadResponse naming the problem."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderBadResponse(f"{provider}: response is not valid JSON",
                                  provider=provider, status=response.status_code) from exc
    except RecursionError as exc:  # JSON nested thousands deep: the answer is at fault
        raise ProviderBadResponse(f"{provider}: response JSON is nested too deeply",
                                  provider=provider, status=response.status_code) from exc


def get_json(client: httpx.Client, provider: str, path: str, *,
             headers: Mapping[str, str], params: Mapping[str, str] | None = None,
             ) -> tuple[Any, httpx.Response]:
    """GET for the API-key providers: transport errors and HTTP statuses mapped into the
    error tree, the body decoded. Returns the body and the response (for its raw text)."""
    with mapped_transport_errors(provider):
        response = client.get(path, params=params, headers=headers)
    raise_for_status(response, provider)
    return json_body(response, provider), response


def parse_aware(text: str, provider: str, what: str) -> datetime:
    """An ISO 8601 time with an offset or ``Z`` (milliseconds allowed) as aware UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ProviderBadResponse(f"{provider}: bad time in {what}: {str(text)[:40]!r}",
                                  provider=provider) from exc
    if parsed.tzinfo is None:
        raise ProviderBadResponse(f"{provider}: time without offset in {what}: {text!r}",
                                  provider=provider)
    return parsed.astimezone(UTC)
