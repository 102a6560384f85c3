"""Where breakers, tokens, the cache and its counters live: the state store of a run.

Without ``state_url`` it is the state directory (0700), one diskcache folder per part
(``breakers/``, ``cache/``, ``counters/``, ``tokens/``), shared by every process on the host.
With ``state_url`` (``redis://…``) it is one Redis database shared by every host
(README, "Shared state"). Breakers, tokens and the cache are written against
:class:`~flightsync.resilience._backend.Bucket`, never against either backend.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import structlog

from flightsync.errors import StoreError
from flightsync.resilience._backend import Backend, Bucket
from flightsync.resilience._state_dir import make_private_dir, open_private_cache, store_errors

if TYPE_CHECKING:
    from flightsync.config import Settings

__all__ = [
    "StateStore",
    "add_to_counter",
    "open_private_cache",
    "open_state",
    "read_counter",
    "read_entry",
    "store_errors",
    "unreadable",
]

log = structlog.get_logger(__name__)

DEFAULT_PREFIX = "flightsync"


def read_entry(bucket: Bucket, key: str, *, part: str) -> object | None:
    """The value stored under ``key``, or None (with a warning) when it cannot be read back:
    unreadable state is treated as absent, never as a crash of every later command. The
    store's own failures stay StoreError, exit 5."""
    try:
        return bucket.get(key)
    except StoreError:
        raise
    except Exception as exc:  # a damaged value may raise anything (pickle runs opcodes)
        unreadable(part, key, exc)
        return None


def unreadable(part: str, key: str, problem: Exception | str) -> None:
    """Log that an entry of the state store was damaged and what is assumed instead."""
    detail = problem if isinstance(problem, str) else type(problem).__name__
    log.warning("state.unreadable", part=part, key=key, problem=detail,
                assumed="closed" if part == "breakers" else "reset")


def add_to_counter(bucket: Bucket, key: str, delta: int) -> None:
    """Add ``delta`` to a counter atomically; a damaged counter starts again from ``delta``."""
    try:
        bucket.incr(key, delta)
    except StoreError:
        raise
    except Exception as exc:  # see read_entry
        unreadable("counters", key, exc)
        bucket.set(key, delta)


def read_counter(bucket: Bucket, key: str) -> int:
    """A counter's value; 0 (with a warning) when it is damaged."""
    value = read_entry(bucket, key, part="counters")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        unreadable("counters", key, f"not a count: {type(value).__name__}")
        return 0
    return value


def _backend(state_dir: Path, url: str | None, prefix: str,
             cache_size_limit: int | None) -> Backend:
    if url is None:
        from flightsync.resilience._disk import DiskBackend  # noqa: PLC0415 - one of two

        return DiskBackend(state_dir, cache_size_limit=cache_size_limit)
    from flightsync.resilience._redis import RedisBackend  # noqa: PLC0415 - redis ~40 ms

    backend = RedisBackend(url, prefix)
    backend.ping()  # unreachable at start: exit 5 before anything is read or written
    return backend


class StateStore:
    """The state store of one process: buckets opened lazily (a cached sync never opens the
    breakers). Safe to share between threads; every process opens its own.

    ``url`` None: the state directory (raises StoreError when it cannot be created or
    written). ``url`` ``redis://…``: that database under ``<prefix>:`` (StoreError when the
    server does not answer). The state directory is made either way: the run lock, pending
    runs and the SQLite database live there.
    """

    def __init__(self, state_dir: Path, *, url: str | None = None,
                 prefix: str = DEFAULT_PREFIX, cache_size_limit: int | None = None) -> None:
        self.path = Path(state_dir)
        with store_errors(str(self.path)):
            make_private_dir(self.path)
            if not os.access(self.path, os.W_OK | os.X_OK):
                raise PermissionError(13, "not writable")
        self.backend = _backend(self.path, url, prefix, cache_size_limit)

    @property
    def shared(self) -> bool:
        """True when other hosts share this state (Redis)."""
        return self.backend.shared

    @property
    def where(self) -> str:
        """The state directory, or the Redis URL without its password."""
        return self.backend.where

    @property
    def breakers(self) -> Bucket:
        """Breaker state per provider."""
        return self.backend.bucket("breakers")

    @property
    def cache(self) -> Bucket:
        """Cached provider observations."""
        return self.backend.bucket("cache")

    @property
    def counters(self) -> Bucket:
        """Persistent counters (cache hits and misses)."""
        return self.backend.bucket("counters")

    @property
    def tokens(self) -> Bucket:
        """OAuth tokens per provider and account (providers.TokenStore)."""
        return self.backend.bucket("tokens")

    def close(self) -> None:
        """Close this process's connections; the store reopens on next use."""
        self.backend.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_state(settings: Settings) -> StateStore:
    """The state store ``settings`` name: ``state_url`` when set, else the state directory."""
    from flightsync import config  # noqa: PLC0415 - only the callers that have Settings

    return StateStore(config.state_dir(settings), url=settings.state_url,
                      prefix=settings.state_prefix,
                      cache_size_limit=int(settings.cache.size_limit_mb * 1024 * 1024))
