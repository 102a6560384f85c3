"""flightsync.providers: the adapter interface, the registry and the wiring from settings.

Adapters are loaded lazily by name through :mod:`flightsync.providers.registry`.
"""

from flightsync.providers import registry
from flightsync.providers._airports import airport_tz, local_to_utc
from flightsync.providers._build import (
    ALL_CARRIERS,
    ProviderInfo,
    ProviderSet,
    build_providers,
    call_deadline_seconds,
    credential_key,
)
from flightsync.providers._deadline import provider_deadline
from flightsync.providers._oauth import OAuthTokenSource, bearer_get
from flightsync.providers.base import Adapter, TokenSource

__all__ = [
    "ALL_CARRIERS", "Adapter", "OAuthTokenSource", "ProviderInfo", "ProviderSet", "TokenSource",
    "airport_tz", "bearer_get", "build_providers", "call_deadline_seconds", "credential_key",
    "local_to_utc", "provider_deadline", "registry",
]
