"""Adapters by name: a lazy ``name -> "module:Class"`` table (fsspec style). Built-ins first,
then the ``flightsync.adapters`` entry-point group, then run-time ``register`` calls; nothing is
imported until ``get`` asks for it."""

from __future__ import annotations

import importlib

import structlog

from flightsync.config import ADAPTER_ENTRY_POINT_GROUP, adapter_entry_points
from flightsync.errors import ConfigError
from flightsync.providers.base import Adapter

log = structlog.get_logger(__name__)

# One scan per process, shared with the config check (config.adapter_entry_points).
ENTRY_POINT_GROUP = ADAPTER_ENTRY_POINT_GROUP

BUILTINS: dict[str, str] = {
    "amadeus": "flightsync.providers.amadeus:AmadeusAdapter",
    "lufthansa": "flightsync.providers.lufthansa:LufthansaAdapter",
    "airfrance_klm": "flightsync.providers.airfrance_klm:AirFranceKlmAdapter",
    "british_airways": "flightsync.providers.british_airways:BritishAirwaysAdapter",
    "flightaware": "flightsync.providers.flightaware:FlightAwareAdapter",
    "cirium": "flightsync.providers.cirium:CiriumAdapter",
    "aviationstack": "flightsync.providers.aviationstack:AviationstackAdapter",
    "aerodatabox": "flightsync.providers.aerodatabox:AeroDataBoxAdapter",
}

_registered: dict[str, str | type[Adapter]] = {}


def _table() -> dict[str, str | type[Adapter]]:
    table: dict[str, str | type[Adapter]] = dict(BUILTINS)
    table.update(adapter_entry_points())
    table.update(_registered)
    return table


def names() -> list[str]:
    """Every known adapter name: built-ins in their fixed order, then the others sorted."""
    table = _table()
    builtin = [name for name in BUILTINS if name in table]
    return builtin + sorted(name for name in table if name not in BUILTINS)


def register(name: str, target: str | type[Adapter]) -> None:
    """Make ``name`` resolve to ``target`` (a ``"module:Class"`` string or the class itself),
    overriding a built-in or entry point of the same name."""
    if not name or not name.replace("_", "").isalnum():
        raise ConfigError(f"invalid adapter name {name[:40]!r}: use letters, digits and _")
    if isinstance(target, str) and ":" not in target:
        raise ConfigError(f"adapter target {target[:80]!r} for {name!r} must be 'module:Class'")
    _registered[name] = target


def unregister(name: str) -> None:
    """Undo a run-time ``register`` (built-ins and entry points stay)."""
    _registered.pop(name, None)


def get(name: str) -> type[Adapter]:
    """The adapter class for ``name``, imported on first use.

    ConfigError when the name is unknown (listing the known ones) or the module cannot be
    imported (saying what to install).
    """
    target = _table().get(name)
    if target is None:
        raise ConfigError(f"unknown provider {name[:40]!r}; known providers: "
                          f"{', '.join(names())}")
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module_name
        log.warning("provider.registry.import_failed", provider=name, module=module_name)
        raise ConfigError(f"provider {name!r} cannot be loaded from {target!r}: module "
                          f"{missing!r} is missing; install the package that provides it "
                          f"(e.g. pip install {missing.split('.')[0]})") from exc
    adapter = getattr(module, attribute, None)
    if not isinstance(adapter, type) or not callable(getattr(adapter, "fetch", None)):
        raise ConfigError(f"provider {name!r}: {target!r} is not an adapter class with fetch()")
    loaded: type[Adapter] = adapter
    return loaded
