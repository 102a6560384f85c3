"""Provider budgets seen from the engine: built from the settings and the adapters' published
limits, and read back for ``status``, ``status --check`` and the metrics file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flightsync.config import Settings
from flightsync.providers import ProviderSet, call_deadline_seconds
from flightsync.resilience import Budgets, SentWindowStorage, provider_budgets

# `status --check` alerts when a budget's spend reaches these shares of it.
BUDGET_ALERT_SHARES = (0.8, 1.0)


@contextmanager
def open_budgets(settings: Settings, providers: ProviderSet, state_path: Path,
                 ) -> Iterator[Budgets]:
    """The run's budgets; their storage opens on the first call that needs it (the state
    directory's ``limits/`` folder, or Redis when ``state_url`` is set)."""
    defaults = {name: providers.default_limits(name) for name in providers.adapters}

    def storage() -> SentWindowStorage:
        # `limits` (and redis-py) load only when a provider with a budget is called.
        from flightsync.resilience import open_storage  # noqa: PLC0415

        return open_storage(settings.state_url, state_path)

    budgets = Budgets(storage,
                      provider_budgets(settings.providers, defaults),
                      hold_seconds=call_deadline_seconds(settings))
    try:
        yield budgets
    finally:
        budgets.close()


def budget_alerts(figures: dict[str, dict[str, Any]]) -> list[str]:
    """One alert per provider and budget period whose spend reached 80 % or 100 %."""
    alerts = []
    for provider, figure in figures.items():
        for period, cap in figure["budget"].items():
            spent = figure["spend"][period]
            share = spent / cap if cap else (1.0 if spent else 0.0)
            reached = [s for s in BUDGET_ALERT_SHARES if share >= s]
            if reached:
                alerts.append(f"{provider}: {period} budget {int(reached[-1] * 100)} % spent "
                              f"({spent:g} of {cap:g})")
        if figure["quota_exhausted_until"] is not None:
            alerts.append(f"{provider}: the provider's quota is spent until "
                          f"{figure['quota_exhausted_until']}")
    return alerts
