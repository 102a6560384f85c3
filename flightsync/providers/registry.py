"""Adapters by name: a lazy ``name -> "module:Class"`` table (fsspec style). Built-ins first,
then the ``flightsync.adapters`` entry-point group, then run-time ``register`` calls; nothing is
imported until ``get`` asks for it."""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

import structlog

from flightsync.errors import ConfigError
from flightsync.providers.base import Adapter

log = structlog.get_logger(__name__)

ENTRY_POINT_GROUP = "flightsync.adapters"

BUILTINS: dict[str, str] = {
    "amadeus": "flightsync.providers.amadeus:AmadeusAdapter",
    "lufthansa": "flightsync.providers.lufthansa:LufthansaAdapter",
    "airfrance_klm": "flightsync.providers.airfrance_klm:AirFranceKlmAdapter",
    "british_airways": "flightsync.providers.british_airways:BritishAirwaysAdapter",
    "flightaware": "flightsync.providers.flightaware:FlightAwareAdapter",
}

_registered: dict[str, str | type[Adapter]] = {}


_scanned: tuple[tuple[tuple[str, float], ...], dict[str, str]] | None = None


def _path_stamp() -> tuple[tuple[str, float], ...]:
    stamp = []
    for entry in sys.path:
        try:
            stamp.append((entry, os.stat(entry or ".").st_mtime))
        except OSError:
            stamp.append((entry, -1.0))
    return tuple(stamp)


def _entry_point_targets() -> dict[str, str]:
    # Scanned again whenever sys.path or a folder on it changes (installing a plugin adds a
    # *.dist-info folder there), so a long-lived process sees new plugins without a restart;
    # otherwise the last scan serves, since each one reads every installed distribution's
    # metadata and a run asks once per adapter (benchmarks/RESULTS.md).
    global _scanned  # noqa: PLW0603 - a process-wide memo is the point
    stamp = _path_stamp()
    if _scanned is None or _scanned[0] != stamp:
        _scanned = (stamp, {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)})
    return dict(_scanned[1])


def _table() -> dict[str, str | type[Adapter]]:
    table: dict[str, str | type[Adapter]] = dict(BUILTINS)
    table.update(_entry_point_targets())
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
