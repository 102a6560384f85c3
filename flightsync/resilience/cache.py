"""The observation cache: one entry per (provider, flight, date), with an expiry.

Entries live in the state store's ``cache`` bucket (the state directory, or Redis shared by
every host: a sync on one host is a cache hit on the next); the key is
``<provider>|<query.key>`` and the tag is ``query.key`` so that dropping a flight is one
statement whatever providers answered for it. The expiry is checked against our clock
(injectable for tests); the store's own expiry only cleans up behind it. Hit and miss
counters live in ``counters`` and are incremented atomically, so every process adds to the
same totals.

Beside the observations, a sync's whole outcome may be cached under ``*result*|<query.key>``
(same tag): a repeated sync is then one lookup, touching neither the providers nor the
database. It expires with the first observation it was built from.

Every key starts with a namespace (:func:`cache_namespace`): a digest of the database the
entries were written for and of every provider's base URL. An answer cached against one base
URL (the sandbox's, say) is never served for another, and a cache filled for one database
never answers for another one sharing the state directory, where nothing was written
(README, "Configuration"). Tags stay ``query.key``, so dropping a flight drops it in every
namespace.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import structlog

from flightsync.config import CacheSettings
from flightsync.errors import StoreError
from flightsync.models import FlightQuery, Observation, SyncResult
from flightsync.resilience._backend import Bucket
from flightsync.resilience._codec import LAYOUT, Packed, pack, pack_result, unpack, unpack_result
from flightsync.resilience._state import StateStore, add_to_counter, read_counter
from flightsync.resilience._tiers import TimedLeg, ttl_for

log = structlog.get_logger(__name__)

_HITS = "cache.hits"
# Not a provider name (those are identifiers), so a result never collides with an observation.
_RESULT = "*result*"
_MISSES = "cache.misses"
# Kept past our expiry so that a clock slightly behind the store's still finds the entry.
_CLEANUP_GRACE_SECONDS = 60.0
# An entry written by another release may not unpickle: treat it as a miss, never a crash.
_UNREADABLE = (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError,
               ValueError)


# The password of a database URL: changing it does not make another database.
_URL_PASSWORD = re.compile(r"^([a-zA-Z0-9+.-]+://[^:/@?#]*):[^@/?#]*@")


def cache_namespace(database_url: str, base_urls: Mapping[str, str]) -> str:
    """The key prefix of the entries written for this database and these providers' base
    URLs (password left out): a short digest, the same in every process and release."""
    database = _URL_PASSWORD.sub(r"\1@", database_url)
    parts = [f"database={database}"]
    parts.extend(f"{name}={url.rstrip('/')}" for name, url in sorted(base_urls.items()))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _encode(observation: Observation, expires_at: float) -> tuple[int, float, Packed]:
    return (LAYOUT, float(expires_at), pack(observation))


def _decode(entry: object, now: float) -> Observation | None:
    """The observation of a stored entry if it is fresh and of today's layout, else None."""
    if entry is None:
        return None
    try:
        layout, expires_at, packed = cast(tuple[int, float, Packed], entry)
        if layout != LAYOUT or not expires_at > now:
            return None
        return unpack(packed)
    except (TypeError, ValueError):
        return None


class ObservationCache:
    """Cached provider observations. Lookups do not count: the engine reports what a sync
    made of them through :meth:`record`."""

    def __init__(self, store: StateStore, settings: CacheSettings,
                 clock: Callable[[], float] = time.time, *, namespace: str = "") -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        # ``namespace|provider|flight`` and ``namespace|*result*|flight`` (module docstring).
        self._prefix = f"{namespace}|" if namespace else ""

    def _key(self, provider: str, query: FlightQuery) -> str:
        return f"{self._prefix}{provider}|{query.key}"

    @property
    def _cache(self) -> Bucket:
        return self._store.cache

    def get(self, provider: str, query: FlightQuery) -> Observation | None:
        """The fresh observation of ``provider`` for ``query``, or None."""
        return self.get_many((provider,), query).get(provider)

    def get_many(self, providers: Iterable[str], query: FlightQuery) -> dict[str, Observation]:
        """The fresh observations for ``query`` of those ``providers`` that have one."""
        cache = self._cache
        now = self._clock()
        found: dict[str, Observation] = {}
        suffix = f"|{query.key}"
        for provider in providers:
            try:
                entry = cache.get(self._prefix + provider + suffix)
            except _UNREADABLE:
                continue
            except StoreError as exc:
                log.warning("cache.get.failed", provider=provider, error=exc.message)
                continue
            observation = _decode(entry, now)
            if observation is not None:
                found[provider] = observation
        return found

    def put(self, provider: str, query: FlightQuery, observation: Observation,
            ttl: float) -> None:
        """Cache ``observation`` for ``ttl`` seconds. A failing write is logged, not raised:
        the cache only saves calls."""
        if ttl <= 0:
            return
        try:
            self._cache.set(self._key(provider, query), _encode(observation, self._clock() + ttl),
                            ttl=ttl + _CLEANUP_GRACE_SECONDS, tag=query.key)
        except StoreError as exc:
            log.warning("cache.put.failed", provider=provider, error=exc.message)

    def get_result(self, query: FlightQuery, providers: Iterable[str]) -> SyncResult | None:
        """The whole cached outcome of syncing ``query`` from exactly these ``providers``, ready
        to return (``from_cache`` set), or None. One lookup: the fastest path of a sync."""
        try:
            entry = self._cache.get(self._key(_RESULT, query))
        except (*_UNREADABLE, StoreError):
            return None
        if entry is None:
            return None
        try:
            layout, expires_at, names, packed = cast(tuple[int, float, tuple[str, ...], Packed],
                                                     entry)
            if (layout != LAYOUT or not expires_at > self._clock()
                    or names != tuple(sorted(providers))):
                return None
            return unpack_result(packed)
        except (TypeError, ValueError):
            return None

    def put_result(self, query: FlightQuery, providers: Iterable[str], result: SyncResult,
                   ttl: float, *, fresh: Collection[str] = ()) -> None:
        """Cache a sync's outcome until ``ttl`` passes or the first of the providers'
        observations for it expires, whichever comes first. ``fresh``: providers whose
        observation was just put with this ``ttl`` (their expiry is known, not read back)."""
        names = tuple(sorted(providers))
        expires_at = self._clock() + ttl
        for name in names:
            if name in fresh:
                continue
            try:
                entry = self._cache.get(self._key(name, query))
                if entry is not None:
                    expires_at = min(expires_at, float(cast(tuple[Any, ...], entry)[1]))
            except (*_UNREADABLE, IndexError, StoreError):
                return
        if expires_at <= self._clock():
            return
        cached = replace(result, from_cache=True, changed_fields=(), sources=tuple(
            replace(s, from_cache=True, ms=0) for s in result.sources))
        try:
            self._cache.set(self._key(_RESULT, query),
                            (LAYOUT, expires_at, names, pack_result(cached)),
                            ttl=ttl + _CLEANUP_GRACE_SECONDS, tag=query.key)
        except StoreError as exc:
            log.warning("cache.put.failed", flight=query.key, error=exc.message)

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """The puts inside the block share one cache transaction: one commit for a write
        group's entries instead of one each. Failing to start or commit it is logged; the
        puts then went (or go) one by one, as without it."""
        stack = ExitStack()
        try:
            stack.enter_context(self._cache.grouped())
        except StoreError as exc:
            log.warning("cache.transact.failed", error=exc.message)
        body_done = False
        try:
            with stack:
                yield
                body_done = True
        except StoreError as exc:
            if not body_done:
                raise
            log.warning("cache.commit.failed", error=exc.message)

    def ttl_for(self, legs: Sequence[TimedLeg], now: datetime | None = None) -> float:
        """The TTL tier of a flight (docs/CONTRACTS.md section 7) from its legs in flying order;
        ``now`` defaults to the cache's clock."""
        when = datetime.fromtimestamp(self._clock(), UTC) if now is None else now
        return ttl_for(legs, when, self._settings)

    def drop_result(self, query: FlightQuery) -> None:
        """Forget the whole cached outcome of ``query`` (its providers' entries stay)."""
        try:
            self._cache.delete(self._key(_RESULT, query))
        except StoreError as exc:
            log.warning("cache.drop.failed", flight=query.key, error=exc.message)

    def drop(self, query: FlightQuery) -> int:
        """Forget every provider's entry for ``query``; returns how many were removed."""
        return self._cache.evict(query.key)

    def clear(self) -> int:
        """Forget every entry (the hit and miss counters stay); returns how many."""
        return self._cache.clear()

    def record(self, hits: int = 0, misses: int = 0) -> None:
        """Add to the persistent hit and miss counters (atomic across processes); a failing
        store is logged, not raised."""
        try:
            counters = self._store.counters
            if hits:
                add_to_counter(counters, _HITS, hits)
            if misses:
                add_to_counter(counters, _MISSES, misses)
        except StoreError as exc:
            # Statistics only: a shared store lost mid-run must not fail the run's flights.
            log.warning("cache.record.failed", error=exc.message)

    def stats(self) -> dict[str, Any]:
        """``status`` JSON ``cache`` object: entries, hits, misses, hit_rate, size_bytes."""
        counters = self._store.counters
        hits = read_counter(counters, _HITS)
        misses = read_counter(counters, _MISSES)
        entries, size = self._cache.size()
        total = hits + misses
        return {"entries": entries, "hits": hits, "misses": misses,
                "hit_rate": round(hits / total, 4) if total else 0.0, "size_bytes": size}
