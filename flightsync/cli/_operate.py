"""Operator controls: `conflicts list|resolve`, `breaker reset`, `cache clear`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._engine import engine_for
from flightsync.cli._state import JsonOption, begin, parse_query

conflicts_app = typer.Typer(help="Settle conflicts escalated to an operator.",
                            no_args_is_help=True)
breaker_app = typer.Typer(help="Circuit breakers per provider.", no_args_is_help=True)
cache_app = typer.Typer(help="The observation cache.", no_args_is_help=True)


def _json_after_group(ctx: typer.Context, json_out: JsonOption = False) -> None:
    # `--json` right after the group's name (`conflicts --json list`), as after a command's.
    if json_out:
        begin(ctx, json_out)


for _group in (conflicts_app, breaker_app, cache_app):
    _group.callback()(_json_after_group)


@conflicts_app.command("list")
def conflicts_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include resolved conflicts.")] = False,
    limit: Annotated[int, typer.Option(
        "--limit", min=1, max=100000, metavar="N",
        help="At most this many conflicts, oldest first.")] = 50,
    json_out: JsonOption = False,
) -> None:
    """Open conflicts (with --all, resolved ones too), oldest first."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "conflicts") as engine:
        data = engine.conflicts(include_resolved=all_, limit=limit)
    _render.emit(state, data, _conflicts_table)


def _conflicts_table(console: Any, data: dict[str, Any]) -> None:
    _render.records(console, data["conflicts"], "conflicts",
                    ["id", "flight", "date", "leg_index", "field", "values", "status"])
    if data["more"]:
        console.print(f"first {len(data['conflicts'])} shown, more exist; --limit N shows "
                      "more")


@conflicts_app.command("resolve")
def conflicts_resolve(
    ctx: typer.Context,
    conflict_id: Annotated[int, typer.Argument(metavar="ID", help="The conflict's id.",
                                               show_default=False)],
    use: Annotated[str | None, typer.Option(
        "--use", metavar="SOURCE", help="Take this provider's value.", show_default=False)] = None,
    value: Annotated[str | None, typer.Option(
        "--value", metavar="VALUE", help="Store this value.", show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    """Settle one conflict with a provider's value (--use) or a value of your own (--value)."""
    state = begin(ctx, json_out)
    if (use is None) == (value is None):
        raise typer.BadParameter("give exactly one of --use SOURCE or --value VALUE", ctx=ctx,
                                 param_hint="--use / --value")
    with engine_for(ctx, state, "conflicts") as engine:
        data = engine.resolve_conflict(conflict_id, use_source=use, value=value)
    _render.emit(state, data)


@breaker_app.command("reset")
def breaker_reset(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(
        metavar="[NAME]", help="The provider; all of them when omitted.",
        show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    """Close a provider's breaker (or every breaker) so the next run calls it again."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "breaker") as engine:
        names = engine.reset_breaker(name)
    _render.emit(state, {"reset": names})


@cache_app.command("clear")
def cache_clear(
    ctx: typer.Context,
    flight: Annotated[str | None, typer.Argument(
        metavar="[FLIGHT]", help="Only this flight (needs --date); everything when omitted.",
        show_default=False)] = None,
    date: Annotated[str | None, typer.Option(
        "--date", metavar="YYYY-MM-DD", help="The flight's date.", show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    """Drop cached provider answers: one flight's, or all of them."""
    state = begin(ctx, json_out)
    if (flight is None) != (date is None):
        raise typer.BadParameter("FLIGHT and --date go together", ctx=ctx,
                                 param_hint="FLIGHT / --date")
    query = parse_query(flight, date) if flight and date else None
    with engine_for(ctx, state, "cache") as engine:
        dropped = engine.clear_cache(query)
    _render.emit(state, {"cleared": dropped,
                         "flight": query.designator if query else None,
                         "date": query.departure_date.isoformat() if query else None})


def register(app: typer.Typer) -> None:
    app.add_typer(conflicts_app, name="conflicts")
    app.add_typer(breaker_app, name="breaker")
    app.add_typer(cache_app, name="cache")
