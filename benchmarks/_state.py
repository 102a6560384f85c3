"""The state store (README, "Shared state"): what a breaker check and a cache hit cost on the
state directory (diskcache) and on Redis, against a bare redis-py ``GET`` of a value of the
same size as the floor measured in the same run.

Each figure is the median of single operations (microseconds): ``Breakers.before_call`` on a
closed breaker (one read), and ``ObservationCache.get`` of a fresh entry (one read and the
decoding of an observation). Redis is the local server at 127.0.0.1:6379, database 7, under a
key prefix of this run's own (its keys are deleted afterwards); without it the Redis rows say
why and have no value.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import redis

from benchmarks._report import Row, median
from flightsync.config import BreakerSettings, CacheSettings
from flightsync.errors import StoreError
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.resilience import Breakers, ObservationCache, StateStore
from flightsync.resilience._redis import encode

REDIS_URL = "redis://127.0.0.1:6379/7"
_QUERY = FlightQuery(carrier="LH", number=400, departure_date=date(2026, 3, 1))


def _observation() -> Observation:
    departure = datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
    leg = Leg(origin="FRA", destination="JFK", status=FlightStatus.SCHEDULED,
              scheduled_departure=departure, estimated_departure=departure,
              scheduled_arrival=departure + timedelta(hours=8, minutes=50),
              departure_terminal="1", departure_gate="Z50", aircraft_type="748",
              aircraft_registration="DABYA", codeshares=("UA9050", "AC9099"))
    return Observation(provider="lufthansa", query=_QUERY, legs=(leg,),
                       fetched_at=departure - timedelta(hours=20), raw="x" * 600)


def _per_call_us(call: Callable[[], object], calls: int) -> float:
    for _ in range(min(calls, 50)):  # warm: connections, SQLite pages, code paths
        call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return median(samples)


def _measure(store: StateStore, calls: int) -> tuple[float, float]:
    """(breaker check, cache hit) in microseconds on ``store``."""
    breakers = Breakers(store, BreakerSettings())
    cache = ObservationCache(store, CacheSettings(), namespace="bench")
    cache.put("lufthansa", _QUERY, _observation(), ttl=3600)
    assert cache.get("lufthansa", _QUERY) is not None
    return (_per_call_us(lambda: breakers.before_call("lufthansa"), calls),
            _per_call_us(lambda: cache.get("lufthansa", _QUERY), calls))


def _row(key: str, title: str, value: float | None, floor: float | None,
         note: str = "") -> Row:
    detail = {} if value is None or not floor else {"ratio_to_redis_get": value / floor}
    return Row(key=key, title=title, figure="median per call", unit="us", target=None,
               at_most=True, value=value, detail=detail, note=note)


def state_rows(root: Path, *, calls: int) -> list[Row]:
    """The state-store rows: the floor, then breaker check and cache hit on each backend."""
    with StateStore(root / "bench-state") as disk:
        disk_breaker, disk_hit = _measure(disk, calls)
    floor = redis_breaker = redis_hit = None
    note = ""
    try:
        prefix = f"fs-bench-{uuid.uuid4().hex[:8]}"
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        try:
            client.set(f"{prefix}:floor", encode((1, 2.0, "x" * 900)))
            floor = _per_call_us(lambda: client.get(f"{prefix}:floor"), calls)
            with StateStore(root / "bench-state-redis", url=REDIS_URL, prefix=prefix) as shared:
                redis_breaker, redis_hit = _measure(shared, calls)
        finally:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    except (redis.RedisError, StoreError) as exc:  # no server here: the rows say so instead
        note = f"Redis at {REDIS_URL} not usable: {type(exc).__name__}"
    return [
        _row("state_redis_get_floor", "bare redis-py GET (floor)", floor, floor, note),
        _row("state_breaker_disk", "breaker check, state directory", disk_breaker, floor),
        _row("state_breaker_redis", "breaker check, Redis", redis_breaker, floor, note),
        _row("state_cache_hit_disk", "cache hit, state directory", disk_hit, floor),
        _row("state_cache_hit_redis", "cache hit, Redis", redis_hit, floor, note),
    ]


def main() -> None:
    """``python -m benchmarks._state``: these rows alone."""
    import json  # noqa: PLC0415
    import os  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        rows = state_rows(Path(folder), calls=2000)
    print(json.dumps({"load_avg_1m": round(os.getloadavg()[0], 2),
                      "rows": [r.to_json() for r in rows]}, indent=2))


if __name__ == "__main__":
    main()
