"""Which providers a sync asks: the one rule, shared by the engine and the cached-sync fast
path (which must not import the engine's store-bound modules).

Everything here is read from the provider set's settings and adapter classes: choosing
builds no adapter and no HTTP client, so a cached sync never loads httpx.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flightsync.errors import InputError, NoProviderError

if TYPE_CHECKING:
    from flightsync.models import FlightQuery
    from flightsync.providers import ProviderSet


def providers_for(providers: ProviderSet, query: FlightQuery,
                  sources: Sequence[str] | None) -> list[str]:
    """The usable providers that cover this flight's carrier, limited to ``sources``; for a
    flight with an operational suffix (LH400A), only those that can be asked for one.

    InputError for a source that is unknown, unusable, or named for a suffixed flight it
    cannot be asked for; NoProviderError when no provider is configured at all, or when the
    providers covering the carrier all lack suffixes.
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
            if query.suffix and not providers.serves_suffix(name):
                raise InputError(
                    f"source {name!r} does not serve operational suffixes, so it cannot be "
                    f"asked for {query.designator}", code="invalid_source")
        names = list(dict.fromkeys(sources))
    else:
        names = list(providers.adapters)
    chosen = [n for n in names if providers.covers(n, query.carrier)]
    if not providers.adapters:
        raise NoProviderError(
            "no provider is configured: set a provider's credentials (see `flightsync "
            "providers`) or use --sandbox")
    if query.suffix:
        # Asked for LH400, such a provider would answer for a different flight (or refuse
        # LH400A outright): skipping it is the only right answer.
        served = [n for n in chosen if providers.serves_suffix(n)]
        if chosen and not served:
            raise NoProviderError(
                f"no configured provider serves operational suffixes for carrier "
                f"{query.carrier} ({query.designator}): {', '.join(chosen)} cannot be asked "
                "for one")
        chosen = served
    return chosen
