"""OAuthTokenSource: one cached token shared across instances, refreshed before expiry or
once after a rejection, private files, errors mapped, the token never leaked."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from pytest_httpx import HTTPXMock
from structlog.testing import capture_logs

from flightsync.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.providers import OAuthTokenSource
from flightsync.providers._oauth import REFRESH_MARGIN_SECONDS

FIXTURES = Path(__file__).parent / "fixtures" / "amadeus"
BASE = "https://test.api.amadeus.com"
TOKEN_URL = f"{BASE}/v1/security/oauth2/token"
SECRET = "s3cr3t-client-secret"


class FakeClock:
    """A settable clock so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def token_body(token: str, expires_in: int = 1799) -> dict[str, object]:
    body = json.loads((FIXTURES / "token.json").read_text())
    body["access_token"] = token
    body["expires_in"] = expires_in
    return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE) as c:
        yield c


def make_source(client: httpx.Client, state_dir: Path, clock: FakeClock) -> OAuthTokenSource:
    return OAuthTokenSource(client, provider="amadeus", token_path="/v1/security/oauth2/token",
                            client_id="my-client", client_secret=SECRET, state_dir=state_dir,
                            clock=clock)


def test_token_request_is_a_client_credentials_form(httpx_mock: HTTPXMock, client: httpx.Client,
                                                    state_dir: Path, clock: FakeClock) -> None:
    """The token is fetched with a form POST carrying grant_type, client_id and secret."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-1"))
    assert make_source(client, state_dir, clock).token() == "tok-1"
    [request] = httpx_mock.get_requests()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"], "client_id": ["my-client"],
        "client_secret": [SECRET]}


def test_two_instances_on_one_state_dir_share_one_token(
        httpx_mock: HTTPXMock, client: httpx.Client, state_dir: Path, clock: FakeClock) -> None:
    """A second source on the same state dir (another process) reuses the cached token."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-shared"))
    first = make_source(client, state_dir, clock)
    with httpx.Client(base_url=BASE) as other_client:
        second = make_source(other_client, state_dir, clock)
        assert first.token() == "tok-shared"
        assert second.token() == "tok-shared"
        second.close()
    first.close()
    assert len(httpx_mock.get_requests()) == 1


def test_token_is_refreshed_shortly_before_expiry(httpx_mock: HTTPXMock, client: httpx.Client,
                                                  state_dir: Path, clock: FakeClock) -> None:
    """The cached token is reused until REFRESH_MARGIN_SECONDS before expiry, then replaced."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-1", 1799))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-2", 1799))
    source = make_source(client, state_dir, clock)
    assert source.token() == "tok-1"
    clock.now += 1799 - REFRESH_MARGIN_SECONDS - 1
    assert source.token() == "tok-1"
    clock.now += 2
    assert source.token() == "tok-2"
    assert len(httpx_mock.get_requests()) == 2


def test_invalidate_drops_only_the_rejected_token(httpx_mock: HTTPXMock, client: httpx.Client,
                                                  state_dir: Path, clock: FakeClock) -> None:
    """A rejected token is refreshed once; a late second report of the same old token does not
    throw the fresh one away."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-old"))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-new"))
    source = make_source(client, state_dir, clock)
    old = source.token()
    source.invalidate(old)
    assert source.token() == "tok-new"
    source.invalidate(old)
    assert source.token() == "tok-new"
    assert len(httpx_mock.get_requests()) == 2


def test_concurrent_threads_fetch_one_token(httpx_mock: HTTPXMock, client: httpx.Client,
                                            state_dir: Path, clock: FakeClock) -> None:
    """Eight threads asking at once for a token cause one token request."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-once"))
    source = make_source(client, state_dir, clock)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(source.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["tok-once"] * 8
    assert len(httpx_mock.get_requests()) == 1


def test_token_files_are_private(httpx_mock: HTTPXMock, client: httpx.Client, state_dir: Path,
                                 clock: FakeClock) -> None:
    """The tokens directory is 0700 and every file in it 0600."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-1"))
    make_source(client, state_dir, clock).token()
    directory = state_dir / "tokens"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = [p for p in directory.iterdir() if p.is_file()]
    assert files
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {
        p.name: 0o600 for p in files}


def test_status_reports_validity_and_expiry(httpx_mock: HTTPXMock, client: httpx.Client,
                                            state_dir: Path, clock: FakeClock) -> None:
    """status() is (False, None) before any token, then (True, fetch time + expires_in)."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-1", 1799))
    source = make_source(client, state_dir, clock)
    assert source.status() == (False, None)
    fetched = clock.now
    source.token()
    assert source.status() == (True, datetime.fromtimestamp(fetched + 1799, UTC))
    clock.now += 1799
    assert source.status()[0] is False


@pytest.mark.parametrize("fixture", ["token_error_invalid_client.json",
                                     "token_error_unsupported_grant.json"])
def test_refused_credentials_raise_auth_error_without_secrets(
        httpx_mock: HTTPXMock, client: httpx.Client, state_dir: Path, clock: FakeClock,
        fixture: str) -> None:
    """Documented token errors (401 invalid_client, 400 unsupported_grant_type) raise
    ProviderAuthError naming the OAuth error code but never the secret."""
    body = json.loads((FIXTURES / fixture).read_text())
    httpx_mock.add_response(method="POST", url=TOKEN_URL,
                            status_code=401 if body["error"] == "invalid_client" else 400,
                            json=body)
    with pytest.raises(ProviderAuthError) as caught:
        make_source(client, state_dir, clock).token()
    assert body["error"] in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value.context)


@pytest.mark.parametrize(("response", "expected"), [
    (httpx.Response(503, text="down"), ProviderUnavailable),
    (httpx.Response(429, headers={"Retry-After": "7"}), ProviderRateLimited),
    (httpx.Response(200, text="<html>not json"), ProviderBadResponse),
    (httpx.Response(200, json={"token_type": "Bearer", "expires_in": 100}), ProviderBadResponse),
    (httpx.Response(200, json={"access_token": "x", "expires_in": "soon"}), ProviderBadResponse),
    (httpx.Response(200, json=["not", "an", "object"]), ProviderBadResponse),
    (httpx.Response(404, text="no route"), ProviderBadResponse),
])
def test_token_endpoint_faults_are_mapped(httpx_mock: HTTPXMock, client: httpx.Client,
                                          state_dir: Path, clock: FakeClock,
                                          response: httpx.Response,
                                          expected: type[Exception]) -> None:
    """5xx, 429, non-JSON and wrong-shape token answers become the matching ProviderError."""
    httpx_mock.add_callback(lambda request: response, method="POST", url=TOKEN_URL)
    with pytest.raises(expected) as caught:
        make_source(client, state_dir, clock).token()
    if isinstance(caught.value, ProviderRateLimited):
        assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(("exception", "expected"), [
    (httpx.ReadTimeout("slow"), ProviderTimeout),
    (httpx.ConnectError("refused"), ProviderUnavailable),
])
def test_token_transport_errors_are_mapped(httpx_mock: HTTPXMock, client: httpx.Client,
                                           state_dir: Path, clock: FakeClock,
                                           exception: Exception,
                                           expected: type[Exception]) -> None:
    """Timeouts and refused connections at the token endpoint become ProviderErrors."""
    httpx_mock.add_exception(exception, method="POST", url=TOKEN_URL)
    with pytest.raises(expected):
        make_source(client, state_dir, clock).token()


def test_token_never_in_repr_or_logs(httpx_mock: HTTPXMock, client: httpx.Client,
                                     state_dir: Path, clock: FakeClock) -> None:
    """Neither the access token nor the secret appears in the repr or any log event."""
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-hidden"))
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json=token_body("tok-hidden-2"))
    source = make_source(client, state_dir, clock)
    with capture_logs() as events:
        token = source.token()
        source.invalidate(token)
        source.token()
    assert events, "refresh and invalidation are logged"
    dumped = repr(events) + repr(source)
    for secret in ("tok-hidden", SECRET):
        assert secret not in dumped
