"""The claim alone (issue 17, "claim time per round of 100"), without the sandbox or a sync:
``python -m benchmarks._claim [FLIGHTS DUE ROUNDS REPEATS [URL]]``.

Seeds FLIGHTS tracked flights (default 1,000,000; benchmarks/_seed.py), DUE of them due
(default 10,000), then REPEATS times (default 3): makes DUE flights due again and times
ROUNDS rounds (default 100) of ``claim_due`` of 100 exactly as ``batch --due`` does (a
session from the engine's pool, the claim, the commit: the ``batch.due.claimed`` figure).
Between rounds, untimed, the claimed flights are "synced": next due in a day, lease given
back, as the run's write would leave them.

In the same run and interleaved with the claims, the floor: one row's lease updated and
committed by bare psycopg (a round trip, a WAL flush): what any claim pays at least.

A URL (a migrated, seeded database) skips the seed, for iterating; otherwise a private
database is made and dropped. ``CLAIMERS=N`` in the environment: N processes claim at once
(workers on N hosts), each until nothing is left; ``claimed_twice`` counts the flights more
than one claim took (0: each claimed once).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from benchmarks._env import private_postgres
from benchmarks._scale import _make_due, _percentile
from benchmarks._seed import mark_synced, seed
from flightsync.store import Database, migrate
from flightsync.store import repository as repo

LIMIT = 100
ALERTED_EVERY = 7200.0  # the default flightaware_alerts.poll_every_seconds


@dataclass(frozen=True)
class Timings:
    claims_ms: list[float]
    floor_ms: list[float]
    keys: list[tuple[str, int, str]]  # every flight claimed, as (carrier, number, date)

    @classmethod
    def merged(cls, parts: list[Timings]) -> Timings:
        return cls(claims_ms=[ms for p in parts for ms in p.claims_ms],
                   floor_ms=[ms for p in parts for ms in p.floor_ms],
                   keys=[k for p in parts for k in p.keys])

    def to_json(self) -> dict[str, float | int]:
        return {"claim_p50_ms": statistics.median(self.claims_ms),
                "claim_p99_ms": _percentile(self.claims_ms, 0.99),
                "claim_max_ms": max(self.claims_ms),
                "floor_p50_ms": statistics.median(self.floor_ms),
                "floor_p99_ms": _percentile(self.floor_ms, 0.99),
                "rounds": len(self.claims_ms), "claimed": len(self.keys),
                "claimed_twice": len(self.keys) - len(set(self.keys))}


def time_claims(url: str, *, flights: int, due: int, rounds: int,
                claimers: int = 1) -> Timings:
    """Make ``due`` flights due, then time up to ``rounds`` claims of LIMIT (and as many
    floors) in each of ``claimers`` processes at once (workers on as many hosts)."""
    _make_due(url, due, flights)
    started = datetime.now(UTC)
    if claimers == 1:
        return _rounds(url, started, rounds)
    import multiprocessing  # noqa: PLC0415

    with multiprocessing.get_context("spawn").Pool(claimers) as pool:
        return Timings.merged(pool.starmap(_rounds, [(url, started, rounds)] * claimers))


def _rounds(url: str, started: datetime, rounds: int) -> Timings:
    """One claimer: claim rounds until ``rounds`` or nothing is left."""
    import psycopg  # noqa: PLC0415

    owner = f"bench:{os.getpid()}"
    database = Database.open(url)
    claims: list[float] = []
    floors: list[float] = []
    keys: list[tuple[str, int, str]] = []
    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as raw:
            for _ in range(rounds):
                asked = time.perf_counter()
                with database.session() as session:
                    got = repo.claim_due(session, now=datetime.now(UTC), due_by=started,
                                         limit=LIMIT, owner=owner, lease_seconds=600,
                                         postgres=True, alerted_every=ALERTED_EVERY)
                claims.append((time.perf_counter() - asked) * 1000)
                if not got:
                    break
                keys += [(q.carrier, q.number, q.departure_date.isoformat()) for q in got]
                mark_synced(raw, got)
                raw.commit()
                asked = time.perf_counter()
                raw.execute("UPDATE flight SET lease_expires_at = NULL WHERE id = 1")
                raw.commit()
                floors.append((time.perf_counter() - asked) * 1000)
    finally:
        database.close()
    return Timings(claims_ms=claims, floor_ms=floors, keys=keys)


@contextmanager
def _seeded(flights: int, due: int, url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    import psycopg  # noqa: PLC0415

    with private_postgres("fs_claim") as private:
        migrate.upgrade(private)
        with psycopg.connect(private.replace("postgresql+psycopg://", "postgresql://")) as conn:
            seed(conn, flights=flights, due=due, now=datetime.now(UTC), carriers=("LH",),
                 first_day=datetime.now(UTC).date() + timedelta(days=1))
        yield private


def main() -> None:  # pragma: no cover - a tool run by hand
    args = sys.argv[1:]
    claimers = int(os.environ.get("CLAIMERS", "1"))
    flights, due, rounds, repeats = (int(a) for a in args[:4]) if len(args) >= 4 else (
        1_000_000, 10_000, 100, 3)
    with _seeded(flights, due, args[4] if len(args) > 4 else None) as url:
        for _ in range(repeats):
            load = os.getloadavg()[0]
            timings = time_claims(url, flights=flights, due=due, rounds=rounds,
                                  claimers=claimers)
            print(json.dumps({**timings.to_json(), "claimers": claimers,
                              "load": round(load, 2),
                              "at": datetime.now(UTC).strftime("%H:%M:%S")}), flush=True)


if __name__ == "__main__":
    main()
