"""Result values of runs and how a flight's sync status is decided."""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice
from tempfile import SpooledTemporaryFile
from typing import IO, Any, TextIO

from flightsync.errors import ConfigError, FlightsyncError, Interrupted, QuotaSkipped
from flightsync.models import FieldConflict, FlightQuery, SourceOutcome, SyncResult, SyncStatus

# Outcomes that are not failures of the provider: it does not know the flight, or it was not
# asked because a limit, its budget or its quota is spent (README "Provider budgets").
NOT_FAILURES = frozenset({"flight_not_found", QuotaSkipped.code})
# A flight whose every provider said one of these is left for a later run, not failed.
QUOTA_CODES = frozenset({QuotaSkipped.code, "provider_quota_exhausted"})


def sync_status_of(outcomes: Sequence[SourceOutcome],
                   conflicts: Sequence[FieldConflict]) -> SyncStatus:
    """conflict beats partial beats synced; a provider that does not know the flight is an
    answer, not a failure, and one skipped for its budget was not asked."""
    if any(c.escalated for c in conflicts):
        return SyncStatus.CONFLICT
    if any(not o.ok and o.error not in NOT_FAILURES for o in outcomes):
        return SyncStatus.PARTIAL
    return SyncStatus.SYNCED


AUTH_REFUSED = "provider_auth"


def failure_of(outcomes: Sequence[SourceOutcome]) -> tuple[str, str]:
    """The error code and message of a flight no provider answered: ``flight_not_found``
    when none knows it, ``provider_auth`` when every one refused our credentials (a
    configuration problem: exit 2), else ``all_providers_failed``."""
    errors = [o.error for o in outcomes]
    if left_for_later(outcomes):
        return QuotaSkipped.code, ("left for a later run: the budget or quota of " + ", ".join(
            o.name for o in outcomes if o.error in QUOTA_CODES) + " is spent")
    if errors and all(e == "flight_not_found" for e in errors):
        return "flight_not_found", "no provider knows this flight"
    if errors and all(e == AUTH_REFUSED for e in errors):
        names = ", ".join(o.name for o in outcomes)
        return AUTH_REFUSED, (f"credentials refused by {names}: check the secrets in the "
                              "environment (`flightsync providers --check`)")
    return "all_providers_failed", "no provider answered: " + ", ".join(
        f"{o.name}: {o.error}" for o in outcomes)


def left_for_later(outcomes: Sequence[SourceOutcome]) -> bool:
    """Whether no provider answered only because budgets or quotas are spent (some provider
    skipped for it, every other one not knowing the flight): the flight waits for a later
    run instead of failing."""
    errors = [o.error for o in outcomes]
    return (any(e in QUOTA_CODES for e in errors)
            and all(e in QUOTA_CODES or e == "flight_not_found" for e in errors))


def failed_result(query: FlightQuery, outcomes: Sequence[SourceOutcome],
                  error: FlightsyncError, *, code: str | None = None) -> SyncResult:
    return SyncResult(
        query=query, success=False, sync_status=SyncStatus.FAILED, from_cache=False, legs=(),
        sources=tuple(outcomes),
        error={"code": code or error.code, "message": error.message},
    )


# Up to this much of a run's JSON stays in memory; beyond it the text goes to a temporary file.
SPOOL_BYTES = 1 << 20


class ResultLog:
    """A run's finished flights as its output needs them: each one's JSON text, in order, on
    a temporary file (in memory up to ``SPOOL_BYTES``), and the counts in memory. A run keeps
    no result object to its end, so its memory does not grow with its size (issue 17: 10,000
    results held for the output were ~50 MB of a `batch --due`'s peak)."""

    def __init__(self) -> None:
        # Open for the log's life, closed when it goes (no context to manage them in).
        self._successful = SpooledTemporaryFile(SPOOL_BYTES, mode="w+", encoding="utf-8")  # noqa: SIM115
        self._failed = SpooledTemporaryFile(SPOOL_BYTES, mode="w+", encoding="utf-8")  # noqa: SIM115
        for spool in (self._successful, self._failed):  # closed with the log, no warning
            weakref.finalize(self, spool.close)
        self.flights = 0
        self.by_status: dict[str, int] = {}  # the successful ones, by sync status
        self.synced = 0  # successful, fetched (not from the cache)
        self.from_cache = 0
        self.conflicts = 0
        self.failed = 0  # not left for later
        self.refused = 0  # failed because every provider refused our credentials
        self.left_by_provider: dict[str, int] = {}
        self.left = 0

    def add(self, results: Iterable[SyncResult]) -> None:
        self._successful.seek(0, 2)  # after the last line, wherever a reader left off
        self._failed.seek(0, 2)
        for result in results:
            self.flights += 1
            if result.success:
                status = result.sync_status.value
                self.by_status[status] = self.by_status.get(status, 0) + 1
                self.from_cache += result.from_cache
                self.synced += not result.from_cache
                self.conflicts += result.sync_status == SyncStatus.CONFLICT
                self._successful.write(_text(result.to_json()) + "\n")
            elif _is_left(result):
                self.left += 1
                for source in result.sources:
                    if source.error in QUOTA_CODES:
                        self.left_by_provider[source.name] = (
                            self.left_by_provider.get(source.name, 0) + 1)
            else:
                self.failed += 1
                error = result.error or {"code": "failed", "message": "failed"}
                self.refused += error.get("code") == AUTH_REFUSED
                self._failed.write(_text({
                    "flight": result.query.designator,
                    "date": result.query.departure_date.isoformat(), "error": error}) + "\n")

    def successful(self) -> Iterator[str]:
        """The successful flights' JSON texts, in the order they were added."""
        return _lines(self._successful)

    def failures(self) -> Iterator[str]:
        """The failed flights' JSON texts (``flight``, ``date``, ``error``), in order."""
        return _lines(self._failed)


def _text(value: Any) -> str:
    """One JSON text, as the CLI prints it (cli/_render.emit_json)."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _lines(spool: IO[str]) -> Iterator[str]:
    spool.seek(0)
    for line in spool:
        yield line.rstrip("\n")


@dataclass(frozen=True, slots=True)
class BatchResult:
    """docs/CONTRACTS.md section 3 ``batch``."""

    run_id: str
    log: ResultLog
    elapsed_ms: int
    rejected: tuple[dict[str, Any], ...] = ()  # input lines refused before syncing
    interrupted: bool = False  # SIGINT/SIGTERM: the unfinished flights failed `interrupted`

    @classmethod
    def of(cls, run_id: str, results: Sequence[SyncResult] | ResultLog, started: datetime,
           rejected: Sequence[dict[str, Any]] = (), *, interrupted: bool = False,
           ) -> BatchResult:
        if not isinstance(results, ResultLog):
            results = log_of(results)
        elapsed = int((datetime.now(UTC) - started).total_seconds() * 1000)
        return cls(run_id=run_id, log=results, elapsed_ms=elapsed,
                   rejected=tuple(rejected), interrupted=interrupted)

    @property
    def flights(self) -> int:
        """The flights synced or tried (the rejected input lines not included)."""
        return self.log.flights

    @property
    def written(self) -> int:
        """The flights synced (fetched or from the cache)."""
        return self.log.synced + self.log.from_cache

    def with_rejected(self, rejected: Sequence[dict[str, Any]]) -> BatchResult:
        return BatchResult(self.run_id, self.log, self.elapsed_ms, tuple(rejected),
                           self.interrupted)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return Interrupted.exit_code
        failed = self.log.failed
        if failed and not self.rejected and self.log.refused == failed:
            return ConfigError.exit_code  # every failure: credentials refused (README)
        return 1 if failed or self.rejected else 0

    def summary(self) -> dict[str, Any]:
        log = self.log
        return {
            "synced": log.synced,
            "from_cache": log.from_cache,
            "failed": log.failed + len(self.rejected),
            "conflicts": log.conflicts,
            "elapsed_ms": self.elapsed_ms,
            "left_for_later": log.left,
            "left_for_later_by_provider": dict(sorted(log.left_by_provider.items())),
        }

    def to_json(self, *, rows: int | None = None) -> dict[str, Any]:
        """The document (``rows``: at most that many successful and failed flights each, for
        a view that shows no more)."""
        return self._document(
            [json.loads(t) for t in islice(self.log.successful(), rows)],
            [*(json.loads(t) for t in islice(self.log.failures(), rows)), *self.rejected])

    def write_json(self, out: TextIO, *, indent: int | None = None) -> None:
        """``json.dumps(self.to_json(), indent=indent, ensure_ascii=False)`` written to
        ``out`` a flight at a time: the whole document is never in memory."""
        head, middle, tail = _text_with_holes(self._document(_HOLE, _HOLE), indent)
        out.write(head)
        _write_list(out, self.log.successful(), indent)
        out.write(middle)
        _write_list(out, chain(self.log.failures(), map(_text, self.rejected)), indent)
        out.write(tail)

    def _document(self, successful: Any, failed: Any) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "interrupted": self.interrupted,
            "requested": self.log.flights + len(self.rejected),
            "successful": successful,
            "failed": failed,
            "summary": self.summary(),
        }


def log_of(results: Iterable[SyncResult]) -> ResultLog:
    log = ResultLog()
    log.add(results)
    return log


_HOLE = "\u2063flightsync-list\u2063"  # stands for a list while the document is dumped


def _text_with_holes(document: dict[str, Any], indent: int | None) -> list[str]:
    text = json.dumps(document, indent=indent, ensure_ascii=False, default=str)
    return text.split(json.dumps(_HOLE, ensure_ascii=False))


def _write_list(out: TextIO, texts: Iterable[str], indent: int | None) -> None:
    """A top-level key's list of JSON ``texts`` as ``json.dumps`` would write it."""
    if indent is None:
        separator, opening, closing = ", ", "[", "]"
    else:  # the items at depth 2; an item's own lines one depth further each
        pad = "\n" + " " * (2 * indent)
        separator, opening, closing = "," + pad, "[" + pad, "\n" + " " * indent + "]"
    first = True
    for text in texts:
        item = text if indent is None else json.dumps(
            json.loads(text), indent=indent, ensure_ascii=False, default=str).replace("\n", pad)
        out.write((opening if first else separator) + item)
        first = False
    out.write("[]" if first else closing)


def _is_left(result: SyncResult) -> bool:
    return not result.success and (result.error or {}).get("code") == QuotaSkipped.code
