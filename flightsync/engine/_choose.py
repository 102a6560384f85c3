"""Which providers a sync asks: the one rule, shared by the engine and the cached-sync fast
path (which must not import the engine's store-bound modules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flightsync.errors import InputError, NoProviderError

if TYPE_CHECKING:
    from flightsync.models import FlightQuery
    from flightsync.providers import ProviderSet


def providers_for(providers: ProviderSet, query: FlightQuery,
                  sources: Sequence[str] | None) -> list[str]:
    """The usable providers that cover this flight's carrier, limited to ``sources``.

    InputError for a source that is unknown or unusable; NoProviderError when no provider is
    configured at all.
    """
    if sources:
        for name in sources:
            if name not in providers.adapters:
                why = providers.skipped.get(name)
                raise InputError(
                    f"unknown or unusable source {name!r}"
                    + (f": {why}" if why else
                       f"; configured: {', '.join(sorted(providers.adapters))}"),
                    code="invalid_source")
        names = list(dict.fromkeys(sources))
    else:
        names = list(providers.adapters)
    chosen = [n for n in names if providers.covers(n, query.carrier)]
    if not providers.adapters:
        raise NoProviderError(
            "no provider is configured: set a provider's credentials (see `flightsync "
            "providers`) or use --sandbox")
    return chosen
