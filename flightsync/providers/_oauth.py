"""OAuth2 client-credentials tokens, kept in a :class:`~flightsync.providers.base.TokenStore`
so that every process and thread on the state directory - and, with ``state_url``, every
host sharing Redis - uses one token per provider and account until shortly before it
expires, and only one of them fetches the next (a lock with a deadline, README "Shared
state")."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import diskcache
import structlog

from flightsync.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.providers._deadline import seconds_left
from flightsync.providers._http import json_body, mapped_transport_errors, retry_after_seconds
from flightsync.providers.base import TokenSource, TokenStore

if TYPE_CHECKING:  # only annotations: see providers/_http.py
    import httpx

log = structlog.get_logger(__name__)

REFRESH_MARGIN_SECONDS = 60.0
_LOCK_POLL_SECONDS = 0.005
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    # One lock per cache key for the whole process, so separate instances agree too.
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def open_private_cache(directory: Path) -> diskcache.Cache:
    """A diskcache at ``directory`` readable only by the owner (directory 0700, files 0600)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    cache = diskcache.Cache(str(directory))
    restrict_files(directory)
    return cache


def restrict_files(directory: Path) -> None:
    """chmod 0600 every file diskcache created (SQLite adds -wal/-shm files lazily)."""
    for path in directory.iterdir():
        if path.is_file() and (path.stat().st_mode & 0o777) != 0o600:
            path.chmod(0o600)


class DirectoryTokens:
    """A TokenStore on ``<state_dir>/tokens`` for a token source built without the engine's
    state store (tests, ``build_providers`` alone): the same folder, keys and lock entry as
    the state directory's ``tokens`` bucket, so both agree."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cache = open_private_cache(directory)

    def get(self, key: str) -> object | None:
        value: object = self._cache.get(key)
        return value

    def set(self, key: str, value: object, *, ttl: float | None = None,
            tag: str | None = None) -> None:
        self._cache.set(key, value, expire=ttl, tag=tag)
        restrict_files(self._directory)

    def delete(self, key: str) -> bool:
        return bool(self._cache.delete(key))

    @contextmanager
    def lock(self, name: str, *, hold: float, wait: float) -> Iterator[bool]:
        key, token = f"lock:{name}", secrets.token_hex(8)
        deadline = time.monotonic() + max(wait, 0.0)
        while not (acquired := bool(self._cache.add(key, token, expire=hold, retry=True))):
            if time.monotonic() >= deadline:
                break
            time.sleep(_LOCK_POLL_SECONDS)
        try:
            yield acquired
        finally:
            if acquired:
                with self._cache.transact(retry=True):
                    if self._cache.get(key) == token:
                        self._cache.delete(key)

    def close(self) -> None:
        self._cache.close()


def token_key(provider: str, base_url: str, client_id: str, client_secret: str) -> str:
    """The cache key of a token: provider, base URL and a hash of the credentials. The secret
    is part of it so that a changed secret never reuses a token fetched with the old one: a
    wrong new secret must fail at once, not after the old token expires."""
    account = hashlib.sha256(f"{client_id}\0{client_secret}".encode()).hexdigest()[:16]
    return f"oauth:{provider}:{base_url.rstrip('/')}:{account}"


def _usable(entry: object) -> dict[str, Any] | None:
    if (not isinstance(entry, dict) or not isinstance(entry.get("access_token"), str)
            or not isinstance(entry.get("expires_at"), int | float)):
        return None
    return entry


def cached_status(store: TokenStore, key: str,
                  now: float) -> tuple[bool, datetime | None]:
    """(a usable token is cached under ``key``, its expiry time), read without a client."""
    entry = _usable(store.get(key))
    if entry is None:
        return False, None
    expires_at = float(entry["expires_at"])
    return now < expires_at - REFRESH_MARGIN_SECONDS, datetime.fromtimestamp(expires_at, UTC)


class OAuthTokenSource:
    """base.TokenSource for a client-credentials token endpoint.

    The cached entry is ``{"access_token", "expires_at"}`` (epoch seconds) under a key made of
    the provider, the base URL and a hash of the credentials; it is reused until
    ``REFRESH_MARGIN_SECONDS`` before expiry. ``store``: the state store's ``tokens`` bucket;
    None keeps the tokens in ``<state_dir>/tokens`` (:class:`DirectoryTokens`).
    """

    def __init__(self, client: httpx.Client, *, provider: str, token_path: str,
                 client_id: str, client_secret: str, state_dir: Path | None = None,
                 clock: Callable[[], float] = time.time, base_url: str | None = None,
                 store: TokenStore | None = None) -> None:
        self._client = client
        self._provider = provider
        self._token_path = token_path
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._own: DirectoryTokens | None = None
        if store is None:
            if state_dir is None:
                raise ValueError("an OAuth token source needs a store or a state directory")
            store = self._own = DirectoryTokens(state_dir / "tokens")
        self._cache: TokenStore = store
        # ``base_url`` as configured: build_providers reads token status by the same key
        # without building a client.
        self._key = token_key(provider, base_url or str(client.base_url), client_id,
                              client_secret)

    def __repr__(self) -> str:
        return f"OAuthTokenSource(provider={self._provider!r}, path={self._token_path!r})"

    def token(self) -> str:
        """A valid access token: the cached one, or a fresh one fetched under a lock."""
        cached = self._cached()
        if cached is not None:
            return cached
        with self._locked():
            # Another thread, process or host may have refreshed while we waited for the lock.
            cached = self._cached()
            if cached is not None:
                return cached
            access_token, expires_in = self._request_token()
            expires_at = self._clock() + expires_in
            self._cache.set(self._key, {"access_token": access_token, "expires_at": expires_at},
                            ttl=max(expires_in, 1.0))
            log.info("provider.token.refreshed", provider=self._provider,
                     expires_at=datetime.fromtimestamp(expires_at, UTC).isoformat())
            return access_token

    def invalidate(self, rejected: str) -> None:
        """Drop the cached token only if it is still ``rejected``: a second thread reporting the
        same refusal after someone refreshed must not throw the new token away."""
        with self._locked():
            entry = self._entry()
            if entry is not None and hmac.compare_digest(entry["access_token"], rejected):
                self._cache.delete(self._key)
                log.info("provider.token.invalidated", provider=self._provider)

    def status(self) -> tuple[bool, datetime | None]:
        """(a usable token is cached, its expiry time) without contacting the provider."""
        return cached_status(self._cache, self._key, self._clock())

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    def _entry(self) -> dict[str, Any] | None:
        return _usable(self._cache.get(self._key))

    def _cached(self) -> str | None:
        entry = self._entry()
        if entry is None or self._clock() >= float(entry["expires_at"]) - REFRESH_MARGIN_SECONDS:
            return None
        token: str = entry["access_token"]
        return token

    @contextmanager
    def _locked(self) -> Iterator[None]:
        timeout = self._client.timeout.read or 30.0
        thread_lock = _thread_lock(self._key)
        # Another thread refreshing holds the lock at most until its own call's deadline;
        # this call waits no longer than its own.
        left = seconds_left()
        if not thread_lock.acquire(timeout=-1 if left is None else max(left, 0.0)):
            raise ProviderTimeout(f"{self._provider}: deadline passed waiting for the token "
                                  "another thread is fetching", provider=self._provider)
        try:
            # Across processes and hosts: one fetches, the others wait for its token; the
            # lock frees itself if the holder dies, and nobody waits past their deadline.
            hold = timeout + 5
            left = seconds_left()
            with self._cache.lock(self._key, hold=hold,
                                  wait=hold if left is None else max(left, 0.0)) as held:
                if not held and self._cached() is None:
                    raise ProviderTimeout(f"{self._provider}: deadline passed waiting for the "
                                          "token another process is fetching",
                                          provider=self._provider)
                yield
        finally:
            thread_lock.release()

    def _request_token(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._client_secret}
        with mapped_transport_errors(self._provider):
            response = self._client.post(self._token_path, data=form,
                                         headers={"Accept": "application/json"})
        _raise_for_token_status(response, self._provider)
        body = json_body(response, self._provider)
        return _parse_token(body, self._provider)


def _raise_for_token_status(response: httpx.Response, provider: str) -> None:
    # The body is never quoted whole: a misbehaving endpoint could echo the form back.
    status = response.status_code
    if status < 300:
        return
    reason = _oauth_error(response)
    if status in (400, 401, 403):
        log.warning("provider.token.refused", provider=provider, status=status, error=reason)
        raise ProviderAuthError(f"{provider}: token endpoint refused the credentials "
                                f"({status} {reason}); check the client id and secret",
                                provider=provider, status=status)
    if status == 429:
        raise ProviderRateLimited(f"{provider}: token endpoint rate limited", provider=provider,
                                  retry_after=retry_after_seconds(response))
    if status >= 500:
        raise ProviderUnavailable(f"{provider}: token endpoint error {status}",
                                  provider=provider, status=status)
    if 400 <= status < 500 and status != 404:
        # 405, 415, 422 ...: the endpoint refuses this request; retrying cannot help and
        # the provider is up (docs/CONTRACTS.md section 7), so the breaker does not count it.
        raise ProviderRequestRejected(f"{provider}: token endpoint rejected the request "
                                      f"({status} {reason}); check the base URL",
                                      provider=provider, status=status)
    raise ProviderBadResponse(f"{provider}: token endpoint answered {status} ({reason}); "
                              "check the base URL", provider=provider, status=status)


def _oauth_error(response: httpx.Response) -> str:
    """The short ``error`` code of an OAuth error body (e.g. invalid_client), if any."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # deeply nested JSON: no usable error body either
        return "no error code"
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, str) and error.isascii() and len(error) <= 40:
        return error
    return "no error code"


def _parse_token(body: Any, provider: str) -> tuple[str, float]:
    if not isinstance(body, Mapping):
        raise ProviderBadResponse(f"{provider}: token response is not an object",
                                  provider=provider)
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderBadResponse(f"{provider}: token response has no access_token",
                                  provider=provider)
    raw_expiry = body.get("expires_in")
    expires_in: float | None = None
    if isinstance(raw_expiry, int | float | str) and not isinstance(raw_expiry, bool):
        try:
            expires_in = float(raw_expiry)
        except ValueError:
            expires_in = None
    if expires_in is None or expires_in <= 0:
        raise ProviderBadResponse(f"{provider}: token response has no valid expires_in",
                                  provider=provider)
    return access_token, expires_in


def bearer_get(client: httpx.Client, tokens: TokenSource, provider: str, path: str, *,
               params: Mapping[str, str] | None = None,
               headers: Mapping[str, str] | None = None,
               rejected: Callable[[httpx.Response], bool] = lambda r: r.status_code == 401,
               ) -> httpx.Response:
    """GET with ``Authorization: Bearer`` (capital B: Lufthansa insists). When the answer says
    the token was refused, invalidate it and try exactly once more with a fresh one."""
    response: httpx.Response | None = None
    for attempt in range(2):
        token = tokens.token()
        sent = {**(headers or {}), "Authorization": f"Bearer {token}"}
        with mapped_transport_errors(provider):
            response = client.get(path, params=params, headers=sent)
        if attempt == 0 and rejected(response):
            log.info("provider.token.rejected", provider=provider, status=response.status_code)
            tokens.invalidate(token)
            continue
        break
    assert response is not None
    return response

