"""flightsync's command line: a Typer app whose commands parse, open the engine, make one call
and render (rich at a terminal, JSON otherwise). ``_errors`` is its one error boundary."""

from flightsync.cli._app import app, main

__all__ = ["app", "main"]
