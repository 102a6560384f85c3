"""The state interface: what breakers, tokens and the cache need of a shared store.

One :class:`Bucket` per part of the state (``breakers``, ``cache``, ``counters``,
``tokens``). Two implementations, chosen once from ``state_url`` (README, "Shared state"):

- :mod:`flightsync.resilience._disk`: one diskcache folder per bucket in the state directory,
  shared by every process on the host (as before issue 14);
- :mod:`flightsync.resilience._redis`: keys ``<state_prefix>:<bucket>:<key>`` in one Redis
  database, shared by every host pointed at it.

Every failure of the store itself (unreachable, timed out, unwritable) is raised as
:class:`flightsync.errors.StoreError` (exit 5). A value that cannot be read back (damaged,
written by another release, or refused by the Redis decoder's allow-list) raises anything
else; callers treat it as absent (``_state.read_entry``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

# What ``update``'s change function returns to leave the entry as it is.
Change = Callable[[object | None], object | None]

BUCKETS: tuple[str, ...] = ("breakers", "cache", "counters", "tokens")


def readable(read: Callable[[], object],
             failures: tuple[type[BaseException], ...]) -> object | None:
    """``read()``, or None when the value it reads back is damaged: an update starts from
    "absent" rather than failing every later run. ``failures`` (the store's own) propagate."""
    try:
        return read()
    except failures:
        raise
    except Exception:  # a damaged value may raise anything (pickle runs opcodes)
        return None


class Bucket(Protocol):
    """A key-value space with expiry, atomic updates, a lock with deadlines and tags."""

    def get(self, key: str) -> object | None:
        """The value under ``key``, None when absent or expired."""
        ...

    def set(self, key: str, value: object, *, ttl: float | None = None,
            tag: str | None = None) -> None:
        """Store ``value``, gone after ``ttl`` seconds (never when None); ``tag`` groups
        entries for :meth:`evict`."""
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        ...

    def incr(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to the integer under ``key`` (0 when absent) atomically."""
        ...

    def update(self, key: str, change: Change) -> tuple[object | None, object | None]:
        """Atomic read-modify-write: ``change(old)`` gives the new value, written unless it
        equals the old one (None deletes). Returns (old, new). Two hosts changing one key at
        once both see each other's write: one of them is run again on the newer value."""
        ...

    def lock(self, name: str, *, hold: float, wait: float) -> AbstractContextManager[bool]:
        """Hold the lock ``name`` for at most ``hold`` seconds (a holder that died frees it
        then); wait at most ``wait`` seconds for it. Yields whether it was acquired."""
        ...

    def evict(self, tag: str) -> int:
        """Remove every entry set with ``tag``; how many."""
        ...

    def keys(self) -> Iterator[str]:
        """Every key of the bucket (expired ones may still appear)."""
        ...

    def clear(self) -> int:
        """Remove every entry; how many."""
        ...

    def size(self) -> tuple[int, int]:
        """(entries, bytes they take) for ``status``."""
        ...

    def grouped(self) -> AbstractContextManager[None]:
        """Writes inside the block may be sent together (one commit); best effort."""
        ...

    def close(self) -> None:
        """Release this process's connections; the bucket reopens on next use."""
        ...


class Backend(Protocol):
    """Where the buckets live."""

    #: Shown by ``status`` and in errors: the state directory, or the Redis URL without its
    #: password.
    where: str
    #: True when other hosts share it (Redis).
    shared: bool

    def bucket(self, name: str) -> Bucket:
        """The bucket ``name`` (one of :data:`BUCKETS`), opened on first use."""
        ...

    def ping(self) -> None:
        """Raise StoreError unless the store answers now."""
        ...

    def close(self) -> None:
        ...
