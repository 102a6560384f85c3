"""Result values of runs and how a flight's sync status is decided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flightsync.errors import ConfigError, FlightsyncError, Interrupted
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


AUTH_REFUSED = "provider_auth"


def failure_of(outcomes: Sequence[SourceOutcome]) -> tuple[str, str]:
    """The error code and message of a flight no provider answered: ``flight_not_found``
    when none knows it, ``provider_auth`` when every one refused our credentials (a
    configuration problem: exit 2), else ``all_providers_failed``."""
    errors = [o.error for o in outcomes]
    if errors and all(e == "flight_not_found" for e in errors):
        return "flight_not_found", "no provider knows this flight"
    if errors and all(e == AUTH_REFUSED for e in errors):
        names = ", ".join(o.name for o in outcomes)
        return AUTH_REFUSED, (f"credentials refused by {names}: check the secrets in the "
                              "environment (`flightsync providers --check`)")
    return "all_providers_failed", "no provider answered: " + ", ".join(
        f"{o.name}: {o.error}" for o in outcomes)


def failed_result(query: FlightQuery, outcomes: Sequence[SourceOutcome],
                  error: FlightsyncError, *, code: str | None = None) -> SyncResult:
    return SyncResult(
        query=query, success=False, sync_status=SyncStatus.FAILED, from_cache=False, legs=(),
        sources=tuple(outcomes),
        error={"code": code or error.code, "message": error.message},
    )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """docs/CONTRACTS.md section 3 ``batch``."""

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
        failed = self.failed
        if failed and not self.rejected and all(
                (r.error or {}).get("code") == AUTH_REFUSED for r in failed):
            return ConfigError.exit_code  # every failure: credentials refused (README)
        return 1 if failed or self.rejected else 0

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
