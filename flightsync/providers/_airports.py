"""Airport time zones from the maintained ``airportsdata`` table (no network, no hand-written
list), for providers that send local times without an offset."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import airportsdata

from flightsync.errors import ProviderBadResponse


@cache
def _iata_table() -> dict[str, str]:
    # Loading the table parses ~7,000 rows; do it once per process, keep only the zone names.
    return {code: row["tz"] for code, row in airportsdata.load("IATA").items() if row.get("tz")}


@cache
def airport_tz(iata: str) -> ZoneInfo | None:
    """The time zone of the airport with IATA code ``iata``, or None when it is unknown."""
    name = _iata_table().get(iata.strip().upper())
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_to_utc(naive: datetime, iata: str, provider: str) -> datetime:
    """Read ``naive`` as wall-clock time at airport ``iata`` and return it as aware UTC.

    Raises ProviderBadResponse when the airport is unknown, since a guessed zone would store a
    wrong instant silently.
    """
    zone = airport_tz(iata)
    if zone is None:
        raise ProviderBadResponse(f"{provider}: unknown airport {iata[:8]!r}: cannot place a "
                                  "local time in a time zone", provider=provider)
    return naive.replace(tzinfo=zone).astimezone(UTC)


@cache
def _icao_to_iata() -> dict[str, str]:
    # The ICAO table is a second ~7,000-row parse; only a provider that sends an airport
    # without its IATA code ever needs it.
    return {code: row["iata"] for code, row in airportsdata.load("ICAO").items()
            if row.get("iata")}


def iata_for_icao(icao: str) -> str | None:
    """The IATA code of the airport with ICAO code ``icao``, or None when it has none."""
    return _icao_to_iata().get(icao.strip().upper())
