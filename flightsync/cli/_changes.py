"""`changes`: the stored flight changes as JSON Lines, resumable from a cursor (README,
"Change feed")."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Annotated, Any

import typer

from flightsync.cli._dates import DATE_HELP, query_for
from flightsync.cli._engine import engine_for
from flightsync.cli._state import begin

MAX_INTERVAL = 300.0


def changes(
    ctx: typer.Context,
    *,
    since: Annotated[int, typer.Option(
        "--since", metavar="CURSOR", min=0,
        help="Only changes after this cursor (the `cursor` of the last line a script saw); "
             "0: from the first change stored.")] = 0,
    follow: Annotated[bool, typer.Option(
        "--follow", help="After the stored changes, wait for new ones (polling the database) "
                         "until interrupted.")] = False,
    interval: Annotated[float, typer.Option(
        "--interval", metavar="SECONDS", min=0.05, max=MAX_INTERVAL,
        help="With --follow: seconds between polls.")] = 1.0,
    flight: Annotated[str | None, typer.Option(
        "--flight", metavar="FLIGHT", show_default=False,
        help="Only this flight's changes (with --date).")] = None,
    date: Annotated[str | None, typer.Option(
        "--date", metavar="YYYY-MM-DD|today|tomorrow", show_default=False,
        help=f"With --flight: {DATE_HELP}")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", metavar="N", min=1, show_default=False,
        help="At most N changes (not with --follow).")] = None,
) -> None:
    """Print stored flight changes as JSON Lines, oldest first: flight, date, origin, field,
    old, new, source, rule, version, at and a cursor. Resume with --since CURSOR; every
    change is printed once, in order. Exit 0; 130 when interrupted."""
    state = begin(ctx)
    if flight is None and date is not None:
        raise typer.BadParameter("--date needs --flight", param_hint="--date")
    if follow and limit is not None:
        raise typer.BadParameter("--limit cannot be combined with --follow",
                                 param_hint="--limit")
    query = query_for(ctx, state, flight, date, stored=True) if flight is not None else None
    with engine_for(ctx, state, "changes") as engine:
        if not follow:
            for row in engine.changes(since, query=query, limit=limit):
                _emit(row)
            return
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            engine.follow_changes(since, interval=interval, stop=stop, emit=_emit,
                                  query=query)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _emit(row: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("changes")(changes)
