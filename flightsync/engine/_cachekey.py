"""The observation cache of a run, in the namespace of its database and its providers' base
URLs (``resilience.cache_namespace``): shared by the engine and the cached-sync fast path, so
both read and write the same entries."""

from __future__ import annotations

from flightsync import config
from flightsync.providers import ProviderSet
from flightsync.resilience import ObservationCache, StateStore, cache_namespace


def observation_cache(state: StateStore, settings: config.Settings,
                      providers: ProviderSet) -> ObservationCache:
    """The cache for this configuration: the database URL and every known provider's base
    URL (configured or not, so adding a provider's credentials keeps the other entries)."""
    names = [*providers.adapters, *providers.skipped]
    namespace = cache_namespace(config.database_url(settings),
                                {name: providers.base_url(name) for name in names})
    return ObservationCache(state, settings.cache, namespace=namespace)
