"""Provider budgets seen from the engine: built from the settings and the adapters' published
limits (read back by ``status``, ``_alerts.budget_alerts`` and ``_metrics``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flightsync.config import Settings
from flightsync.providers import ProviderSet, call_deadline_seconds
from flightsync.resilience import Budgets, SentWindowStorage, provider_budgets


@contextmanager
def open_budgets(settings: Settings, providers: ProviderSet, state_path: Path,
                 ) -> Iterator[Budgets]:
    """The run's budgets; their storage opens on the first call that needs it (the state
    directory's ``limits/`` folder, or Redis when ``state_url`` is set)."""
    defaults = {name: providers.default_limits(name) for name in providers.adapters}

    def storage() -> SentWindowStorage:
        # `limits` (and redis-py) load only when a provider with a budget is called.
        from flightsync.resilience import open_storage  # noqa: PLC0415

        return open_storage(settings.state_url, state_path,
                            key_prefix=f"{settings.state_prefix}:limits")

    budgets = Budgets(storage,
                      provider_budgets(settings.providers, defaults),
                      hold_seconds=call_deadline_seconds(settings))
    try:
        yield budgets
    finally:
        budgets.close()
