"""Running the sandbox for people and other processes: the environment that points every
adapter at it, and a foreground server for ``flightsync sandbox serve``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from flightsync.sandbox._config import SandboxConfig
from flightsync.sandbox._server import Sandbox

CREDENTIAL = "sandbox"  # the sandbox's published credentials, not a secret


def sandbox_environment(base_url: str) -> dict[str, str]:
    """Every provider's ``*_BASE_URL`` and credential variable (docs/CONTRACTS.md §4), pointing
    at the sandbox at ``base_url``."""
    base = base_url.rstrip("/")
    return {
        "AMADEUS_BASE_URL": base,
        "AMADEUS_CLIENT_ID": CREDENTIAL,
        "AMADEUS_CLIENT_SECRET": CREDENTIAL,
        "LUFTHANSA_BASE_URL": base,
        "LUFTHANSA_CLIENT_ID": CREDENTIAL,
        "LUFTHANSA_CLIENT_SECRET": CREDENTIAL,
        "AFKLM_BASE_URL": base,
        "AFKLM_API_KEY": CREDENTIAL,
        "BA_BASE_URL": base,
        "BA_CLIENT_KEY": CREDENTIAL,
        # AeroAPI's paths live under /aeroapi, which is part of its documented base URL.
        "FLIGHTAWARE_BASE_URL": f"{base}/aeroapi",
        "FLIGHTAWARE_API_KEY": CREDENTIAL,
        # FlightStats' paths live under /flex/flightstatus/rest/v2/json, part of its base URL.
        "CIRIUM_BASE_URL": f"{base}/flex/flightstatus/rest/v2/json",
        "CIRIUM_APP_ID": CREDENTIAL,
        "CIRIUM_APP_KEY": CREDENTIAL,
        # apilayer's newer host serves the API under /aviationstack/v1.
        "AVIATIONSTACK_BASE_URL": f"{base}/aviationstack/v1",
        "AVIATIONSTACK_ACCESS_KEY": CREDENTIAL,
        # API.market's path prefix is part of AeroDataBox's documented base URL.
        "AERODATABOX_BASE_URL": f"{base}/api/v1/aedbx/aerodatabox",
        "AERODATABOX_API_KEY": CREDENTIAL,
    }


def serve(config: SandboxConfig, port: int = 0, *, announce: Callable[[str], None]) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM; ``announce`` gets the base URL first.
    Call from the main thread (it installs a SIGTERM handler for the duration)."""
    done = threading.Event()

    def _terminate(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, _terminate)
    sandbox = Sandbox(config, port=port)
    try:
        announce(sandbox.start())
        while not done.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
