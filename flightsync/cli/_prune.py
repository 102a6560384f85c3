"""`prune`: enforce the retention horizons now (README, "Retention")."""

from __future__ import annotations

from typing import Annotated

import typer

from flightsync.cli import _render
from flightsync.cli._engine import engine_for
from flightsync.cli._state import JsonOption, begin


def prune(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what is past each horizon; remove nothing.")] = False,
    full: Annotated[bool, typer.Option(
        "--full", help="Also look before the last complete pass (rows stored late for an "
        "old flight).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Remove what is past each retention horizon, a small transaction at a time; a killed
    prune is resumed by the next one."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "prune") as engine:
        data = engine.prune(dry_run=dry_run, full=full)
    _render.emit(state, data, lambda console, shown: _render.records(
        console, shown["tables"], "would remove" if dry_run else "removed",
        ["name", "table", "before", "removed"]))


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)
