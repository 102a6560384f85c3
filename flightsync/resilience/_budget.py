"""Provider budgets: rate limits, quotas and money, checked before every provider call.

Per provider (README "Provider budgets"): ``limits`` in the notation of the ``limits`` library
(``5/second;1000/hour``), each a moving window; ``cost_per_call`` and ``budget`` (``day`` and
``month``, calendar periods in UTC, as a bill is); and the provider's own "quota spent"
answer, which blocks the provider until its quota resets. All of it lives in one storage
(:mod:`flightsync.resilience._limits`): the state directory's, shared by every process of the
host, or Redis (``state_url``), shared by every host.

Spend is kept in integer micro-units of the account's currency (``cost_per_call`` 0.0125 adds
12500 per call): an integer counter adds atomically on both backends, where a float would
drift and Redis has no atomic float add with a cap.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flightsync.config import ProviderSettings
from flightsync.errors import FlightsyncError, QuotaSkipped, StoreError
from flightsync.resilience._sentwindow import Charge, SentWindowStorage, Window

MICRO = 1_000_000
# Calendar periods the counters are kept for: the period's key format and how long a counter
# is kept (past its period's end, so `status` still reads a period that just closed).
PERIODS: dict[str, tuple[str, int]] = {
    "minute": ("%Y-%m-%dT%H:%M", 2 * 60),
    "hour": ("%Y-%m-%dT%H", 2 * 3600),
    "day": ("%Y-%m-%d", 2 * 86400),
    "month": ("%Y-%m", 32 * 86400),
}
BUDGET_PERIODS = ("day", "month")
# Every call's slot is held at most this long past its deadline (a process that died mid-call
# frees its slot then).
HOLD_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class ProviderBudget:
    """One provider's limits and money, as configured (or its adapter's defaults)."""

    provider: str
    windows: tuple[tuple[str, Window], ...] = ()  # (the limit as written, its window)
    cost_micro: int = 0
    budget_micro: Mapping[str, int] | None = None  # period -> cap
    max_wait_seconds: float = 1.0

    @property
    def active(self) -> bool:
        return bool(self.windows or self.cost_micro or self.budget_micro)


def parse_limits(text: str) -> tuple[tuple[str, Window], ...]:
    """``5/second;1000/hour`` as (written, window) pairs; ValueError when it does not parse."""
    from limits import parse_many  # noqa: PLC0415 - only runs that call providers need it

    items = parse_many(text)
    return tuple((str(item), Window(amount=item.amount, seconds=int(item.get_expiry())))
                 for item in items)


def period_key(provider: str, what: str, period: str, at: datetime) -> str:
    """The counter key of ``what`` (``calls`` or ``spend``) in ``period`` containing ``at``."""
    return f"{what}/{provider}/{period}/{at.strftime(PERIODS[period][0])}"


def seconds_to_next_month(now: datetime) -> float:
    """Seconds until the next calendar month starts in UTC (when monthly quotas reset)."""
    first = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
             + timedelta(days=32)).replace(day=1)
    return (first - now).total_seconds()


class Budgets:
    """Admission of provider calls against every provider's budget, across processes."""

    def __init__(self, storage: Callable[[], SentWindowStorage],
                 budgets: Mapping[str, ProviderBudget], *, hold_seconds: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._open = storage
        self._storage: SentWindowStorage | None = None
        self._lock = threading.Lock()
        self.budgets = dict(budgets)
        self._hold = hold_seconds + HOLD_GRACE_SECONDS
        self._clock = clock
        self._sleep = sleep

    @property
    def storage(self) -> SentWindowStorage:
        """Opened on first use: a run whose providers have no budget never opens it."""
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    self._storage = self._open()
        return self._storage

    @property
    def configured(self) -> bool:
        return any(b.active for b in self.budgets.values())

    def close(self) -> None:
        if self._storage is not None:
            self._storage.close()

    def budget(self, provider: str) -> ProviderBudget | None:
        found = self.budgets.get(provider)
        return found if found is not None and found.active else None

    @contextmanager
    def call(self, provider: str, *, deadline: float) -> Iterator[None]:
        """See :meth:`_call`; the storage failing is StoreError (exit 5), never a failure of
        the provider."""
        with self._call(provider, deadline=deadline):
            yield

    @contextmanager
    def _call(self, provider: str, *, deadline: float) -> Iterator[None]:
        """Hold one admitted call of ``provider`` around the block; raises QuotaSkipped when
        it may not go: a window full for longer than the wait allowed (the provider's
        ``max_wait_seconds``, and never past ``deadline``, a ``time.monotonic`` value), a
        budget spent, or the provider's own quota spent (checked for every provider, with a
        budget or not)."""
        budget = self.budget(provider)
        if budget is None:
            with storage_errors():
                until = self.storage.blocked_until(exhausted_key(provider))
            if until is not None:
                raise _quota_spent(provider, until - time.time())
            yield
            return
        token = uuid.uuid4().hex
        with storage_errors():
            self._admit(budget, token, deadline)
        try:
            yield
        finally:
            if budget.windows:
                with storage_errors():
                    self.storage.settle_sent(_window_key(provider), _windows(budget), token)

    def _admit(self, budget: ProviderBudget, token: str, deadline: float) -> None:
        provider = budget.provider
        wait_until = min(time.monotonic() + budget.max_wait_seconds, deadline)
        while True:
            now = self._clock()
            charges = self._charges(budget, now)
            admission = self.storage.acquire_sent(
                _window_key(provider), _windows(budget), token, self._hold, charges=charges,
                block=exhausted_key(provider))
            if admission.verdict == "ok":
                return
            if admission.verdict == "blocked":
                raise _quota_spent(provider, admission.wait)
            if admission.verdict == "cap":
                period = charges[admission.charge].key.split("/")[2]
                raise QuotaSkipped(f"{provider}: the {period} budget is spent; skipped",
                                   provider=provider, reason=f"budget_{period}")
            left = wait_until - time.monotonic()
            if admission.wait > left:
                raise QuotaSkipped(f"{provider}: rate limit reached; the next slot is "
                                   f"{admission.wait:.2f} s away; skipped",
                                   provider=provider, reason="rate_limit")
            self._sleep(max(min(admission.wait, left), _POLL_SECONDS))

    def _charges(self, budget: ProviderBudget, now: datetime) -> list[Charge]:
        charges = [Charge(period_key(budget.provider, "calls", period, now), 1, keep)
                   for period, (_, keep) in PERIODS.items()]
        caps = budget.budget_micro or {}
        if budget.cost_micro or caps:
            charges.extend(
                Charge(period_key(budget.provider, "spend", period, now), budget.cost_micro,
                       PERIODS[period][1], caps.get(period))
                for period in BUDGET_PERIODS)
        return charges

    def mark_exhausted(self, provider: str, retry_after: float | None) -> float:
        """The provider said its quota is spent: no call to it, from any process sharing the
        storage, for ``retry_after`` seconds, else until the next calendar month (UTC; the
        published quotas are monthly). Returns the seconds blocked."""
        seconds = retry_after if retry_after and retry_after > 0 else seconds_to_next_month(
            self._clock())
        with storage_errors():
            self.storage.block_for(exhausted_key(provider), seconds)
        return seconds

    def figures(self) -> dict[str, dict[str, Any]]:
        """Per provider with a budget: calls and spend in the current minute, hour, day and
        month (UTC), each limit's use, the budgets and the quota block (``status``)."""
        with storage_errors():
            return self._figures()

    def _figures(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        out: dict[str, dict[str, Any]] = {}
        for provider, budget in sorted(self.budgets.items()):
            until = self.storage.blocked_until(exhausted_key(provider))
            if not budget.active and until is None:
                continue
            counts = (self.storage.sent_counts(_window_key(provider), _windows(budget))
                      if budget.windows else [])
            spend = {p: self.storage.counter(period_key(provider, "spend", p, now)) / MICRO
                     for p in BUDGET_PERIODS}
            out[provider] = {
                "calls": {p: self.storage.counter(period_key(provider, "calls", p, now))
                          for p in PERIODS},
                "spend": spend,
                "cost_per_call": budget.cost_micro / MICRO,
                "budget": {p: cap / MICRO for p, cap in (budget.budget_micro or {}).items()},
                "limits": [{"limit": text, "used": used, "remaining": max(w.amount - used, 0)}
                           for (text, w), used in zip(budget.windows, counts, strict=True)],
                "quota_exhausted_until": (None if until is None else datetime.fromtimestamp(
                    until, UTC).isoformat().replace("+00:00", "Z")),
            }
        return out


@contextmanager
def storage_errors() -> Iterator[None]:
    """The limits storage failing (the state directory, or Redis unreachable) as StoreError:
    one line, exit 5, and never held against a provider."""
    try:
        yield
    except FlightsyncError:
        raise
    except Exception as exc:  # diskcache, sqlite3, redis-py and limits each have their own
        raise StoreError(f"limits storage unavailable: {type(exc).__name__}: "
                         f"{str(exc)[:200]}".replace("\n", " ")) from exc


def _quota_spent(provider: str, seconds: float) -> QuotaSkipped:
    return QuotaSkipped(f"{provider}: the provider said its quota is spent (it resets in "
                        f"{seconds:.0f} s); skipped", provider=provider, reason="provider_quota")


def exhausted_key(provider: str) -> str:
    return f"exhausted/{provider}"


def _window_key(provider: str) -> str:
    return f"sent/{provider}"


def _windows(budget: ProviderBudget) -> list[Window]:
    return [window for _, window in budget.windows]


def legacy_rate(per_second: float) -> str:
    """``rate_limit_per_second`` (the older key) in the ``limits`` notation."""
    if per_second >= 1:
        return f"{int(per_second)}/second"
    return f"1/{max(round(1 / per_second), 1)} second"


def provider_budgets(providers: Mapping[str, ProviderSettings],
                     defaults: Mapping[str, str | None]) -> dict[str, ProviderBudget]:
    """Each provider's budget from its settings; ``defaults`` are the limits its adapter
    publishes, used when the settings name none (README "Provider budgets")."""
    out: dict[str, ProviderBudget] = {}
    for name in sorted({*providers, *defaults}):
        conf = providers.get(name, ProviderSettings())
        parts = [conf.limits] if conf.limits else []
        if conf.rate_limit_per_second is not None:
            parts.append(legacy_rate(conf.rate_limit_per_second))
        if not parts and defaults.get(name):
            parts.append(str(defaults[name]))
        caps = None
        if conf.budget is not None:
            caps = {period: round(value * MICRO) for period, value in
                    (("day", conf.budget.day), ("month", conf.budget.month))
                    if value is not None}
        out[name] = ProviderBudget(
            provider=name, windows=parse_limits(";".join(parts)) if parts else (),
            cost_micro=round(conf.cost_per_call * MICRO), budget_micro=caps,
            max_wait_seconds=conf.max_wait_seconds)
    return out
