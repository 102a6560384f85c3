"""The state directory as a :class:`~flightsync.resilience._backend.Backend`: one diskcache
folder per bucket (SQLite in WAL mode), shared by every process and thread on the host.

Updates run inside a diskcache transaction (SQLite ``BEGIN IMMEDIATE``), so of several
processes racing for a breaker's half-open probe exactly one wins. The lock is an entry added
only when absent, with an expiry, so a holder killed mid-way frees it after ``hold``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import diskcache

from flightsync.errors import StoreError
from flightsync.resilience._backend import Bucket, Change, readable
from flightsync.resilience._state_dir import (
    DISK_FAILURES,
    disk_failure,
    open_private_cache,
    store_errors,
)

# Observations are dropped per flight by tag (webhooks, conflict resolution): index it.
_SETTINGS: dict[str, dict[str, object]] = {"cache": {"tag_index": True}}
_LOCK_POLL_SECONDS = 0.005


class DiskBucket:
    """One diskcache folder, opened on first use (a cached sync never opens the breakers)."""

    def __init__(self, directory: Path, name: str, **settings: object) -> None:
        self._directory = directory
        self._name = name
        self._settings = {**_SETTINGS.get(name, {}), **settings}
        self._guard = threading.Lock()
        self._cache: diskcache.Cache | None = None

    @property
    def raw(self) -> diskcache.Cache:
        cache = self._cache
        if cache is None:
            with self._guard:
                if self._cache is None:
                    self._cache = open_private_cache(self._directory, **self._settings)
                cache = self._cache
        return cache

    def _failed(self, exc: Exception) -> StoreError:
        return disk_failure(self._name, exc)

    def get(self, key: str) -> object | None:
        try:
            value: object = self.raw.get(key, retry=True)
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc
        return value

    def set(self, key: str, value: object, *, ttl: float | None = None,
            tag: str | None = None) -> None:
        try:
            self.raw.set(key, value, expire=ttl, tag=tag, retry=True)
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    def delete(self, key: str) -> bool:
        try:
            return bool(self.raw.delete(key, retry=True))
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    def incr(self, key: str, delta: int = 1) -> int:
        try:
            return int(self.raw.incr(key, delta, retry=True))
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    def update(self, key: str, change: Change) -> tuple[object | None, object | None]:
        cache = self.raw
        try:
            with cache.transact(retry=True):
                old = readable(lambda: cache.get(key, retry=True), DISK_FAILURES)
                new = change(old)
                if new != old:
                    if new is None:
                        cache.delete(key, retry=True)
                    else:
                        cache.set(key, new, retry=True)
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc
        return old, new

    @contextmanager
    def lock(self, name: str, *, hold: float, wait: float) -> Iterator[bool]:
        cache = self.raw
        key = f"lock:{name}"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + max(wait, 0.0)
        try:
            while not (acquired := bool(cache.add(key, token, expire=hold, retry=True))):
                if time.monotonic() >= deadline:
                    break
                time.sleep(_LOCK_POLL_SECONDS)
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc
        try:
            yield acquired
        finally:
            if acquired:
                with store_errors(self._name), cache.transact(retry=True):
                    # Only our own lock: past ``hold`` another may hold it now.
                    if cache.get(key, retry=True) == token:
                        cache.delete(key, retry=True)

    def evict(self, tag: str) -> int:
        try:
            return int(self.raw.evict(tag, retry=True))
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    def keys(self) -> Iterator[str]:
        try:
            found = [k for k in self.raw.iterkeys() if isinstance(k, str)]
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc
        return iter(found)

    def clear(self) -> int:
        try:
            return int(self.raw.clear(retry=True))
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    def size(self) -> tuple[int, int]:
        try:
            cache = self.raw
            return len(cache), int(cache.volume())
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    @contextmanager
    def grouped(self) -> Iterator[None]:
        try:
            with self.raw.transact(retry=True):
                yield
        except DISK_FAILURES as exc:
            raise self._failed(exc) from exc

    def close(self) -> None:
        with self._guard:
            cache, self._cache = self._cache, None
        if cache is not None:
            cache.close()


class DiskBackend:
    """The buckets as folders of the state directory (0700, files 0600)."""

    shared = False

    def __init__(self, state_dir: Path, *, cache_size_limit: int | None = None) -> None:
        # Made and checked (0700, writable) by StateStore.
        self.path = Path(state_dir)
        # The cache folder's size limit (bytes; None: diskcache's own 1 GB): culled oldest
        # stored first, diskcache's default eviction policy.
        self._extra: dict[str, dict[str, object]] = {} if cache_size_limit is None else {
            "cache": {"size_limit": cache_size_limit,
                      "eviction_policy": "least-recently-stored"}}
        self.where = str(self.path)
        self._buckets: dict[str, DiskBucket] = {}
        self._guard = threading.Lock()

    def bucket(self, name: str) -> Bucket:
        found = self._buckets.get(name)
        if found is None:
            with self._guard:
                found = self._buckets.setdefault(name, DiskBucket(
                    self.path / name, name, **self._extra.get(name, {})))
        return found

    def ping(self) -> None:
        """The directory was checked when the backend was made."""

    def close(self) -> None:
        with self._guard:
            buckets = list(self._buckets.values())
        for found in buckets:
            found.close()

    def __repr__(self) -> str:
        return f"DiskBackend({self.where!r})"
