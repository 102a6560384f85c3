"""The adapter interface (docs/ARCHITECTURE.md, providers).

An adapter is handed a ready ``httpx.Client`` (base URL and timeouts set) and, for OAuth
providers, a :class:`TokenSource`. It builds requests and parses responses, nothing else:
cache, breaker, retry and rate limits wrap it from the engine. No httpx exception leaves an
adapter; every failure is a :class:`flightsync.errors.ProviderError` subclass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:  # httpx costs ~0.1 s to import: commands that fetch nothing never load it
    from contextlib import AbstractContextManager

    import httpx

    from flightsync.config import ProviderSettings
    from flightsync.models import FlightQuery, Observation


class TokenSource(Protocol):
    """Hands out a bearer token, cached across processes until shortly before expiry."""

    def token(self) -> str:
        """A valid access token, fetching one when none is cached."""
        ...

    def invalidate(self, rejected: str) -> None:
        """Forget ``rejected`` after the provider refused it, so the next ``token()`` refreshes.
        Two threads reporting the same rejected token cause one refresh, not two."""
        ...


class TokenStore(Protocol):
    """Where OAuth tokens are kept between processes and hosts: the state store's ``tokens``
    bucket (``resilience.Bucket`` fits: the state directory, or Redis shared by every host).
    Its own failures raise StoreError."""

    def get(self, key: str) -> object | None: ...

    def set(self, key: str, value: object, *, ttl: float | None = None,
            tag: str | None = None) -> None: ...

    def delete(self, key: str) -> bool: ...

    def lock(self, name: str, *, hold: float, wait: float) -> AbstractContextManager[bool]:
        """Held at most ``hold`` seconds, waited for at most ``wait``; yields whether held."""
        ...


class Adapter(Protocol):
    """One provider. Class attributes describe it; ``fetch`` does one lookup."""

    name: ClassVar[str]                     # as in docs/CONTRACTS.md section 4, e.g. "lufthansa"
    default_base_url: ClassVar[str]
    default_priority: ClassVar[int]         # higher ranks first when the policy names none
    default_carriers: ClassVar[frozenset[str] | None]  # None: covers every carrier
    credential_env: ClassVar[tuple[str, ...]]  # environment variables it needs, in order
    uses_oauth: ClassVar[bool]              # True: the engine builds a TokenSource for it
    # False: the provider cannot be asked for an operational suffix (LH400A), so a suffixed
    # flight is never sent to it; read with getattr, an adapter without it counts as True.
    serves_operational_suffix: ClassVar[bool]

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None: ...

    def fetch(self, query: FlightQuery) -> Observation:
        """The provider's normalized answer for ``query``.

        Raises FlightNotFound when the provider knows no such flight, and another
        ProviderError subclass for every other failure (the cause chained with ``from``).
        """
        ...
