"""``ingest-webhook --spool DIR``: apply every event file of a folder, oldest first.

A receiver (any web server) drops each delivery as ``<name>.json`` with its request headers
beside it in ``<name>.headers`` (``Name: value`` lines, the format of ``--header``). Each
file then moves to ``DIR/done/`` (applied or duplicate) or ``DIR/failed/`` with the reason in
``<name>.reason``, so nothing is applied twice or dropped silently. A crash between applying
and moving is harmless: the next run finds the event id stored and reports a duplicate.
A store failure (database down) stops the run and leaves the files where they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.engine._webhook import WebhookOutcome, ingest
from flightsync.errors import InputError, WebhookError, WebhookSignatureError

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)

DONE = "done"
FAILED = "failed"


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
                 notify: bool) -> SpoolResult:
    """Apply each ``*.json`` of ``folder`` (oldest first) and move it to done/ or failed/."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder", code="invalid_spool")
    files = sorted((p for p in folder.glob("*.json") if p.is_file()),
                   key=lambda p: (p.stat().st_mtime, p.name))
    entries = []
    for path in files:
        outcome = _one(engine, path, insecure=insecure, notify=notify)
        target = DONE if outcome.status != "rejected" else FAILED
        entries.append(SpoolEntry(file=path.name, outcome=outcome,
                                  moved_to=str(_move(path, folder / target, outcome.error))))
    return SpoolResult(folder=str(folder), run_id=engine.run_id, entries=tuple(entries))


def _one(engine: Engine, path: Path, *, insecure: bool, notify: bool) -> WebhookOutcome:
    headers_path = path.with_suffix(".headers")
    try:
        body = path.read_bytes()
        headers: Mapping[str, str] = {}
        if headers_path.exists():
            headers = parse_headers(headers_path.read_text(encoding="utf-8").splitlines(),
                                    where=headers_path.name)
        elif not insecure:
            raise WebhookSignatureError(
                f"{headers_path.name} is missing: a signed event needs its webhook-id, "
                "webhook-timestamp and webhook-signature headers in that file beside it")
        return ingest(engine, body, headers, insecure=insecure, notify=notify)
    except (WebhookError, InputError) as exc:
        log.warning("webhook.rejected", file=path.name, code=exc.code, reason=exc.message)
        event_id = exc.context.get("event_id")
        return WebhookOutcome(event_id=event_id if isinstance(event_id, str) else None,
                              status="rejected",
                              error={"code": exc.code, "message": exc.message})
    except (OSError, UnicodeDecodeError) as exc:
        return WebhookOutcome(event_id=None, status="rejected", error={
            "code": "unreadable_file", "message": f"{path.name}: cannot be read: {exc}"})


def _move(path: Path, target_dir: Path, error: Mapping[str, str] | None) -> Path:
    """Move the event (and its .headers) into ``target_dir`` without overwriting an earlier
    file of the same name; write the reason beside a failed one."""
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
    headers = path.with_suffix(".headers")
    if headers.exists():
        headers.replace(candidate.with_suffix(".headers"))
    path.replace(candidate)
    return candidate
