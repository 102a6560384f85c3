"""``ingest-webhook --spool DIR``: apply every event file of a folder, oldest first.

A receiver (any web server) drops each delivery as ``<name>.json`` with its request headers
beside it in ``<name>.headers`` (``Name: value`` lines, the format of ``--header``), written
first. Each event then moves to ``DIR/done/`` (applied or duplicate) or ``DIR/failed/`` with
the reason in ``<name>.reason``, so nothing is applied twice or dropped silently.

Idempotent at every instant (tests/test_spool_recovery.py kills the process between each
pair of steps):
- an event applied before is recognised by its id before anything else is checked, so the
  next run reports it as a duplicate however late it comes;
- the signature's tolerance is measured from the event's arrival (the ``.json`` file's
  modification time), not from the run: a backlog or a late recovery is still applied;
- ``<name>.json`` leaves the spool last, in one rename (the commit point). Its ``.headers``
  are hard-linked into the target first and unlinked after, so while the event is in the
  spool its headers are too; a kill after the rename leaves only a linked ``.headers``
  (two links) behind, which the next run removes;
- one bad file goes to failed/ with its reason and never stops the others. Only a store
  failure (database down) stops the run, leaving the files where they are.

One drainer at a time: every run holds ``DIR/.drain.lock`` (an flock, engine/_lock.py), the
server's drain thread and a manual run alike, so two never apply the same files side by side
or out of order.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from flightsync._read import mebibytes, read_at_most
from flightsync.engine._killpoint import reached
from flightsync.engine._lock import LockBusy, file_lock
from flightsync.engine._signing import parse_secret
from flightsync.engine._webhook import WebhookOutcome, ingest
from flightsync.errors import (
    ConfigError,
    InputError,
    SpoolBusyError,
    StoreError,
    WebhookError,
    WebhookSignatureError,
    first_line,
)

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)

FORMAT_HEADER = "x-flightsync-format"
FLIGHTAWARE = "flightaware"
_SEQUENCE = 0
_SEQUENCE_LOCK = threading.Lock()
DONE = "done"
FAILED = "failed"
MAX_HEADERS_BYTES = 16 * 1024  # three Standard Webhooks headers take ~200 bytes
DRAIN_LOCK = ".drain.lock"  # in the spool folder; `flightsync serve` has always used it
DRAIN_WAIT_SECONDS = 10.0  # how long `ingest-webhook --spool` waits for another drainer


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    file: str
    outcome: WebhookOutcome
    moved_to: str


@dataclass(frozen=True, slots=True)
class SpoolResult:
    folder: str
    run_id: str
    entries: tuple[SpoolEntry, ...]

    @property
    def exit_code(self) -> int:
        return 1 if any(e.outcome.status == "rejected" for e in self.entries) else 0

    def to_json(self) -> dict[str, Any]:
        counts = {status: sum(1 for e in self.entries if e.outcome.status == status)
                  for status in ("applied", "duplicate", "rejected")}
        return {
            "spool": self.folder, "run_id": self.run_id,
            "files": [{"file": e.file, "moved_to": e.moved_to, **e.outcome.to_json()}
                      for e in self.entries],
            "summary": {**counts, "files": len(self.entries)},
        }


def parse_headers(lines: list[str], *, where: str) -> dict[str, str]:
    """``Name: value`` lines (blank lines ignored) as a mapping; InputError naming the line."""
    headers: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise InputError(f"{where}, line {number}: expected 'Name: value'",
                             code="invalid_header")
        headers[name.strip()] = value.strip()
    return headers


def ingest_spool(engine: Engine, folder: Path, *, insecure: bool,
                 notify: bool, record_run: bool = True,
                 wait_seconds: float | None = DRAIN_WAIT_SECONDS) -> SpoolResult:
    """Apply each ``*.json`` of ``folder`` (oldest first) and move it to done/ or failed/,
    under the folder's drain lock.

    One drainer at a time, whoever it is (`flightsync serve`'s background thread in any of
    its worker processes, `ingest-webhook --spool`): two at once would list the same files
    and apply them side by side, a later event possibly before an earlier one. The lock is
    waited for up to ``wait_seconds`` (None: not at all), then SpoolBusyError (exit 5) and
    nothing is applied.

    A file whose ``.headers`` say ``X-Flightsync-Format: flightaware`` is a FlightAware alert
    delivery `flightsync serve` spooled (no signature: its token was checked on arrival).
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder", code="invalid_spool")
    if any(_format_of(p) != FLIGHTAWARE for p in folder.glob("*.json")):
        _check_secret(engine, insecure)  # refused before the lock: the spool left untouched
    try:
        with file_lock(folder / DRAIN_LOCK, wait_seconds=wait_seconds,
                       owner=f"run_id={engine.run_id}"):
            return _drain(engine, folder, insecure=insecure, notify=notify,
                          record_run=record_run)
    except LockBusy as exc:
        waited = f"waited {wait_seconds:g} s" if wait_seconds else "no wait"
        raise SpoolBusyError(
            f"the spool {folder} is being drained by another process "
            f"({exc.holder or 'unknown holder'}; {waited}): nothing applied; run again once "
            "it is done", folder=str(folder), holder=exc.holder) from None


def _drain(engine: Engine, folder: Path, *, insecure: bool, notify: bool,
           record_run: bool) -> SpoolResult:
    _sweep_linked_headers(folder)
    files = sorted((p for p in folder.glob("*.json") if p.is_file()),
                   key=lambda p: (p.stat().st_mtime, p.name))
    entries = []
    for path in files:
        outcome = _one(engine, path, insecure=insecure, notify=notify,
                       record_run=record_run)
        target = DONE if outcome.status != "rejected" else FAILED
        entries.append(SpoolEntry(file=path.name, outcome=outcome,
                                  moved_to=str(_move(path, folder / target, outcome.error))))
    removed = prune_spool(folder, engine.clock.now()
                          - timedelta(days=engine.settings.retention.spool_days))
    if removed:
        log.info("webhook.spool.pruned", folder=str(folder), files=removed)
    return SpoolResult(folder=str(folder), run_id=engine.run_id, entries=tuple(entries))


def prune_spool(folder: Path, before: datetime) -> int:
    """Remove the files of ``done/`` and ``failed/`` that arrived before ``before`` (their
    modification time: the move keeps the arrival's), each event with its ``.headers`` and
    ``.reason``; retention.spool_days (README, "Retention"). Returns how many went."""
    cutoff = before.timestamp()
    removed = 0
    for target in (folder / DONE, folder / FAILED):
        if not target.is_dir():
            continue
        for path in target.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # gone meanwhile, or not ours to remove: the next run tries again
    return removed


def _check_secret(engine: Engine, insecure: bool) -> None:
    """Without a usable secret every file would be refused: refuse the run instead (exit 2)
    and leave the files in place for when the secret is set."""
    secret = engine.settings.webhook_secret
    if insecure:
        return
    if secret is None:
        raise WebhookSignatureError(
            "no webhook secret configured (FLIGHTSYNC_WEBHOOK_SECRET): the spool is left as "
            "it is; set the secret, or pass --insecure to accept unsigned events for testing")
    parse_secret(secret, where="environment variable FLIGHTSYNC_WEBHOOK_SECRET")


def _sweep_linked_headers(folder: Path) -> None:
    """Remove the ``.headers`` a kill left behind after its ``.json`` moved: the same file
    (a hard link) is in done/ or failed/ beside that ``.json``. A receiver's own file, even
    one it publishes through a link of its own, has no twin there."""
    for headers in folder.glob("*.headers"):
        try:
            if headers.with_suffix(".json").exists() or headers.stat().st_nlink < 2:
                continue
            for target in (folder / DONE, folder / FAILED):
                twins = [target / headers.name, *target.glob(f"{headers.stem}.*.headers")]
                if any(t.exists() and t.samefile(headers) for t in twins):
                    headers.unlink()
                    break
        except OSError:
            continue


def _one(engine: Engine, path: Path, *, insecure: bool, notify: bool,
         record_run: bool = True) -> WebhookOutcome:
    try:
        return _apply_file(engine, path, insecure=insecure, notify=notify,
                           record_run=record_run)
    except (WebhookError, InputError) as exc:
        log.warning("webhook.rejected", file=path.name, code=exc.code, reason=exc.message)
        event_id = exc.context.get("event_id")
        return _rejected(event_id if isinstance(event_id, str) else None, exc.code, exc.message)
    except (OSError, UnicodeDecodeError) as exc:
        return _rejected(None, "unreadable_file", f"{path.name}: cannot be read: {exc}")
    except (StoreError, ConfigError, SQLAlchemyError):
        raise  # the database or the setup, not this file: stop, leave the spool as it is
    except Exception as exc:
        # A bug this file's content triggers must not block every file behind it, run after
        # run: the file goes to failed/ with the reason, the traceback to the log.
        if os.environ.get("FLIGHTSYNC_RAISE_ERRORS") == "1":
            raise
        log.error("webhook.spool.internal_error", file=path.name,
                  error_type=type(exc).__name__, exc_info=exc)
        first = first_line(exc)
        return _rejected(None, "internal_error",
                         f"internal error ({type(exc).__name__}{': ' + first if first else ''}"
                         f"); details in the log (run_id {engine.run_id})")


def _apply_file(engine: Engine, path: Path, *, insecure: bool,
                notify: bool, record_run: bool = True) -> WebhookOutcome:
    max_bytes = engine.settings.webhooks.max_bytes
    received = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    body = read_at_most(path, max_bytes)  # ingest refuses more than max_bytes
    headers_path = path.with_suffix(".headers")
    headers: Mapping[str, str] = {}
    if headers_path.exists():
        raw = read_at_most(headers_path, MAX_HEADERS_BYTES)
        if len(raw) > MAX_HEADERS_BYTES:
            raise InputError(f"{headers_path.name}: larger than "
                             f"{mebibytes(MAX_HEADERS_BYTES)}", code="invalid_header")
        headers = parse_headers(raw.decode("utf-8").splitlines(), where=headers_path.name)
    elif not insecure:
        raise WebhookSignatureError(
            f"{headers_path.name} is missing: a signed event needs its webhook-id, "
            "webhook-timestamp and webhook-signature headers in that file beside it")
    reached("spool.read")
    if {k.lower(): v for k, v in headers.items()}.get(FORMAT_HEADER) == FLIGHTAWARE:
        from flightsync.engine._fa_intake import Ignored, ingest_delivery  # noqa: PLC0415

        done = ingest_delivery(engine, body, notify=notify, record_run=record_run)
        return (WebhookOutcome(event_id=None, status="duplicate", provider="flightaware")
                if isinstance(done, Ignored) else done)
    return ingest(engine, body, headers, insecure=insecure, notify=notify, received=received,
                  record_run=record_run)


def _format_of(path: Path) -> str | None:
    try:
        raw = read_at_most(path.with_suffix(".headers"), MAX_HEADERS_BYTES)
        headers = parse_headers(raw.decode("utf-8").splitlines(), where=path.name)
    except (OSError, UnicodeDecodeError, InputError):
        return None
    return {k.lower(): v for k, v in headers.items()}.get(FORMAT_HEADER)


def write_event(folder: Path, body: bytes, headers: Mapping[str, str]) -> Path:
    """Spool one event durably: ``<name>.headers`` then ``<name>.json``, each written to a
    temporary name, fsynced and renamed, then the folder fsynced, so that once this returns
    the event survives a crash or a power cut. Names sort in arrival order."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    global _SEQUENCE  # noqa: PLW0603 - one counter per process, under its lock
    with _SEQUENCE_LOCK:
        _SEQUENCE += 1
        stem = f"{time.time_ns():020d}-{os.getpid()}-{_SEQUENCE:08d}"
    lines = "".join(f"{name}: {value}\n" for name, value in headers.items()
                    if "\n" not in name + value and "\r" not in name + value)
    _write_synced(folder / f"{stem}.headers", lines.encode())
    path = _write_synced(folder / f"{stem}.json", body)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _write_synced(path: Path, content: bytes) -> Path:
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    return path


def pending(folder: Path) -> int:
    """How many events wait in ``folder``."""
    return sum(1 for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else 0


def _rejected(event_id: str | None, code: str, message: str) -> WebhookOutcome:
    return WebhookOutcome(event_id=event_id, status="rejected",
                          error={"code": code, "message": message})


def _move(path: Path, target_dir: Path, error: Mapping[str, str] | None) -> Path:
    """Move the event (and its .headers) into ``target_dir`` without overwriting an earlier
    file of the same name; write the reason beside a failed one. The ``.json`` rename is the
    commit point: everything before it is redone by the next run if this one dies."""
    target_dir.mkdir(exist_ok=True)
    stem = path.stem
    candidate = target_dir / path.name
    counter = 1
    while candidate.exists():
        candidate = target_dir / f"{stem}.{counter}.json"
        counter += 1
    if error is not None:
        candidate.with_suffix(".reason").write_text(
            f"{error['code']}: {error['message']}\n", encoding="utf-8")
        reached("spool.reason_written")
    headers = path.with_suffix(".headers")
    if headers.exists():
        twin = candidate.with_suffix(".headers")
        twin.unlink(missing_ok=True)  # a link a killed run made before its .json moved
        try:
            os.link(headers, twin)
        except OSError:  # a file system without hard links: a copy does the same job
            shutil.copyfile(headers, twin)
        reached("spool.headers_linked")
    path.replace(candidate)
    reached("spool.json_moved")
    headers.unlink(missing_ok=True)
    reached("spool.moved")
    return candidate
