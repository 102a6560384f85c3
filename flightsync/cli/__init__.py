"""flightsync's command line: a Typer app whose commands parse, open the engine, make one call
and render (rich at a terminal, JSON otherwise). ``_errors`` is its one error boundary.

``main`` (the console script) loads without Typer, so that it can pause the garbage collector
before anything heavy is imported (``_startup``); ``app`` loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flightsync._lazy import lazy_exports

if TYPE_CHECKING:
    from flightsync.cli._app import app
    from flightsync.cli._startup import main

__getattr__, __dir__ = lazy_exports(__name__, globals(), {"app": "_app", "main": "_startup"})

__all__ = ["app", "main"]
