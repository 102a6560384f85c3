"""The Typer application: global options, then one module per command group.

Imports here stay light (typer only): the engine, pydantic, structlog and rich load inside the
commands that need them, so `flightsync --help` starts fast.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from flightsync.cli import (
    _alerts,
    _changes,
    _config,
    _flights,
    _migrate,
    _operate,
    _prune,
    _sandbox,
    _serve,
    _status,
    _sync,
    _webhook,
)
from flightsync.cli._errors import BoundaryGroup
from flightsync.cli._state import AppState

app = typer.Typer(
    cls=BoundaryGroup,
    name="flightsync",
    help="Keep a SQL database of flights in step with several flight-data providers.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from flightsync import __version__  # noqa: PLC0415

        typer.echo(f"flightsync {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    *,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="PATH", show_default=False, dir_okay=False,
        help="YAML config file (default: $FLIGHTSYNC_CONFIG, else built-in defaults).")
    ] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="JSON on stdout (also whenever stdout is not a terminal).")] = False,
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="Run against the bundled sandbox providers on a loopback port.")
    ] = False,
    verbose: Annotated[int, typer.Option(
        "-v", "--verbose", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors in the log.")
                     ] = False,
    _version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print flightsync's version and exit.")] = False,
) -> None:
    """Keep a SQL database of flights in step with several flight-data providers."""
    ctx.obj = AppState(config=config, json=json_out, sandbox=sandbox,
                       verbosity=-1 if quiet else verbose)


for _module in (_sync, _webhook, _status, _migrate, _operate, _sandbox, _flights, _config,
                _alerts, _prune, _serve, _changes):
    _module.register(app)


def run(args: list[str]) -> None:
    """Run the command ``args`` name (``flightsync.cli.main`` is the console script)."""
    _for_command(args)(args=args, prog_name="flightsync")


def _for_command(args: list[str]) -> typer.Typer:
    """``app`` holding only the command ``args`` name, when they name one exactly: Typer
    builds every command's parameters before it runs one (~20 ms of a cached sync). Anything
    else (root help, no command, a misspelt one: its error lists the others) gets the whole
    app."""
    name = _command_name(args)
    commands = [info for info in app.registered_commands
                if name is not None and _name_of(info.name, info.callback) == name]
    groups = [info for info in app.registered_groups
              if name is not None and isinstance(info.name, str) and info.name == name]
    if len(commands) + len(groups) != 1:
        return app
    only = copy.copy(app)
    only.registered_commands = commands
    only.registered_groups = groups
    return only


def _command_name(args: list[str]) -> str | None:
    """The first argument click would take as the command name, after the root options."""
    takes_value = {"--config"}
    position = 0
    while position < len(args):
        arg = args[position]
        if arg in ("-h", "--help", "--"):
            return None
        if not arg.startswith("-"):
            return arg
        position += 2 if arg in takes_value else 1
    return None


def _name_of(name: str | None, callback: Callable[..., Any] | None) -> str | None:
    if name:
        return name
    # Typer's own rule for a command named after its function.
    return callback.__name__.lower().replace("_", "-") if callback is not None else None
