"""Defensive readers for provider JSON: every schema violation becomes ProviderBadResponse
naming the place, so no KeyError or TypeError ever leaves an adapter."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import structlog

from flightsync.errors import ProviderBadResponse, ProviderError
from flightsync.models import FlightStatus

log = structlog.get_logger(__name__)


def bad(provider: str, message: str) -> ProviderBadResponse:
    return ProviderBadResponse(f"{provider}: {message}", provider=provider)


@contextmanager
def schema_guard(provider: str) -> Iterator[None]:
    """Last line of defence around a parser: stray lookup/type errors become
    ProviderBadResponse with the cause chained."""
    try:
        yield
    except ProviderError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise bad(provider, f"unexpected response shape ({type(exc).__name__}: "
                            f"{str(exc)[:80]})") from exc


def as_object(value: Any, provider: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise bad(provider, f"{where} is not an object")
    return value


def as_list(value: Any, provider: str, where: str, *, collapse: bool = False) -> list[Any]:
    """A JSON array; with ``collapse``, also None (-> []) and a lone object (-> [object]), the
    shape XML-to-JSON converters give a one-element list."""
    if isinstance(value, list):
        return value
    if collapse and value is None:
        return []
    if collapse and isinstance(value, Mapping):
        return [value]
    raise bad(provider, f"{where} is not a list")


def required(obj: Mapping[str, Any], key: str, provider: str, where: str) -> Any:
    if key not in obj or obj[key] is None:
        raise bad(provider, f"missing {where}.{key}")
    return obj[key]


def text(value: Any, provider: str, where: str) -> str | None:
    """A string field that may arrive as a JSON number (``"Name": 1``); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise bad(provider, f"{where} is not a string")
    out = str(value).strip()
    return out or None


def integer(value: Any, provider: str, where: str) -> int:
    """An integer that may arrive as a number or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise bad(provider, f"{where} is not an integer")


_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<d>-?\d+)D)?(?:T(?:(?P<h>-?\d+)H)?(?:(?P<m>-?\d+)M)?"
    r"(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?$"
)


def duration(value: Any, provider: str, where: str) -> timedelta:
    """ISO 8601 duration as Amadeus writes it, negative parts allowed (``PT-24M``)."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or value in ("P", "PT", "-P", "-PT"):
        raise bad(provider, f"{where} is not an ISO 8601 duration")
    delta = timedelta(days=int(match["d"] or 0), hours=int(match["h"] or 0),
                      minutes=int(match["m"] or 0), seconds=float(match["s"] or 0))
    return -delta if match["sign"] else delta


def mapped_status(table: Mapping[str, FlightStatus], code: str | None, provider: str,
                  what: str) -> FlightStatus | None:
    """The normalized status for ``code``; an unknown code is UNKNOWN and logged."""
    if code is None:
        return None
    status = table.get(code.upper())
    if status is None:
        log.warning("provider.status.unknown", provider=provider, field=what, code=code[:40])
        return FlightStatus.UNKNOWN
    return status
