"""The flight table's identity as a key type, shared by the store's query modules.

A flight is one row per leg under (carrier, flight_number, suffix, departure_date); the
modules that select or lease flights by identity take it in this shape.
"""

from __future__ import annotations

from datetime import date

FlightKey = tuple[str, int, str, date]  # carrier, number, suffix, departure_date

__all__ = ["FlightKey"]
