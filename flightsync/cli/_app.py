"""The Typer application: global options, then one module per command group.

Imports here stay light (typer only): the engine, pydantic, structlog and rich load inside the
commands that need them, so `flightsync --help` starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flightsync.cli import _migrate, _operate, _sandbox, _status, _sync, _webhook
from flightsync.cli._errors import BoundaryGroup
from flightsync.cli._state import AppState

app = typer.Typer(
    cls=BoundaryGroup,
    name="flightsync",
    help="Keep a SQL database of flights in step with several flight-data providers.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
) -> None:
    """Keep a SQL database of flights in step with several flight-data providers."""
    ctx.obj = AppState(config=config, json=json_out, sandbox=sandbox,
                       verbosity=-1 if quiet else verbose)


for _module in (_sync, _webhook, _status, _migrate, _operate, _sandbox):
    _module.register(app)


def main() -> None:
    """Console-script entry point (`flightsync`)."""
    app(prog_name="flightsync")
