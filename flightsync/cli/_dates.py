"""`--date` as the commands that name one flight take it: YYYY-MM-DD, `today`, `tomorrow`, or
nothing (today). Relative dates are counted at the flight's departure airport when a stored
flight of that designator names it, since flight dates are local there; else in UTC."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flightsync.cli._state import AppState, parse_query

if TYPE_CHECKING:
    from flightsync.models import FlightQuery

DATE_HELP = ("The flight's date, local at its first origin: YYYY-MM-DD, today or tomorrow "
             "(default: today). today is the departure airport's when an earlier sync of "
             "this flight stored it, else UTC's.")
DateOption = Annotated[str | None, typer.Option(
    "--date", metavar="YYYY-MM-DD|today|tomorrow", show_default=False, help=DATE_HELP)]
# The same words as engine._horizon.RELATIVE_DAYS, kept here so that a dated command does
# not import the engine package to tell a word from a date.
_WORDS = ("today", "tomorrow")


def query_for(ctx: typer.Context, state: AppState, flight: str, date: str | None, *,
              stored: bool = False) -> FlightQuery:
    """The flight asked for, with ``date`` resolved (InputError, exit 2, when bad).
    ``stored``: the command works on a stored flight (engine ``day_for``'s prefer_stored)."""
    word = "today" if date is None else date.strip().lower()
    if word not in _WORDS:
        assert date is not None
        return parse_query(flight, date)
    from flightsync.engine import RELATIVE_DAYS, day_for  # noqa: PLC0415 - the store
    from flightsync.models import FlightQuery, parse_designator  # noqa: PLC0415

    carrier, number, suffix = parse_designator(flight)
    return FlightQuery.parse(flight, day_for(state.settings(ctx), carrier, number, suffix,
                                             RELATIVE_DAYS[word], prefer_stored=stored))
