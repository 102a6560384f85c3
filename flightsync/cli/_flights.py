"""`flights list|show|track|untrack|delete`: the flights flightsync stores and tracks."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._dates import DateOption, query_for
from flightsync.cli._engine import engine_for
from flightsync.cli._state import JsonOption, begin

if TYPE_CHECKING:
    from rich.console import Console

flights_app = typer.Typer(help="The flights flightsync stores and tracks.", no_args_is_help=True)

FlightArgument = Annotated[str, typer.Argument(
    metavar="FLIGHT", show_default=False, help="Flight designator, e.g. LH400.")]
# Designator and date share a cell (they wrap between them): six columns of whole ISO times
# do not fit 80 columns, five do.
LIST_COLUMNS = ["flight", "route", "status", "departs", "next_due"]


@flights_app.callback()
def _json_after_group(ctx: typer.Context, json_out: JsonOption = False) -> None:
    # `--json` right after the group's name (`flights --json list`), as after a command's.
    if json_out:
        begin(ctx, json_out)


@flights_app.command("list")
def flights_list(
    ctx: typer.Context,
    tracked: Annotated[bool, typer.Option(
        "--tracked", help="Only flights batch --due keeps refreshing.")] = False,
    due: Annotated[bool, typer.Option(
        "--due", help="Only the flights batch --due would sync now.")] = False,
    limit: Annotated[int, typer.Option(
        "--limit", min=1, max=100000, metavar="N",
        help="At most this many flights, earliest departure first.")] = 100,
    json_out: JsonOption = False,
) -> None:
    """Stored flights, earliest departure first: route, status, whether tracked, next due."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "flights") as engine:
        data = engine.flights(tracked=tracked, due=due, limit=limit)
    _render.emit(state, data, _list_table)


def _list_table(console: Console, data: dict[str, Any]) -> None:
    rows = [{**row, "flight": f"{row['flight']} {row['date']}", "route": _route(row),
             "departs": row["scheduled_departure"],
             "next_due": row["next_sync_due_at"] if row["tracked"] else "untracked"}
            for row in data["flights"]]
    _render.records(console, rows, "flights", LIST_COLUMNS)
    if data.get("total_capped"):
        console.print(f"{len(rows)} of more than {data['total']:,} flights shown; "
                      "--limit N shows more")
    elif data["total"] > len(rows):
        console.print(f"{len(rows)} of {data['total']} flights shown; --limit N shows more")


def _route(row: dict[str, Any]) -> str:
    legs = row.get("legs") or 1
    return (f"{row['origin']} → {row.get('destination') or '?'}"
            + (f" (+{legs - 1} legs)" if legs > 1 else ""))


@flights_app.command("show")
def flights_show(ctx: typer.Context, flight: FlightArgument, date: DateOption = None,
                 json_out: JsonOption = False) -> None:
    """One stored flight: every leg, and its sync bookkeeping (tracked, next due, errors)."""
    state = begin(ctx, json_out)
    query = query_for(ctx, state, flight, date, stored=True)
    with engine_for(ctx, state, "flights") as engine:
        data = engine.flight(query)
    _render.emit(state, data, _show_table)


def _show_table(console: Console, data: dict[str, Any]) -> None:
    _render.sync_result(console, {"legs": data["legs"]}, summary=False)
    _render.generic(console, {k: v for k, v in data.items() if k != "legs"})


@flights_app.command("track")
def flights_track(ctx: typer.Context, flight: FlightArgument, date: DateOption = None,
                  json_out: JsonOption = False) -> None:
    """Track a stored flight again: the next batch --due refreshes it."""
    _set_tracked(ctx, flight, date, json_out, tracked=True)


@flights_app.command("untrack")
def flights_untrack(ctx: typer.Context, flight: FlightArgument, date: DateOption = None,
                    json_out: JsonOption = False) -> None:
    """Stop batch --due refreshing a flight; it stays stored (a later sync tracks it again)."""
    _set_tracked(ctx, flight, date, json_out, tracked=False)


def _set_tracked(ctx: typer.Context, flight: str, date: str | None, json_out: bool, *,
                 tracked: bool) -> None:
    state = begin(ctx, json_out)
    query = query_for(ctx, state, flight, date, stored=True)
    with engine_for(ctx, state, "flights") as engine:
        data = engine.track(query, tracked=tracked)
    _render.emit(state, data)


@flights_app.command("delete")
def flights_delete(
    ctx: typer.Context,
    flight: FlightArgument,
    date: DateOption = None,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask first (asked only at a terminal).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Delete a stored flight with its audit trail, observations and conflicts (one
    transaction) and its cached answers."""
    state = begin(ctx, json_out)
    query = query_for(ctx, state, flight, date, stored=True)
    # As `migrate downgrade`: an operator at a terminal confirms; scripts and cron do not.
    if not yes and _at_terminal() and not typer.confirm(
            f"Delete {query.designator} on {query.departure_date.isoformat()} with its audit "
            "trail, observations and conflicts?", default=False, err=True):
        _render.note("flights delete: nothing done")
        raise typer.Exit(1)
    with engine_for(ctx, state, "flights") as engine:
        data = engine.delete_flight(query)
    _render.emit(state, data)


def _at_terminal() -> bool:
    return sys.stdin.isatty()


def register(app: typer.Typer) -> None:
    app.add_typer(flights_app, name="flights")
