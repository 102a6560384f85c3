"""Result values of runs and how a flight's sync status is decided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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
        return [r for r in self.results if not r.success and not _is_left(r)]

    @property
    def left(self) -> list[SyncResult]:
        """Flights left for a later run because budgets or quotas ran out: not failures."""
        return [r for r in self.results if _is_left(r)]

    def left_by_provider(self) -> dict[str, int]:
        """How many of the flights left for later each provider's budget or quota left."""
        counts: dict[str, int] = {}
        for result in self.left:
            for source in result.sources:
                if source.error in QUOTA_CODES:
                    counts[source.name] = counts.get(source.name, 0) + 1
        return dict(sorted(counts.items()))

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
            for r in self.failed
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
                "left_for_later": len(self.left),
                "left_for_later_by_provider": self.left_by_provider(),
            },
        }


def _is_left(result: SyncResult) -> bool:
    return not result.success and (result.error or {}).get("code") == QuotaSkipped.code
