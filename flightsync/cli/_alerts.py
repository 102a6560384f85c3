"""`alerts register|list|remove`: FlightAware AeroAPI alerts for tracked flights (README,
"FlightAware alerts")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._dates import DATE_HELP, query_for
from flightsync.cli._engine import engine_for
from flightsync.cli._state import JsonOption, begin

if TYPE_CHECKING:
    from rich.console import Console

alerts_app = typer.Typer(help="FlightAware alerts for tracked flights (pushed changes, "
                              "fewer polls).", no_args_is_help=True)
ALERT_COLUMNS = ["alert_id", "flight", "date", "events", "status", "endpoint"]


@alerts_app.callback()
def _json_after_group(ctx: typer.Context, json_out: JsonOption = False) -> None:
    # `--json` right after the group's name (`alerts --json list`), as after a command's.
    if json_out:
        begin(ctx, json_out)


@alerts_app.command("register")
def alerts_register(
    ctx: typer.Context,
    flight: Annotated[str | None, typer.Option(
        "--flight", metavar="FLIGHT", show_default=False,
        help="Only this tracked flight (e.g. LH400); default: every tracked flight without "
             "an alert.")] = None,
    date: Annotated[str | None, typer.Option(
        "--date", metavar="YYYY-MM-DD|today|tomorrow", show_default=False,
        help=f"With --flight: {DATE_HELP}")] = None,
    json_out: JsonOption = False,
) -> None:
    """Register an AeroAPI alert for every tracked flight that lacks one (or --flight F
    --date D); running it again creates nothing new."""
    state = begin(ctx, json_out)
    if flight is None and date is not None:
        raise typer.BadParameter("--date needs --flight", param_hint="--date")
    query = query_for(ctx, state, flight, date, stored=True) if flight is not None else None
    with engine_for(ctx, state, "alerts") as engine:
        data = engine.alerts_register(query)
    _render.emit(state, data, _register_table)
    if data["failed"]:
        raise typer.Exit(1)


def _register_table(console: Console, data: dict[str, Any]) -> None:
    if data["created"]:
        _render.records(console, [_row(a) for a in data["created"]], "registered",
                        ALERT_COLUMNS)
    for failed in data["failed"]:
        console.print(f"failed: {failed['flight']} {failed['date']}: "
                      f"{failed['error']['message']}")
    console.print(f"{len(data['created'])} registered, {data['existing']} already had one, "
                  f"{len(data['failed'])} failed")


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option(
        "--all", help="Removed and finished alerts too.")] = False,
    json_out: JsonOption = False,
) -> None:
    """The recorded alerts: id, flight, date, events, status and where they deliver (the
    token masked)."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "alerts") as engine:
        data = engine.alerts_list(include_removed=all_)
    _render.emit(state, data, _list_table)


def _list_table(console: Console, data: dict[str, Any]) -> None:
    _render.records(console, [_row(a) for a in data["alerts"]], "alerts", ALERT_COLUMNS)


def _row(alert: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "events": ",".join(alert["events"])}


@alerts_app.command("remove")
def alerts_remove(
    ctx: typer.Context,
    alert_id: Annotated[int | None, typer.Argument(
        metavar="[ALERT_ID]", show_default=False, min=1,
        help="The alert to remove (see `alerts list`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every live alert.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Delete one alert (by id) or every live one (--all) at AeroAPI; its flight is polled
    at the usual rate again."""
    state = begin(ctx, json_out)
    if (alert_id is None) == (not all_):
        raise typer.BadParameter("give one ALERT_ID or --all", param_hint="ALERT_ID")
    with engine_for(ctx, state, "alerts") as engine:
        data = engine.alerts_remove(alert_id)
    _render.emit(state, data)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
