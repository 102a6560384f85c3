"""Runs recorded without the database, waiting in the state directory for the next command
that opens it.

A ``sync`` answered whole from the cache does not open the database (importing SQLAlchemy
alone costs more than the rest of the command). Its ``sync_run`` row is written here instead,
one JSON file per run under ``<state_dir>/pending_runs/`` (0700, files 0600), and
:func:`flush` moves every file into ``sync_run`` when a command opens the database
(``open_engine``: sync, batch, status, ...), before it reads anything. So ``status``, the
cache-hit-rate alert and the metrics file see every run.

Files are named by the database they belong to (a hash of its URL) so a state directory shared
by two databases never records a run in the wrong one. Two processes flushing at once each
claim a file by renaming it, which only one of them can do; a claim left behind by a process
that died is taken over after ``STALE_CLAIM_SECONDS``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from flightsync.store import Database

log = structlog.get_logger(__name__)

FOLDER = "pending_runs"
STALE_CLAIM_SECONDS = 600.0
_SUFFIX = ".json"
_CLAIMED = ".claimed"


@dataclass(frozen=True, slots=True)
class PendingRun:
    """One finished run, as ``repository.start_run`` + ``finish_run`` record it."""

    run_id: str
    kind: str
    host: str
    started_at: datetime
    finished_at: datetime
    requested: int
    counts: Mapping[str, int]
    outcome: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(started_at=self.started_at.isoformat(),
                    finished_at=self.finished_at.isoformat(), counts=dict(self.counts))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingRun:
        return cls(run_id=str(data["run_id"]), kind=str(data["kind"]), host=str(data["host"]),
                   started_at=datetime.fromisoformat(data["started_at"]),
                   finished_at=datetime.fromisoformat(data["finished_at"]),
                   requested=int(data["requested"]),
                   counts={str(k): int(v) for k, v in data["counts"].items()},
                   outcome=str(data["outcome"]))


def database_tag(database_url: str) -> str:
    """A short, secret-free name for the database a run belongs to."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:12]


def _folder(state_dir: Path) -> Path:
    return state_dir / FOLDER


def record(state_dir: Path, database_url: str, run: PendingRun) -> Path:
    """Write ``run`` for the database at ``database_url``; atomic (a reader sees the whole
    file or none), private to the owner."""
    folder = _folder(state_dir)
    folder.mkdir(mode=0o700, exist_ok=True)
    final = folder / f"{database_tag(database_url)}.{run.run_id}{_SUFFIX}"
    temp = folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(run.to_json(), handle)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final


def _claim(path: Path) -> Path | None:
    """Rename ``path`` to a name only this call knows; None when another process won."""
    base = path.name.split(_SUFFIX)[0] + _SUFFIX
    claimed = path.with_name(f"{base}.{uuid.uuid4().hex[:12]}{_CLAIMED}")
    try:
        os.rename(path, claimed)
        os.utime(claimed)  # the claim's age, for STALE_CLAIM_SECONDS
    except FileNotFoundError:
        return None
    return claimed


def _claimable(folder: Path, tag: str) -> list[Path]:
    now = time.time()
    found = []
    for path in folder.glob(f"{tag}.*"):
        if path.name.endswith(_SUFFIX):
            found.append(path)
        elif path.name.endswith(_CLAIMED):
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > STALE_CLAIM_SECONDS:
                    found.append(path)
    return sorted(found)


def flush(database: Database, state_dir: Path, database_url: str) -> int:
    """Write every pending run of this database into ``sync_run``; returns how many.

    One transaction for all of them; if it fails they stay pending (and the error is
    raised). A run already in ``sync_run`` (a stale claim that had in fact committed) is
    skipped, not doubled.
    """
    folder = _folder(state_dir)
    if not folder.is_dir():
        return 0
    claimed: list[tuple[Path, PendingRun]] = []
    for path in _claimable(folder, database_tag(database_url)):
        mine = _claim(path)
        if mine is None:
            continue
        try:
            run = PendingRun.from_json(json.loads(mine.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("run.pending.unreadable", path=str(mine))
            mine.rename(mine.with_name(mine.name + ".bad"))
            continue
        claimed.append((mine, run))
    if not claimed:
        return 0
    try:
        _insert(database, [run for _, run in claimed])
    except BaseException:
        for path, run in claimed:  # give them back for the next command
            with contextlib.suppress(OSError):
                os.rename(path, folder / f"{database_tag(database_url)}.{run.run_id}{_SUFFIX}")
        raise
    for path, _ in claimed:
        path.unlink(missing_ok=True)
    log.info("run.pending.flushed", runs=len(claimed))
    return len(claimed)


def _insert(database: Database, runs: list[PendingRun]) -> None:
    from sqlalchemy.exc import IntegrityError  # noqa: PLC0415 - see the module docstring

    from flightsync.store import repository as repo  # noqa: PLC0415

    def write(session: Any, run: PendingRun) -> None:
        repo.start_run(session, run_id=run.run_id, kind=run.kind, host=run.host,
                       now=run.started_at, requested=run.requested)
        repo.finish_run(session, run_id=run.run_id, now=run.finished_at, counts=run.counts,
                        outcome=run.outcome)

    try:
        with database.session() as session:
            for run in runs:
                write(session, run)
    except IntegrityError:
        # Some run_id is already recorded: one transaction per run, skipping those.
        for run in runs:
            with contextlib.suppress(IntegrityError), database.session() as session:
                write(session, run)
