"""The state directory: private diskcache folders shared by every process on the host.

Layout under ``state_dir`` (0700): ``breakers/``, ``cache/`` and ``counters/``, each a diskcache
``Cache`` (SQLite in WAL mode, so many processes and threads may use it at once). Every file is
0600: SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file, and values are
kept inside the database (never as side files) so nothing else is created.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import diskcache
import structlog

from flightsync.errors import StoreError

log = structlog.get_logger(__name__)

_DIR_MODE = 0o700
_FILE_MODE = 0o600
# Values up to this size stay inside SQLite; diskcache would otherwise write larger ones as
# separate files with the process umask, outside our control over permissions.
_INLINE_LIMIT = 2**30
_SQLITE_TIMEOUT_SECONDS = 30.0

# os.umask is process-wide: serialize our changes so two threads opening caches at once cannot
# leave the tightened mask behind, or restore a stale one.
_UMASK_LOCK = threading.Lock()

CACHE_NAMES: tuple[str, ...] = ("breakers", "cache", "counters")
# Observations are dropped per flight by tag (webhooks, conflict resolution): index it.
_SETTINGS: dict[str, dict[str, object]] = {"cache": {"tag_index": True}}


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn I/O failures of the state directory into StoreError (exit 5), one line."""
    try:
        yield
    except (OSError, sqlite3.Error, diskcache.Timeout) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        message = (f"state directory unavailable: {what}: {detail or type(exc).__name__} "
                   "(set FLIGHTSYNC_STATE_DIR or state_dir to a writable directory)")
        raise StoreError(message.replace("\n", " ")) from exc


# What a damaged value can raise when diskcache unpickles it or we add to it: nearly anything
# (pickle runs opcodes). The state directory's own failures (OSError, sqlite3.Error, Timeout)
# are not among them: those stay StoreError, exit 5.
_STORE_FAILURES = (OSError, sqlite3.Error, diskcache.Timeout)


def read_entry(cache: diskcache.Cache, key: str, *, part: str) -> object | None:
    """The value stored under ``key``, or None (with a warning) when it cannot be read back:
    unreadable state is treated as absent, never as a crash of every later command."""
    try:
        value: object = cache.get(key, retry=True)
        return value
    except _STORE_FAILURES:
        raise
    except Exception as exc:  # see _STORE_FAILURES
        unreadable(part, key, exc)
        return None


def unreadable(part: str, key: str, problem: Exception | str) -> None:
    """Log that an entry of the state directory was damaged and what is assumed instead."""
    detail = problem if isinstance(problem, str) else type(problem).__name__
    log.warning("state.unreadable", part=part, key=key, problem=detail,
                assumed="closed" if part == "breakers" else "reset")


def add_to_counter(cache: diskcache.Cache, key: str, delta: int) -> None:
    """Add ``delta`` to a counter atomically; a damaged counter starts again from ``delta``."""
    try:
        cache.incr(key, delta, retry=True)
    except _STORE_FAILURES:
        raise
    except Exception as exc:  # see _STORE_FAILURES
        unreadable("counters", key, exc)
        cache.set(key, delta, retry=True)


def read_counter(cache: diskcache.Cache, key: str) -> int:
    """A counter's value; 0 (with a warning) when it is damaged."""
    value = read_entry(cache, key, part="counters")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        unreadable("counters", key, f"not a count: {type(value).__name__}")
        return 0
    return value


@contextmanager
def _private_umask() -> Iterator[None]:
    with _UMASK_LOCK:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)


def _make_private_dir(path: Path) -> None:
    with _private_umask():
        path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != _DIR_MODE:
        path.chmod(_DIR_MODE)


def _chmod_files(directory: Path) -> None:
    """Tighten files a previous version (or a looser umask) may have left readable."""
    for entry in directory.iterdir():
        if entry.is_file() and entry.stat().st_mode & 0o777 != _FILE_MODE:
            entry.chmod(_FILE_MODE)


def open_private_cache(directory: Path, **settings: object) -> diskcache.Cache:
    """A diskcache ``Cache`` in ``directory`` whose folder is 0700 and files 0600."""
    with store_errors(str(directory)):
        _make_private_dir(directory)
        with _private_umask():
            cache = diskcache.Cache(str(directory), timeout=_SQLITE_TIMEOUT_SECONDS,
                                    disk_min_file_size=_INLINE_LIMIT, **settings)
        _chmod_files(directory)
    return cache


class StateStore:
    """The state directory and its caches, opened lazily (a cached sync never opens breakers).

    Safe to share between threads; every process opens its own (diskcache reconnects after a
    fork). Raises StoreError when the directory cannot be created or written.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir)
        self._lock = threading.Lock()
        self._caches: dict[str, diskcache.Cache] = {}
        with store_errors(str(self.path)):
            _make_private_dir(self.path)
            if not os.access(self.path, os.W_OK | os.X_OK):
                raise PermissionError(13, "not writable")

    def _open(self, name: str) -> diskcache.Cache:
        cache = self._caches.get(name)
        if cache is not None:
            return cache
        with self._lock:
            cache = self._caches.get(name)
            if cache is None:
                cache = open_private_cache(self.path / name, **_SETTINGS.get(name, {}))
                self._caches[name] = cache
        return cache

    @property
    def breakers(self) -> diskcache.Cache:
        """Breaker state per provider."""
        return self._open("breakers")

    @property
    def cache(self) -> diskcache.Cache:
        """Cached provider observations."""
        return self._open("cache")

    @property
    def counters(self) -> diskcache.Cache:
        """Persistent counters (cache hits and misses)."""
        return self._open("counters")

    def close(self) -> None:
        """Close this process's connections; the store reopens on next use."""
        with self._lock:
            caches, self._caches = self._caches, {}
        for cache in caches.values():
            cache.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
