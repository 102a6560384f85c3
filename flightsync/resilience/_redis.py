"""Redis as a :class:`~flightsync.resilience._backend.Backend`: the state of every host that
points ``state_url`` at the same database (README, "Shared state").

Keys are ``<state_prefix>:<bucket>:<key>``; a tag's members are a set under
``<state_prefix>:<bucket>#tag:<tag>`` that lives as long as its longest entry. Updates are
optimistic transactions (``WATCH``/``MULTI``): of several hosts racing for a breaker's
half-open probe exactly one commits. The lock is redis-py's (``SET NX PX`` and a token checked
on release), so a host killed while holding it frees it after ``hold``.

Values are integers as decimal text (so ``INCRBY`` works on counters) or pickles, read back
through an allow-list of the plain types the state holds: whoever can write to the server can
make us read a wrong value, never run code. Every socket operation has a deadline; a failure
is one line (StoreError, exit 5), the URL's password never in it.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import io
import pickle
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import LockError, WatchError
from redis.retry import Retry

from flightsync import models
from flightsync.errors import StoreError
from flightsync.logs import redact_text, redact_url
from flightsync.resilience._backend import Bucket, Change, readable

CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0
_SCAN_COUNT = 500
_PICKLE = b"\x80"  # every pickle of protocol 2 or later starts with PROTO

_SET_TAGGED = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
local left = redis.call('PTTL', KEYS[2])
if left < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
"""
_EVICT = """
local members = redis.call('SMEMBERS', KEYS[1])
local removed = 0
for _, key in ipairs(members) do removed = removed + redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return removed
"""

_ALLOWED: dict[tuple[str, str], Any] = {
    **{("datetime", name): getattr(_dt, name)
       for name in ("datetime", "date", "time", "timedelta", "timezone")},
    **{("builtins", name): getattr(builtins, name) for name in ("set", "frozenset")},
    **{("flightsync.models", name): getattr(models, name)
       for name in ("FlightStatus", "SyncStatus")},
}


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused type {module}.{name}")
        return found


def encode(value: object) -> bytes:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    return pickle.dumps(value, protocol=5)


def decode(data: object) -> object | None:
    """What :func:`encode` wrote (``data`` is what redis-py returns: bytes or None)."""
    if data is None:
        return None
    if not isinstance(data, bytes):
        raise TypeError(f"not a stored value: {type(data).__name__}")
    if data[:1] == _PICKLE:
        value: object = _AllowListUnpickler(io.BytesIO(data)).load()
        return value
    return int(data)


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


class RedisBucket:
    """One bucket's keys in the shared database."""

    def __init__(self, backend: RedisBackend, name: str) -> None:
        self._backend = backend
        self._client = backend.client
        self._name = name
        self._prefix = f"{backend.prefix}:{name}:"
        self._tags = f"{backend.prefix}:{name}#tag:"
        self._set_tagged = self._client.register_script(_SET_TAGGED)
        self._evict = self._client.register_script(_EVICT)

    def _failed(self, exc: redis.RedisError) -> StoreError:
        return self._backend.failed(self._name, exc)

    def get(self, key: str) -> object | None:
        try:
            data = self._client.get(self._prefix + key)
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        return decode(data)

    def set(self, key: str, value: object, *, ttl: float | None = None,
            tag: str | None = None) -> None:
        full = self._prefix + key
        try:
            if tag is not None and ttl is not None:
                self._set_tagged(keys=[full, self._tags + tag], args=[encode(value), _ms(ttl)])
            elif tag is not None:
                with self._client.pipeline() as pipe:
                    pipe.set(full, encode(value))
                    pipe.sadd(self._tags + tag, full)
                    pipe.execute()
            else:
                self._client.set(full, encode(value), px=None if ttl is None else _ms(ttl))
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def delete(self, key: str) -> bool:
        try:
            return bool(self._client.delete(self._prefix + key))
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def incr(self, key: str, delta: int = 1) -> int:
        try:
            return int(cast("int", self._client.incrby(self._prefix + key, delta)))
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def update(self, key: str, change: Change) -> tuple[object | None, object | None]:
        full = self._prefix + key
        deadline = time.monotonic() + SOCKET_TIMEOUT_SECONDS
        attempt = 0
        try:
            with self._client.pipeline() as pipe:
                while True:
                    try:
                        pipe.watch(full)  # type: ignore[no-untyped-call]  # redis-py
                        data = pipe.get(full)
                        old = readable(partial(decode, data), (redis.RedisError,))
                        new = change(old)
                        if new == old:
                            pipe.unwatch()
                            return old, new
                        pipe.multi()
                        if new is None:
                            pipe.delete(full)
                        else:
                            pipe.set(full, encode(new))
                        pipe.execute()
                        return old, new
                    except WatchError:
                        # Another writer came first: decide again on its value, after a
                        # short random pause so that a busy writer cannot starve the others.
                        if time.monotonic() >= deadline:
                            break
                        attempt += 1
                        time.sleep(random.uniform(0, min(0.0005 * 2 ** attempt, 0.05)))  # noqa: S311 - jitter, not secrecy
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        raise StoreError(f"state store busy: {self._name}: {key} kept changing for "
                         f"{SOCKET_TIMEOUT_SECONDS:g} s")

    @contextmanager
    def lock(self, name: str, *, hold: float, wait: float) -> Iterator[bool]:
        lock = self._client.lock(f"{self._prefix}lock:{name}", timeout=hold,
                                 blocking_timeout=max(wait, 0.0), sleep=0.01)
        try:
            acquired = bool(lock.acquire())
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    lock.release()
                except LockError:
                    pass  # held past ``hold``: it expired and may be another's now
                except redis.RedisError as exc:
                    raise self._failed(exc) from exc

    def evict(self, tag: str) -> int:
        try:
            return int(self._evict(keys=[self._tags + tag]))
        except redis.RedisError as exc:
            raise self._failed(exc) from exc

    def _scan(self, pattern: str) -> list[bytes]:
        return list(self._client.scan_iter(match=pattern, count=_SCAN_COUNT))

    def keys(self) -> Iterator[str]:
        try:
            found = self._scan(self._prefix + "*")
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        start = len(self._prefix.encode())
        return iter([k[start:].decode("utf-8", "replace") for k in found
                     if not k[start:].startswith(b"lock:")])

    def clear(self) -> int:
        try:
            entries = self._scan(self._prefix + "*")
            tags = self._scan(self._tags + "*")
            everything = entries + tags
            for start in range(0, len(everything), _SCAN_COUNT):
                self._client.unlink(*everything[start:start + _SCAN_COUNT])
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        return len(entries)

    def size(self) -> tuple[int, int]:
        try:
            found = self._scan(self._prefix + "*")
            total = 0
            for start in range(0, len(found), _SCAN_COUNT):
                with self._client.pipeline(transaction=False) as pipe:
                    for key in found[start:start + _SCAN_COUNT]:
                        pipe.strlen(key)
                    total += sum(int(n) for n in pipe.execute())
        except redis.RedisError as exc:
            raise self._failed(exc) from exc
        return len(found), total

    @contextmanager
    def grouped(self) -> Iterator[None]:
        # Each write is one round trip already; nothing to gather.
        yield

    def close(self) -> None:
        """The connections belong to the backend."""


class RedisBackend:
    """The buckets in one Redis database, under ``<prefix>:``."""

    shared = True

    def __init__(self, url: str, prefix: str) -> None:
        self.where = redact_url(url)
        self.prefix = prefix
        try:
            self.client = redis.Redis.from_url(
                url, socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                # One quick retry (a pooled connection the server dropped), never a backoff
                # that would hold a run for seconds per call while the server is gone.
                retry=Retry(NoBackoff(), 1), health_check_interval=30)
        except (ValueError, redis.RedisError) as exc:
            raise StoreError(f"state store unavailable: {self.where}: "
                             f"{redact_text(str(exc))}") from exc
        self._buckets: dict[str, RedisBucket] = {}
        self._guard = threading.Lock()

    def failed(self, part: str, exc: redis.RedisError) -> StoreError:
        detail = redact_text(str(exc)).replace("\n", " ") or type(exc).__name__
        return StoreError(f"state store unavailable: {self.where}: {part}: {detail} "
                          "(check state_url / FLIGHTSYNC_STATE_URL)")

    def bucket(self, name: str) -> Bucket:
        found = self._buckets.get(name)
        if found is None:
            with self._guard:
                found = self._buckets.setdefault(name, RedisBucket(self, name))
        return found

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise self.failed("ping", exc) from exc

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisBackend({self.where!r})"
