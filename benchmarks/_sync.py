"""Single syncs in process, through ``open_engine`` and ``Engine.sync``: a fresh sync (every
provider called) against the slowest provider's latency, and a repeated sync from the cache."""

from __future__ import annotations

import time

from benchmarks._env import PROVIDERS, Bench, queries
from benchmarks._report import Row, median
from flightsync.engine import open_engine

# Flight numbers of the single syncs: apart from the batches' ranges (benchmarks._batch).
_FIRST = 100
CACHED_FLIGHT = _FIRST  # the flight the cached and whole-process scenarios repeat


def single_syncs(bench: Bench, *, runs: int, cached_calls: int) -> list[Row]:
    """Fresh: ``runs`` flights never synced before, after one warm-up sync that fetches the
    OAuth tokens and opens the pooled connections (a cron run that reuses its tokens).
    Cached: ``cached_calls`` repeats of a flight every provider answered."""
    latency = bench.latency_ms / 1000
    fresh: list[float] = []
    cached: list[float] = []
    with open_engine(bench.settings(), run_kind="sync") as engine:
        engine.sync(queries(1, 1)[0])  # warm-up: tokens, connections, first write
        for query in queries(_FIRST, runs):
            started = time.perf_counter()
            result = engine.sync(query)
            fresh.append(time.perf_counter() - started)
            asked = {s.name for s in result.sources if not s.from_cache}
            if not result.success or result.from_cache or asked != set(PROVIDERS):
                raise RuntimeError(f"fresh sync of {query.key} did not ask all "
                                   f"{len(PROVIDERS)} providers: {result.to_json()['sources']}")
        query = queries(CACHED_FLIGHT, 1)[0]
        for _ in range(cached_calls):
            started = time.perf_counter()
            result = engine.sync(query)
            cached.append(time.perf_counter() - started)
            if not result.from_cache:
                raise RuntimeError(f"sync of {query.key} did not come from the cache")
    wall = median(fresh)
    return [
        Row("fresh_sync", f"fresh single sync, {len(PROVIDERS)} providers, in process",
            "wall time / slowest provider latency", "ratio", 1.2, at_most=True,
            value=wall / latency if latency else None,
            detail={"median_ms": wall * 1000, "latency_ms": bench.latency_ms, "runs": runs},
            note="" if latency else "latency 0: no ratio"),
        Row("cached_sync", "cached single sync, in process", "median time per Engine.sync",
            "us", 500, at_most=True, value=median(cached) * 1e6,
            detail={"calls": cached_calls, "min_us": min(cached) * 1e6}),
    ]
