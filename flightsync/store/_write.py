"""Writing resolved flights: one statement per table for a whole group of flights.

``GroupWriter.add`` works out each flight's rows (diff against the stored legs, audit rows,
observations, conflicts) and its outcome at once; ``flush`` sends them as one executemany per
table and key set. A group of 64 flights is then about five round trips instead of ~200, which
was most of the write path's time (benchmarks/RESULTS.md). The caller's transaction covers the
group, so each flight is still all-or-nothing; the optimistic version check is the UPDATE's
total rowcount, and any shortfall fails the whole group (the engine redoes it flight by flight).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from flightsync.errors import ConcurrentUpdateError
from flightsync.models import (
    OBSERVED_FIELDS,
    FieldConflict,
    FlightQuery,
    FlightRecord,
    FlightStatus,
    to_json_value,
)
from flightsync.store._bulk import SQLiteRows
from flightsync.store._bulk_pg import PostgresRows
from flightsync.store._types import JsonText, canonical_json, json_encoder, json_text
from flightsync.store.tables import Conflict, Flight, FlightChange, SourceObservation

_F = Flight.__table__  # type: ignore[attr-defined]
_CHANGE = FlightChange.__table__  # type: ignore[attr-defined]
_OBS = SourceObservation.__table__  # type: ignore[attr-defined]
_CONFLICT = Conflict.__table__  # type: ignore[attr-defined]
# Built once: SQLAlchemy reuses their compiled form and only binds the rows' values.
_INSERT_FLIGHT = _F.insert().returning(_F.c.id, sort_by_parameter_order=True)
_UPDATE_FLIGHT = update(_F).where(
    _F.c.id == bindparam("b_id"), _F.c.version == bindparam("b_version"),
).values(sync_attempts=_F.c.sync_attempts + 1)
_INSERT_CHANGE = _CHANGE.insert()
_INSERT_OBS = _OBS.insert()
# An unchanged re-fetch: the provider's latest observation of the leg is confirmed again.
_CONFIRM_OBS = update(_OBS).where(_OBS.c.id == select(func.max(_OBS.c.id)).where(
    _OBS.c.flight_id == bindparam("b_flight"), _OBS.c.source == bindparam("b_source"),
).scalar_subquery())
_INSERT_CONFLICT = _CONFLICT.insert()
_PLAIN = frozenset((str, int, float, bool, type(None)))  # exact types: enums are str too


_HASHED = tuple(sorted(OBSERVED_FIELDS))  # every field, None for the unset ones
_FIELDS = frozenset(OBSERVED_FIELDS)


def encode(value: Any) -> str | None:
    """A domain value as the JSON text kept in the audit trail and conflict rows."""
    return None if value is None else json_text(value)


def content_hash(values: Mapping[str, Any]) -> str:
    if type(values) is not dict or values.keys() != _FIELDS:  # the engine's hold them all
        get = values.get
        values = {k: get(k) for k in _HASHED}
    return hashlib.sha256(canonical_json(values)).hexdigest()


def observation_json(values: Mapping[str, Any]) -> bytes:
    """The canonical JSON of everything a provider reported for a leg (its values and the
    rejections): what its hash is taken of and, decoded, what ``source_observation.values``
    stores, so that each observation is encoded once (readers decode it)."""
    return canonical_json(values)


def observation_text(values: Mapping[str, Any]) -> JsonText:
    """``observation_json`` as the text the bulk paths store as it is."""
    return JsonText(canonical_json(values).decode())


HASH_FORM = "2:"
"""What starts an observation hash of the canonical (orjson) form. Hashes stored before it
(``legacy_observation_hash``: 32 hex digits, no prefix) are still recognised, and replaced by
this form at the leg's next sync, so an upgrade stores no observation twice."""


def observation_hash(data: bytes) -> str:
    """What recognises a provider's unchanged answer: a hash of its ``observation_json``,
    not of its raw text or its own update time."""
    return HASH_FORM + hashlib.blake2b(data, digest_size=16).hexdigest()


_legacy_sorted = json_encoder(sort_keys=True)


def legacy_observation_hash(values: Mapping[str, Any]) -> str:
    """The observation hash stored before ``HASH_FORM``: of json.dumps's sorted text."""
    return hashlib.blake2b(_legacy_sorted(values).encode(), digest_size=16).hexdigest()


# zlib's fastest level: on the providers' answers in tests/fixtures (0.8-9.4 KB) it takes half
# the time of level 6 (12 vs 25 us an answer, 4 answers a flight) for 12% more bytes, kept
# only raw_days (7); any level decompresses alike (benchmarks/RESULTS.md, issue 17).
_RAW_LEVEL = 1


def compress_raw(raw: str) -> bytes | None:
    """A raw answer as ``source_observation.raw_zlib`` keeps it (None for none)."""
    return zlib.compress(raw.encode("utf-8"), _RAW_LEVEL) if raw else None


def decompress_raw(blob: bytes | None) -> str | None:
    """``compress_raw``'s inverse (None: no raw answer kept, or retention dropped it)."""
    return None if blob is None else zlib.decompress(blob).decode("utf-8")


@dataclass(frozen=True, slots=True)
class StoredLeg:
    """A stored leg with what resolution and writing need."""

    id: int
    leg_index: int
    origin: str
    values: dict[str, Any]
    version: int
    open_conflicts: frozenset[str]
    record: FlightRecord
    # source -> observation_hash of that provider's latest stored observation of this leg
    observation_hashes: Mapping[str, str] = field(default_factory=dict)


def match_stored_legs(stored: Sequence[StoredLeg],
                      origins: Sequence[str]) -> dict[str, StoredLeg]:
    """The stored leg each resolved leg updates, by its origin (``origins[i]`` is leg ``i``'s):
    the stored leg from the same airport; else the stored leg at the same index when no
    resolved leg departs from that one's airport any more (the providers now name another
    origin: the route changed, or the stored one was wrong), so the leg is updated with its
    new origin instead of a second leg taking its place."""
    by_origin = {leg.origin: leg for leg in stored}
    by_index = {leg.leg_index: leg for leg in stored}
    reported = set(origins)
    matched: dict[str, StoredLeg] = {}
    for index, origin in enumerate(origins):
        old = by_origin.get(origin)
        if old is None:
            moved = by_index.get(index)
            if moved is not None and moved.origin not in reported:
                old = moved
        if old is not None:
            matched[origin] = old
    return matched


@dataclass(slots=True)
class LegWrite:
    """What the engine resolved for one leg, ready to store."""

    leg_index: int
    origin: str
    values: dict[str, Any]                          # every observed field, resolved
    decisions: dict[str, tuple[str | None, str]]    # field -> (source, rule)
    # source -> (values it reported, its own update time, raw payload)
    observations: dict[str, tuple[dict[str, Any], datetime | None, str]]
    conflicts: list[FieldConflict] = field(default_factory=list)  # escalated ones open a row


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    records: tuple[FlightRecord, ...]
    changed: tuple[tuple[int, str], ...]   # (leg_index, field)
    opened_conflicts: int


class GroupWriter:
    """Collects the rows of many flights and writes them with one statement per table.

    Use inside one transaction: ``add`` each flight, then ``flush`` once. Nothing reaches the
    database before ``flush``; a stale version anywhere raises ConcurrentUpdateError there.
    """

    def __init__(self, session: Session, *, run_id: str, now: datetime) -> None:
        self.session = session
        self._run_id = run_id
        self._now = now
        self._inserts: list[dict[str, Any]] = []
        # Child rows of each new leg (parallel to _inserts) wait for its id: its audit rows,
        # observations and conflicts.
        self._waiting: list[tuple[list[dict[str, Any]], ...]] = []
        # Updates by their set of keys (whether the values and the origin change): each set
        # is one executemany, found without comparing every row's keys.
        self._updates: dict[tuple[bool, bool], list[dict[str, Any]]] = {}
        self._changes: list[dict[str, Any]] = []
        self._observations: list[dict[str, Any]] = []
        self._confirms: list[dict[str, Any]] = []
        self._conflicts: list[dict[str, Any]] = []
        self._keys: list[str] = []  # the flights added, for the stale-version error
        self._times: dict[datetime, str] = {}  # the same instants recur across a flight's sources

    def add(self, query: FlightQuery, legs: Sequence[LegWrite], stored: Sequence[StoredLeg],
            *, sync_status: str, next_due: datetime, tracked: bool,
            source_of_truth: str | None) -> WriteOutcome:
        """Queue a flight's legs with their audit rows, observations and conflicts."""
        now, run_id = self._now, self._run_id
        by_origin = match_stored_legs(stored, [leg.origin for leg in legs])
        records: list[FlightRecord] = []
        changed: list[tuple[int, str]] = []
        opened = 0
        self._keys.append(query.key)
        for leg in legs:
            old = by_origin.get(leg.origin)
            row_values = _row_values(leg.values)
            new_hash = content_hash(leg.values)
            conflict_fields = {c.field for c in leg.conflicts if c.escalated}
            # The leg's child rows go straight to their tables' rows, or wait for a new leg's id.
            if old is None:
                changes: list[dict[str, Any]] = []
                observed: list[dict[str, Any]] = []
                conflicts: list[dict[str, Any]] = []
                self._waiting.append((changes, observed, conflicts))
            else:
                changes, observed, conflicts = (self._changes, self._observations,
                                                self._conflicts)
            hashes, fresh = self._observed(leg, old)
            flight_id: int | None
            if old is None:
                flight_id, version = None, 1
                self._inserts.append(dict(
                    carrier=query.carrier, flight_number=query.number, suffix=query.suffix,
                    departure_date=query.departure_date, leg_index=leg.leg_index,
                    origin=leg.origin, **row_values, sync_status=sync_status, tracked=tracked,
                    last_synced_at=now, last_attempt_at=now, next_sync_due_at=next_due,
                    sync_attempts=1, consecutive_failures=0, source_of_truth=source_of_truth,
                    content_hash=new_hash, observation_hashes=hashes, version=1,
                    has_open_conflict=bool(conflict_fields), created_at=now, updated_at=now,
                ))
                diffs: list[tuple[str, Any, Any]] = [
                    (name, None, value) for name, value in leg.values.items()
                    if value is not None]
            else:
                flight_id = old.id
                get = old.values.get
                # The common case (same object or equal value of the same type) inline.
                diffs = [(name, before, value) for name, value in leg.values.items()
                         if (before := get(name)) is not value
                         and not (type(before) is type(value) and before == value)
                         and _differs(before, value)]
                moved = {"origin": leg.origin} if old.origin != leg.origin else {}
                if moved:  # match_stored_legs: the providers name another origin now
                    diffs.append(("origin", old.origin, leg.origin))
                version = old.version + (1 if diffs else 0)
                self._updates.setdefault((bool(diffs), bool(moved)), []).append(dict(
                    b_id=flight_id, b_version=old.version,
                    **(row_values if diffs else {}), **moved, leg_index=leg.leg_index,
                    sync_status=sync_status, tracked=tracked, last_synced_at=now,
                    last_attempt_at=now, next_sync_due_at=next_due, consecutive_failures=0,
                    last_error=None, source_of_truth=source_of_truth, content_hash=new_hash,
                    observation_hashes=hashes, version=version,
                    has_open_conflict=bool(old.open_conflicts or conflict_fields),
                    updated_at=now, lease_owner=None, lease_expires_at=None,
                ))
            decisions = leg.decisions
            for name, before, after in diffs:
                source, rule = decisions.get(name, (None, ""))
                changes.append({
                    "flight_id": flight_id, "field": name, "old": encode(before),
                    "new": encode(after), "source": source, "rule": rule,
                    "run_id": run_id, "version": version, "at": now})
            changed.extend((leg.leg_index, name) for name, _, _ in diffs)
            observations = leg.observations
            for provider, said_text in fresh:
                _, updated_at, raw = observations[provider]
                # The values' text as hashed: the bulk paths store it as it is.
                observed.append({
                    "flight_id": flight_id, "source": provider, "values": said_text,
                    "provider_updated_at": updated_at, "observed_at": now,
                    "confirmed_at": now, "run_id": run_id, "raw_zlib": compress_raw(raw)})
            already = old.open_conflicts if old is not None else frozenset()
            for c in leg.conflicts:
                if c.escalated and c.field not in already:
                    conflicts.append({
                        "flight_id": flight_id, "field": c.field,
                        "candidates": {s: self._plain(v) for s, v in c.values.items()},
                        "status": "open", "rule": c.rule, "created_at": now})
                    opened += 1
            records.append(_record_from_values(query, leg, version, now))
        return WriteOutcome(records=tuple(records), changed=tuple(changed),
                            opened_conflicts=opened)

    def _observed(self, leg: LegWrite, old: StoredLeg | None
                  ) -> tuple[dict[str, str], list[tuple[str, JsonText]]]:
        """The leg's observation hashes after this write, and the sources whose observation
        differs from their last, with its text; an unchanged one is queued as a confirmation."""
        before = old.observation_hashes if old is not None else {}
        hashes = dict(before)
        fresh: list[tuple[str, JsonText]] = []
        for provider, (values, updated_at, _raw) in leg.observations.items():
            data = observation_json(values)
            said = observation_hash(data)
            stored = before.get(provider)
            if old is not None and stored is not None and (
                    stored == said or (not stored.startswith(HASH_FORM)
                                       and stored == legacy_observation_hash(values))):
                self._confirms.append({"b_flight": old.id, "b_source": provider,
                                       "confirmed_at": self._now,
                                       "provider_updated_at": updated_at})
            else:
                fresh.append((provider, JsonText(data.decode())))
            hashes[provider] = said
        return hashes, fresh

    def flush(self) -> None:
        """Write everything added since the last flush, one statement per table."""
        conn = self.session.connection()
        dialect = conn.dialect.name
        if dialect == "postgresql":
            self._flush_postgres(conn)
            return
        bulk = SQLiteRows() if dialect == "sqlite" else None
        try:
            if self._updates:
                expected = sum(len(rows) for rows in self._updates.values())
                written = sum(
                    bulk.update(conn, _F, rows) if bulk is not None
                    else int(conn.execute(_UPDATE_FLIGHT, rows).rowcount)
                    for rows in self._updates.values())
                if written != expected:
                    raise ConcurrentUpdateError(self._stale_message(), flight=self._stale_key())
            if self._inserts:
                ids = conn.execute(_INSERT_FLIGHT, self._inserts).scalars().all()
                self._adopt(ids)
            if bulk is None:
                self._plain_values(self._observations)
            if self._confirms:
                conn.execute(_CONFIRM_OBS, self._confirms)
            # Each table's rows are built in one place, all with the same keys.
            for statement, rows in ((_INSERT_CHANGE, self._changes),
                                    (_INSERT_OBS, self._observations),
                                    (_INSERT_CONFLICT, self._conflicts)):
                if not rows:
                    continue
                if bulk is not None:
                    bulk.insert(conn, statement.table, rows)
                else:
                    conn.execute(statement, rows)
        finally:
            self._clear()

    def _flush_postgres(self, conn: Connection) -> None:
        """``flush`` on PostgreSQL: one UPDATE and one INSERT for the flights, one COPY per
        child table (store._bulk_pg), all in the session's transaction."""
        bulk = PostgresRows()
        try:
            if self._updates:
                written = sum(bulk.update(conn, _F, rows) for rows in self._updates.values())
                if written != sum(len(rows) for rows in self._updates.values()):
                    raise ConcurrentUpdateError(self._stale_message(), flight=self._stale_key())
            if self._inserts:
                self._adopt(bulk.insert(conn, _F, self._inserts))
            # Unchanged re-fetches only move their observation's confirmed_at (issue 16).
            if self._confirms:
                conn.execute(_CONFIRM_OBS, self._confirms)
            # Each table's rows are built in one place, all with the same keys.
            for table, rows in ((_CHANGE, self._changes), (_OBS, self._observations),
                                (_CONFLICT, self._conflicts)):
                if rows:
                    bulk.copy(conn, table, rows)
        finally:
            self._clear()

    def _adopt(self, ids: Sequence[int]) -> None:
        """The new legs' ids given to their waiting child rows."""
        tables = (self._changes, self._observations, self._conflicts)
        for flight_id, children in zip(ids, self._waiting, strict=True):
            for rows, table in zip(children, tables, strict=True):
                for row in rows:
                    row["flight_id"] = flight_id
                table.extend(rows)

    # -- helpers -------------------------------------------------------------------------
    def _clear(self) -> None:
        for rows in (self._inserts, self._waiting, self._changes, self._observations,
                     self._confirms, self._conflicts, self._keys):
            rows.clear()
        self._updates.clear()

    def _stale_message(self) -> str:
        keys = self._keys
        if len(keys) == 1:
            return f"{keys[0]} was changed by another run"
        more = ", ..." if len(keys) > 3 else ""
        return (f"one of {len(keys)} flights ({', '.join(keys[:3])}{more}) was changed by "
                "another run")

    def _stale_key(self) -> str | None:
        return self._keys[0] if len(self._keys) == 1 else None

    def _plain(self, value: Any) -> Any:
        """``to_json_value`` with the common cases first and each instant rendered once."""
        if type(value) in _PLAIN:
            return value
        if type(value) is datetime:
            text = self._times.get(value)
            if text is None:
                text = self._times[value] = to_json_value(value)
            return text
        return to_json_value(value)

    @staticmethod
    def _plain_values(rows: list[dict[str, Any]]) -> None:
        """The observations' values as SQLAlchemy's JSON type takes them (the generic path):
        ``add`` keeps each one as its ``observation_text``, so this decodes that text."""
        for row in rows:
            row["values"] = json.loads(row["values"])


def write_flight(
    session: Session, query: FlightQuery, legs: Sequence[LegWrite],
    stored: Sequence[StoredLeg], *, run_id: str, now: datetime, sync_status: str,
    next_due: datetime, tracked: bool, source_of_truth: str | None,
) -> WriteOutcome:
    """Upsert one flight's legs with their audit rows, observations and conflicts.

    Call inside a transaction (or savepoint) that covers the whole flight. The version check
    raises ConcurrentUpdateError when another writer changed a leg since it was loaded.
    """
    writer = GroupWriter(session, run_id=run_id, now=now)
    outcome = writer.add(query, legs, stored, sync_status=sync_status, next_due=next_due,
                         tracked=tracked, source_of_truth=source_of_truth)
    writer.flush()
    return outcome


def _differs(old: Any, new: Any) -> bool:
    if old is new or (type(old) is type(new) and old == new):  # the common, cheap case
        return False
    if isinstance(old, tuple | list) or isinstance(new, tuple | list):
        return tuple(old or ()) != tuple(new or ())
    return bool(old != new)


def _row_values(values: Mapping[str, Any]) -> dict[str, Any]:
    row = (dict(values) if type(values) is dict and values.keys() == _FIELDS
           else {name: values.get(name) for name in OBSERVED_FIELDS})
    status = row["status"]
    row["status"] = status.value if isinstance(status, FlightStatus) else (status or "unknown")
    row["codeshares"] = list(row["codeshares"] or ())
    return row


def _record_from_values(query: FlightQuery, leg: LegWrite, version: int,
                        now: datetime) -> FlightRecord:
    values = dict(leg.values)
    values["status"] = values.get("status") or FlightStatus.UNKNOWN
    values["codeshares"] = tuple(values.get("codeshares") or ())
    return FlightRecord(
        carrier=query.carrier, flight_number=query.number, suffix=query.suffix,
        departure_date=query.departure_date, leg_index=leg.leg_index, origin=leg.origin,
        last_synced_at=now, version=version, **values,
    )


__all__ = ["HASH_FORM", "GroupWriter", "LegWrite", "StoredLeg", "WriteOutcome", "compress_raw",
           "content_hash", "decompress_raw", "encode", "legacy_observation_hash",
           "observation_hash", "observation_json", "observation_text", "write_flight"]
