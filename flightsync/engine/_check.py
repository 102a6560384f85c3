"""`flightsync providers --check`: one cheap authenticated call per configured provider, to
say whose credentials work (as `gh auth status` does for its hosts).

The call is a data request for flight 1 of a carrier the provider covers, today: any answer,
"no such flight" or a refusal of the request itself (a 4xx other than 401/403) included,
proves the credentials (and, for the OAuth providers, the token
fetched with them: tokens are keyed by a hash of the credentials). It goes past the cache, the
breaker and the retries, since their job is to avoid exactly this call; the HTTP timeout
still bounds it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from flightsync.errors import (
    FlightNotFound,
    FlightsyncError,
    ProviderAuthError,
    ProviderRequestRejected,
)
from flightsync.models import FlightQuery
from flightsync.providers import ProviderSet

PROBE_NUMBER = 1
_ANY_CARRIER = "LH"  # for a provider that covers every airline
_MAX_PARALLEL = 8


def probe_query(providers: ProviderSet, name: str) -> FlightQuery:
    """The flight asked of ``name``: number 1 of a carrier it covers, today (UTC)."""
    carriers = providers.carriers(name)
    carrier = min(carriers) if carriers else _ANY_CARRIER
    return FlightQuery(carrier=carrier, number=PROBE_NUMBER,
                       departure_date=datetime.now(UTC).date())


def check_one(providers: ProviderSet, name: str) -> dict[str, Any]:
    """``{"ok", "error", "message", "ms"}`` for one provider's probe call."""
    started = time.perf_counter()
    query = probe_query(providers, name)
    error: FlightsyncError | None = None
    accepted = "credentials accepted"
    try:
        providers.adapters[name].fetch(query)
    except FlightNotFound:
        pass  # an authenticated answer
    except ProviderRequestRejected as exc:  # past authentication, then refused the probe
        accepted = f"credentials accepted (the probe request itself was refused: {exc.status})"
    except FlightsyncError as exc:
        error = exc
    except Exception as exc:  # an adapter bug: reported for this provider, not a crash
        error = FlightsyncError(f"{name}: internal error: {type(exc).__name__}")
    ms = int((time.perf_counter() - started) * 1000)
    if error is None:
        return {"ok": True, "error": None, "message": accepted, "ms": ms}
    message = error.message
    if isinstance(error, ProviderAuthError):
        status = f" ({error.status})" if error.status else ""
        names = " and ".join(providers.credential_env(name)) or "its credentials"
        message = f"credentials refused{status}: check {names}"
    return {"ok": False, "error": error.code, "message": message, "ms": ms}


def check_providers(providers: ProviderSet) -> dict[str, dict[str, Any]]:
    """The probe of every configured provider, in parallel, by name."""
    names = list(providers.adapters)
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL, len(names)),
                            thread_name_prefix="flightsync-check") as pool:
        futures = {name: pool.submit(check_one, providers, name) for name in names}
        return {name: future.result() for name, future in futures.items()}
