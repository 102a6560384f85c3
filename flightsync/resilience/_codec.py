"""Compact, fast forms of ``Observation`` and ``SyncResult`` for the cache.

Unpickling the frozen slotted dataclasses directly costs most of a cache hit (their
``__setstate__`` walks ``fields()`` for every object); plain tuples rebuilt through the
constructors are several times faster. A fingerprint of the field layouts is stored with each
value, so an entry written before a model changed is treated as a miss instead of misread.
"""

from __future__ import annotations

import zlib
from dataclasses import fields
from typing import Any

from flightsync.models import (
    FieldConflict,
    FlightQuery,
    FlightRecord,
    Leg,
    Observation,
    Rejection,
    SourceOutcome,
    SyncResult,
)


def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


_LEG = _names(Leg)
_RECORD = _names(FlightRecord)
_OUTCOME = _names(SourceOutcome)
_CONFLICT = _names(FieldConflict)
_REJECTION = _names(Rejection)
# crc32, not hash(): str hashes differ between processes, the fingerprint must not.
LAYOUT: int = zlib.crc32(" | ".join(
    " ".join(_names(cls)) for cls in (Leg, Observation, FlightQuery, FlightRecord,
                                      SourceOutcome, FieldConflict, SyncResult, Rejection)
).encode())

Packed = tuple[Any, ...]


def _flat(obj: object, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in names)


def _query(query: FlightQuery) -> tuple[Any, ...]:
    return (query.carrier, query.number, query.departure_date, query.suffix)


def pack(obs: Observation) -> Packed:
    """``obs`` as nested tuples of plain values, in field order."""
    return (obs.provider, _query(obs.query), tuple(_flat(leg, _LEG) for leg in obs.legs),
            obs.fetched_at, obs.updated_at, obs.raw,
            tuple(_flat(r, _REJECTION) for r in obs.rejections))


def unpack(packed: Packed) -> Observation:
    """The Observation that :func:`pack` flattened."""
    provider, query, legs, fetched_at, updated_at, raw, rejections = packed
    return Observation(provider, FlightQuery(*query), tuple(Leg(*values) for values in legs),
                       fetched_at, updated_at, raw,
                       tuple(Rejection(*values) for values in rejections))


def pack_result(result: SyncResult) -> Packed:
    """``result`` as nested tuples of plain values, in field order."""
    return (_query(result.query), result.success, result.sync_status, result.from_cache,
            tuple(_flat(leg, _RECORD) for leg in result.legs),
            tuple(_flat(s, _OUTCOME) for s in result.sources),
            tuple(_flat(c, _CONFLICT) for c in result.conflicts),
            result.changed_fields, result.error)


def unpack_result(packed: Packed) -> SyncResult:
    """The SyncResult that :func:`pack_result` flattened."""
    query, success, status, from_cache, legs, sources, conflicts, changed, error = packed
    return SyncResult(FlightQuery(*query), success, status, from_cache,
                      tuple(FlightRecord(*values) for values in legs),
                      tuple(SourceOutcome(*values) for values in sources),
                      tuple(FieldConflict(*values) for values in conflicts), changed, error)
