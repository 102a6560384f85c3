"""The per-host run lock of ``batch --due`` (docs/CONTRACTS.md section 7), and the lock file
it is made of, which the spool's drainers share (engine/_spool.py).

An OS file lock (``fcntl.flock``) on a file in the state directory: the kernel drops it when
the holding process exits, however it exits (SIGKILL, OOM killer, reboot), so a lock left by
a killed run never needs cleaning up and a pid file's staleness guesswork is avoided. The
standard library is enough for this; ``filelock`` would add a dependency for the same flock
call. The state directory must be on a local file system (flock is unreliable over NFS),
which it is anyway: each host keeps its own.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from flightsync.errors import StoreError

log = structlog.get_logger(__name__)

LOCK_NAME = "batch-due.lock"
BUSY_MESSAGE = "another run is in progress"
_POLL_SECONDS = 0.1


class LockBusy(Exception):
    """Another process holds a lock file (after waiting, if asked to)."""

    def __init__(self, path: Path, holder: str, what: str = BUSY_MESSAGE) -> None:
        super().__init__(f"{what} ({holder or 'unknown holder'}, lock {path})")
        self.path = path
        self.holder = holder


class RunLockBusy(LockBusy):
    """Another process on this host holds the run lock (after waiting, if asked to)."""


def lock_path(state_dir: Path) -> Path:
    return state_dir / LOCK_NAME


@contextmanager
def run_lock(state_dir: Path, *, wait_seconds: float | None = None,
             owner: str = "") -> Iterator[Path]:
    """Hold the host's ``batch --due`` lock for the block.

    Raises :class:`RunLockBusy` at once when another process holds it, or after
    ``wait_seconds`` of polling; StoreError (exit 5) when the file cannot be opened.
    """
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot open the run lock {lock_path(state_dir)}: "
                         f"{exc.strerror}") from exc
    with file_lock(lock_path(state_dir), wait_seconds=wait_seconds, owner=owner,
                   busy=RunLockBusy) as path:
        yield path


@contextmanager
def file_lock(path: Path, *, wait_seconds: float | None = None, owner: str = "",
              busy: type[LockBusy] = LockBusy) -> Iterator[Path]:
    """Hold the exclusive lock on ``path`` (made if missing) for the block, its holder
    (pid and ``owner``) written in it for the busy message.

    Raises ``busy`` at once when another process (or another open of the file in this one)
    holds it, or after ``wait_seconds`` of polling; StoreError (exit 5) when the file cannot
    be opened.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the lock {path}: {exc.strerror}") from exc
    try:
        _acquire(fd, path, wait_seconds, busy)
        # Who holds it, for the operator and the busy message; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} {owner}\n".encode(), 0)
        log.debug("lock.acquired", path=str(path))
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, wait_seconds: float | None,
             busy: type[LockBusy]) -> None:
    deadline = time.monotonic() + (wait_seconds or 0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise busy(path, _holder(path)) from None
        time.sleep(_POLL_SECONDS)


def _holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
