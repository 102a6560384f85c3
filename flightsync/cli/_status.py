"""Read-only views: `status`, `providers`, `explain`, `sources`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._dates import DateOption, query_for
from flightsync.cli._engine import engine_for
from flightsync.cli._state import JsonOption, begin
from flightsync.cli._sync import FlightArgument

if TYPE_CHECKING:
    from rich.console import Console

ALERT_EXIT = 3


def status(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option(
        "--check", help="Exit 3 and name the alert when an alert condition holds.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Breakers, cache, tokens (validity only), database and the last run."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "status") as engine:
        data = engine.status()
    _render.emit(state, data, lambda console, shown: _render.status(
        console, shown, alerts=not check))  # with --check the alerts go to stderr, once
    alerts = data.get("alerts") or []
    if check and alerts:
        for alert in alerts:
            _render.note(f"alert: {alert}")
        raise typer.Exit(ALERT_EXIT)


def providers(
    ctx: typer.Context,
    check: Annotated[bool, typer.Option(
        "--check", help="Make one authenticated call per configured provider and say whose "
        "credentials work; exit 3 when one does not.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Each provider: carriers covered, priority, configured or not (and why), base URL."""
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "providers") as engine:
        rows = engine.providers(check=check)
    _render.emit(state, {"providers": rows},
                 lambda console, data: _render.records(
                     console, data["providers"], "providers",
                     ["name", "configured", "priority", "carriers", "base_url", "reason"]))
    if check:
        _report_checks(rows)


def _report_checks(rows: list[dict[str, Any]]) -> None:
    """One line per configured provider on stderr (`check: NAME: ok|...`); exit 3 when one
    failed or none is configured."""
    checked = [row for row in rows if row.get("check") is not None]
    for row in checked:
        outcome = row["check"]
        word = "ok" if outcome["ok"] else f"failed ({outcome['error']})"
        _render.note(f"check: {row['name']}: {word}: {outcome['message']} ({outcome['ms']} ms)")
    if not checked:
        _render.note("check: no provider is configured; see the reasons above")
    if not checked or not all(row["check"]["ok"] for row in checked):
        raise typer.Exit(ALERT_EXIT)


def explain(ctx: typer.Context, flight: FlightArgument, date: DateOption = None,
            json_out: JsonOption = False) -> None:
    """Per field: the stored value, the provider that gave it, the rule, what others said."""
    state = begin(ctx, json_out)
    query = query_for(ctx, state, flight, date, stored=True)
    with engine_for(ctx, state, "explain") as engine:
        data = engine.explain(query)
    _render.emit(state, data, _explain_table)


def sources(
    ctx: typer.Context,
    recompute: Annotated[bool, typer.Option(
        "--recompute", help="Recompute the figures from the stored observations.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Each provider's learned accuracy and coverage per field (policy rule `accuracy`).

    --recompute relearns them from each provider's latest observation of every leg synced in
    the last 30 days (batch does this after every run).
    """
    state = begin(ctx, json_out)
    with engine_for(ctx, state, "sources") as engine:
        data = engine.sources(recompute=recompute)
    _render.emit(state, data, _sources_table)


def _sources_table(console: Console, data: dict[str, Any]) -> None:
    rows = [{"source": source, "field": field, **figures}
            for source, fields in data.get("sources", {}).items()
            for field, figures in fields.items()]
    _render.records(console, rows, "source scores",
                    ["source", "field", "accuracy", "coverage", "observations"])
    when = data.get("computed_at") or "never (run `flightsync sources --recompute`)"
    console.print(f"computed: {when}; a provider or field without a score counts at the "
                  f"prior accuracy {data.get('prior')}")
    for pair in data.get("history", {}).get("copies", []):
        console.print(f"copying suspected: {' and '.join(pair['sources'])} "
                      f"(dependence {pair['dependence']})")


def _explain_table(console: Console, data: dict[str, Any]) -> None:
    legs = data.get("legs")
    if not isinstance(legs, list):
        _render.generic(console, data)
        return
    for leg in legs:
        title = " ".join(str(leg.get(k, "")) for k in ("origin", "destination"))
        _render.records(console, leg.get("fields", []), f"leg {leg.get('leg_index', '')} {title}")
        if leg.get("rejected"):
            _render.records(console, leg["rejected"],
                            f"leg {leg.get('leg_index', '')} {title}: rejected as implausible",
                            ["source", "field", "value", "reason", "detail"])


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("providers")(providers)
    app.command("explain")(explain)
    app.command("sources")(sources)
