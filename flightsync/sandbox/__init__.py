"""The sandbox: a loopback server that speaks every provider's real wire format.

One port serves Amadeus, Lufthansa, Air France-KLM, British Airways (legacy v1) and
FlightAware AeroAPI with deterministic synthetic flights, credentials ``sandbox``/``sandbox``
(API keys ``sandbox``), and scripted faults, latency and disagreements from a scenario
(:class:`SandboxConfig`). ``GET /_sandbox/stats``, ``POST /_sandbox/reset`` and
``POST /_sandbox/scenario`` control it at run time. It imports nothing from the providers,
the engine or the CLI: it is an independent implementation of the formats.
"""

from flightsync.sandbox._config import FAULT_KINDS, Fault, Override, SandboxConfig
from flightsync.sandbox._run import sandbox_environment, serve
from flightsync.sandbox._server import Sandbox

__all__ = [
    "FAULT_KINDS",
    "Fault",
    "Override",
    "Sandbox",
    "SandboxConfig",
    "sandbox_environment",
    "serve",
]
