"""The state directory's folders: private (0700, files 0600), with I/O failures as StoreError.

SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file, and values are
kept inside the database (never as side files) so nothing else is created.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import diskcache

from flightsync.errors import StoreError

_DIR_MODE = 0o700
_FILE_MODE = 0o600
# Values up to this size stay inside SQLite; diskcache would otherwise write larger ones as
# separate files with the process umask, outside our control over permissions.
_INLINE_LIMIT = 2**30
_SQLITE_TIMEOUT_SECONDS = 30.0

# os.umask is process-wide: serialize our changes so two threads opening caches at once cannot
# leave the tightened mask behind, or restore a stale one.
_UMASK_LOCK = threading.Lock()

# The state directory's own failures: anything else a read raises is a damaged value.
DISK_FAILURES = (OSError, sqlite3.Error, diskcache.Timeout)


def disk_failure(what: str, exc: BaseException) -> StoreError:
    """An I/O failure of the state directory as StoreError (exit 5), one line."""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    message = (f"state directory unavailable: {what}: {detail or type(exc).__name__} "
               "(set FLIGHTSYNC_STATE_DIR or state_dir to a writable directory)")
    return StoreError(message.replace("\n", " "))


@contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Turn I/O failures of the state directory into StoreError (exit 5), one line."""
    try:
        yield
    except DISK_FAILURES as exc:
        raise disk_failure(what, exc) from exc


@contextmanager
def _private_umask() -> Iterator[None]:
    with _UMASK_LOCK:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)


def make_private_dir(path: Path) -> None:
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
        make_private_dir(directory)
        with _private_umask():
            cache = diskcache.Cache(str(directory), timeout=_SQLITE_TIMEOUT_SECONDS,
                                    disk_min_file_size=_INLINE_LIMIT, **settings)
        _chmod_files(directory)
    return cache
