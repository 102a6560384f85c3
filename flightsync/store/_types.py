"""Column types shared by the tables."""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from flightsync.models import to_json_value


def stored_utc(value: datetime) -> datetime:
    """The instant a UTCDateTime column stores for ``value`` (aware, in UTC); anything but an
    aware datetime is refused: a naive one's time zone is a guess."""
    if not isinstance(value, datetime):
        raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"UTCDateTime needs an aware datetime, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def sqlite_text(value: datetime) -> str:
    """The text a UTCDateTime column holds on SQLite for ``value``: what the generic path
    (``process_bind_param``, then SQLite's DATETIME storage format) writes, for the write
    path's bulk statements that bypass SQLAlchemy's per-value processing."""
    # SQLAlchemy's SQLite DATETIME format: four-digit year, microseconds always written. The
    # text must match it exactly, or WHERE comparisons between the two paths' rows break.
    return stored_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def from_sqlite_text(text: str) -> datetime:
    """The aware UTC instant a UTCDateTime column's SQLite text holds (``sqlite_text``'s
    inverse; also what SQLAlchemy reads for it), for reads that bypass SQLAlchemy."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@lru_cache(maxsize=4096)
def json_default(value: Any) -> Any:
    """``to_json_value`` for the JSON encoder, which calls it only for what JSON lacks
    (instants, dates): StrEnums are str and tuples lists to it, as to_json_value renders them.
    Cached: a write group's few instants recur in every row."""
    plain = to_json_value(value)
    if plain is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return plain


def json_encoder(*, sort_keys: bool = False) -> Callable[[Any], str]:
    """An encoder with json.dumps's defaults (separators, ASCII escapes, as SQLAlchemy's JSON
    type uses them) and domain values rendered by ``to_json_value``. Built once: JSONEncoder
    makes a new C encoder on every call, a third of encoding a small dict."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the pure-Python encoder, same text
        return json.JSONEncoder(default=json_default, sort_keys=sort_keys).encode
    escape = json.encoder.encode_basestring_ascii
    encode = make(None, json_default, escape, None, ": ", ", ", sort_keys, False, True)

    def text(value: Any) -> str:
        if type(value) is str:
            return str(escape(value))
        return "".join(encode(value, 0))

    return text


json_text = json_encoder()
"""The JSON text stored for a value (domain values inside rendered by to_json_value): what
SQLAlchemy's JSON type writes for the value made plain, and the audit trail's form."""


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def canonical_json(value: Any) -> bytes:
    """The canonical JSON of a value, what the store's hashes are taken of: keys sorted, no
    spaces, UTF-8, instants and dates rendered by ``to_json_value`` (through ``json_default``;
    enums by value, tuples as lists, as orjson renders them itself). orjson, not the standard
    encoder: a fifth of the time for a provider's observation (0.8 vs 3.8 us), five of them a
    changed flight (benchmarks/RESULTS.md, issue 17)."""
    return orjson.dumps(value, default=json_default, option=_CANONICAL)


_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, not in typeshed


def json_value(text: str) -> Any:
    """``json.loads`` for a JSON column's stored text: the decoder's scanner alone when the
    text is one value with nothing around it, as the store writes it (a third of json.loads's
    time on a load_legs row's small lists and dicts); anything else goes to json.loads, which
    also words the errors."""
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


class JsonText(str):
    """JSON already rendered by the store's encoder, which the bulk statements store as it is
    instead of encoding again: an observation's values are encoded once, in sorted key order,
    for both its hash and its row (benchmarks/RESULTS.md)."""

    __slots__ = ()


def json_column(value: Any) -> str:
    """The text a JSON column stores for ``value`` (not None): ``json_text``, unless it is
    already rendered (JsonText)."""
    return value if type(value) is JsonText else json_text(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware in UTC.

    PostgreSQL keeps the instant (``timestamptz``) but answers in the session's time zone;
    SQLite keeps text and forgets the offset. Normalising on the way in and out gives the
    same aware UTC value on both. A naive datetime is refused: its time zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = stored_utc(value)
        # SQLite's DateTime writes the wall-clock digits and drops the offset: convert first,
        # so the stored text is UTC and sorts (and compares in WHERE clauses) as instants.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime read a {type(value).__name__}, not a datetime")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
