"""Result values of runs and how a flight's sync status is decided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flightsync.errors import FlightsyncError, Interrupted
from flightsync.models import FieldConflict, FlightQuery, SourceOutcome, SyncResult, SyncStatus


def sync_status_of(outcomes: Sequence[SourceOutcome],
                   conflicts: Sequence[FieldConflict]) -> SyncStatus:
    """conflict beats partial beats synced; a provider that does not know the flight is an
    answer, not a failure."""
    if any(c.escalated for c in conflicts):
        return SyncStatus.CONFLICT
    if any(not o.ok and o.error != "flight_not_found" for o in outcomes):
        return SyncStatus.PARTIAL
    return SyncStatus.SYNCED


def failed_result(query: FlightQuery, outcomes: Sequence[SourceOutcome],
                  error: FlightsyncError, *, code: str | None = None) -> SyncResult:
    return SyncResult(
        query=query, success=False, sync_status=SyncStatus.FAILED, from_cache=False, legs=(),
        sources=tuple(outcomes),
        error={"code": code or error.code, "message": error.message},
    )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """DESIGN.md section 3 ``batch``."""

    run_id: str
    results: tuple[SyncResult, ...]
    elapsed_ms: int
    rejected: tuple[dict[str, Any], ...] = ()  # input lines refused before syncing
    interrupted: bool = False  # SIGINT/SIGTERM: the unfinished flights failed `interrupted`

    @classmethod
    def of(cls, run_id: str, results: Sequence[SyncResult], started: datetime,
           rejected: Sequence[dict[str, Any]] = (), *, interrupted: bool = False,
           ) -> BatchResult:
        elapsed = int((datetime.now(UTC) - started).total_seconds() * 1000)
        return cls(run_id=run_id, results=tuple(results), elapsed_ms=elapsed,
                   rejected=tuple(rejected), interrupted=interrupted)

    @property
    def failed(self) -> list[SyncResult]:
        return [r for r in self.results if not r.success]

    def with_rejected(self, rejected: Sequence[dict[str, Any]]) -> BatchResult:
        return BatchResult(self.run_id, self.results, self.elapsed_ms, tuple(rejected),
                           self.interrupted)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return Interrupted.exit_code
        return 1 if self.failed or self.rejected else 0

    def to_json(self) -> dict[str, Any]:
        ok = [r for r in self.results if r.success]
        failed = [
            {"flight": r.query.designator, "date": r.query.departure_date.isoformat(),
             "error": r.error or {"code": "failed", "message": "failed"}}
            for r in self.results if not r.success
        ]
        return {
            "run_id": self.run_id,
            "interrupted": self.interrupted,
            "requested": len(self.results) + len(self.rejected),
            "successful": [r.to_json() for r in ok],
            "failed": [*failed, *self.rejected],
            "summary": {
                "synced": sum(1 for r in ok if not r.from_cache),
                "from_cache": sum(1 for r in ok if r.from_cache),
                "failed": len(failed) + len(self.rejected),
                "conflicts": sum(1 for r in ok if r.sync_status == SyncStatus.CONFLICT),
                "elapsed_ms": self.elapsed_ms,
            },
        }
