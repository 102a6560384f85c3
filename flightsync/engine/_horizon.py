"""How far ahead a sync may reach without saying so, and the relative dates a command accepts.

Light on purpose (no store): `sync` checks this before it answers from the cache.
"""

from __future__ import annotations

from datetime import date

from flightsync.errors import InputError
from flightsync.models import FlightQuery

# The words `--date` accepts besides YYYY-MM-DD, as days after today.
RELATIVE_DAYS = {"today": 0, "tomorrow": 1}


def refuse_far_future(query: FlightQuery, *, max_days_ahead: int, today: date) -> None:
    """InputError (exit 2) for a flight more than ``max_days_ahead`` days after ``today``: a
    sync tracks the flight, and the providers' status APIs publish days, not months, ahead,
    so a mistyped year would be polled every hour for nothing until it departs."""
    ahead = (query.departure_date - today).days
    if ahead > max_days_ahead:
        raise InputError(
            f"{query.designator} on {query.departure_date.isoformat()} is {ahead} days ahead, "
            f"beyond sync.max_days_ahead ({max_days_ahead}); pass --track to sync and track "
            "it anyway", code="far_future")
