"""The observation cache and the state directory: entries per (provider, flight, date) with an
expiry on an injectable clock, persistent hit/miss counters, TTL tiers at their boundaries,
private file permissions, and a clear error for an unusable state directory."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flightsync.config import CacheSettings
from flightsync.errors import StoreError
from flightsync.models import (
    FieldConflict,
    FlightQuery,
    FlightRecord,
    FlightStatus,
    Leg,
    Observation,
    SourceOutcome,
    SyncResult,
    SyncStatus,
)
from flightsync.resilience import ObservationCache, StateStore, Tier, tier

SETTINGS = CacheSettings(ttl_active_seconds=900, ttl_future_seconds=3600,
                         ttl_arrived_seconds=86400)
NOW = datetime(2026, 2, 25, 12, 0, tzinfo=UTC)
LH400 = FlightQuery("LH", 400, NOW.date())
AF1 = FlightQuery("AF", 1, NOW.date())


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


def _observation(provider: str, query: FlightQuery, gate: str = "A1") -> Observation:
    leg = Leg(origin="FRA", destination="JFK", status=FlightStatus.SCHEDULED,
              scheduled_departure=NOW + timedelta(hours=2), departure_gate=gate)
    return Observation(provider=provider, query=query, legs=(leg,), fetched_at=NOW,
                       raw='{"payload": true}')


@pytest.fixture
def store(state_dir: Path) -> Iterator[StateStore]:
    with StateStore(state_dir) as opened:
        yield opened


def test_put_then_get_returns_an_equal_observation(store: StateStore) -> None:
    """A cached observation comes back equal to what was stored, for that provider only."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    obs = _observation("lufthansa", LH400)
    cache.put("lufthansa", LH400, obs, ttl=60)
    assert cache.get("lufthansa", LH400) == obs
    assert cache.get("amadeus", LH400) is None
    assert cache.get("lufthansa", AF1) is None


def test_get_many_returns_only_providers_with_fresh_entries(store: StateStore) -> None:
    """get_many maps each provider that has a fresh entry to it and omits the others."""
    clock = FakeClock()
    cache = ObservationCache(store, SETTINGS, clock)
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400, "B2"), ttl=600)
    cache.put("amadeus", LH400, _observation("amadeus", LH400, "B3"), ttl=60)
    clock.now += 120
    found = cache.get_many(["lufthansa", "amadeus", "flightaware"], LH400)
    assert set(found) == {"lufthansa"}
    assert found["lufthansa"].legs[0].departure_gate == "B2"


def test_expired_entries_are_not_returned(store: StateStore) -> None:
    """An entry is served until its TTL has passed and not from that moment on."""
    clock = FakeClock()
    cache = ObservationCache(store, SETTINGS, clock)
    ttl = 300.0
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400), ttl=ttl)
    clock.now += ttl - 1
    assert cache.get("lufthansa", LH400) is not None
    clock.now += 1
    assert cache.get("lufthansa", LH400) is None


def test_a_later_put_replaces_the_entry(store: StateStore) -> None:
    """Writing the same (provider, flight, date) again replaces value and expiry."""
    clock = FakeClock()
    cache = ObservationCache(store, SETTINGS, clock)
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400, "A1"), ttl=10)
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400, "C9"), ttl=100)
    clock.now += 50
    cached = cache.get("lufthansa", LH400)
    assert cached is not None
    assert cached.legs[0].departure_gate == "C9"
    assert cache.stats()["entries"] == 1


def test_unreadable_entries_count_as_misses(store: StateStore) -> None:
    """Foreign values, and entries written for another model layout, are misses, not errors."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    cache.put("amadeus", LH400, _observation("amadeus", LH400), ttl=600)
    key = "amadeus|" + LH400.key
    layout, expires_at, packed = store.cache.get(key)
    store.cache.set(key, (layout ^ 1, expires_at, packed))
    store.cache.set("lufthansa|" + LH400.key, "not an entry")
    store.cache.set("flightaware|" + LH400.key, ("soon", 1.0, packed))
    assert cache.get_many(["lufthansa", "amadeus", "flightaware"], LH400) == {}


def test_round_trip_keeps_types_of_every_field(store: StateStore) -> None:
    """Multi-leg observations come back with enums, tuples and times of the same types."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    legs = (
        Leg(origin="AMS", destination="RUH", status=FlightStatus.DEPARTED,
            actual_departure=NOW, codeshares=("KL1234", "DL99"), operating_carrier="KL",
            operating_flight_number=419, aircraft_type="B77W"),
        Leg(origin="RUH", destination="DXB", status=FlightStatus.SCHEDULED,
            scheduled_departure=NOW + timedelta(hours=8)),
    )
    obs = Observation(provider="airfrance_klm", query=AF1, legs=legs, fetched_at=NOW,
                      updated_at=NOW - timedelta(minutes=3), raw="{}")
    cache.put("airfrance_klm", AF1, obs, ttl=60)
    back = cache.get("airfrance_klm", AF1)
    assert back == obs
    assert back is not None
    assert type(back.legs[0].status) is FlightStatus
    assert back.legs[0].codeshares == ("KL1234", "DL99")


def test_drop_forgets_one_flight_for_every_provider(store: StateStore) -> None:
    """drop(query) removes every provider's entry for that flight and no other flight's."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    for provider in ("lufthansa", "amadeus", "some_plugin"):
        cache.put(provider, LH400, _observation(provider, LH400), ttl=600)
    cache.put("airfrance_klm", AF1, _observation("airfrance_klm", AF1), ttl=600)
    assert cache.drop(LH400) == 3
    assert cache.get_many(["lufthansa", "amadeus", "some_plugin"], LH400) == {}
    assert cache.get("airfrance_klm", AF1) is not None


def test_clear_forgets_everything_but_keeps_counters(store: StateStore) -> None:
    """clear() empties the cache; hit and miss totals are history and stay."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400), ttl=600)
    cache.put("airfrance_klm", AF1, _observation("airfrance_klm", AF1), ttl=600)
    cache.record(hits=2, misses=1)
    assert cache.clear() == 2
    stats = cache.stats()
    assert stats["entries"] == 0
    assert (stats["hits"], stats["misses"]) == (2, 1)
    assert cache.get("lufthansa", LH400) is None


def test_hit_and_miss_counts_persist_across_instances(state_dir: Path) -> None:
    """Counts recorded by one run add up with the next run's on the same state directory."""
    with StateStore(state_dir) as store:
        ObservationCache(store, SETTINGS).record(hits=3, misses=1)
    with StateStore(state_dir) as store:
        cache = ObservationCache(store, SETTINGS)
        cache.record(hits=1)
        cache.record(misses=4)
        stats = cache.stats()
    assert stats["hits"] == 3 + 1
    assert stats["misses"] == 1 + 4
    assert stats["hit_rate"] == pytest.approx(4 / 9, abs=1e-4)
    assert set(stats) == {"entries", "hits", "misses", "hit_rate", "size_bytes"}


def test_counters_add_up_across_threads_and_stores(state_dir: Path) -> None:
    """Threads recording at once, through one shared store or their own, lose no count."""
    threads_each, rounds = 4, 25
    with StateStore(state_dir) as shared:

        def on_shared() -> None:
            cache = ObservationCache(shared, SETTINGS)
            for _ in range(rounds):
                cache.record(hits=1, misses=2)

        def on_own() -> None:
            with StateStore(state_dir) as own:
                cache = ObservationCache(own, SETTINGS)
                for _ in range(rounds):
                    cache.record(hits=1, misses=2)

        workers = [threading.Thread(target=fn) for fn in (on_shared, on_own)
                   for _ in range(threads_each)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        stats = ObservationCache(shared, SETTINGS).stats()
    assert stats["hits"] == len(workers) * rounds
    assert stats["misses"] == 2 * len(workers) * rounds


def test_stats_without_lookups_and_with_entries(store: StateStore) -> None:
    """A fresh cache reports zero counts and rate; entries and size grow with puts."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    empty = cache.stats()
    assert (empty["entries"], empty["hits"], empty["misses"], empty["hit_rate"]) == (0, 0, 0, 0)
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400), ttl=60)
    full = cache.stats()
    assert full["entries"] == 1
    assert full["size_bytes"] > 0


def _result(query: FlightQuery) -> SyncResult:
    record = FlightRecord(carrier=query.carrier, flight_number=query.number, suffix="",
                          departure_date=query.departure_date, leg_index=0, origin="FRA",
                          destination="JFK", status=FlightStatus.DELAYED,
                          scheduled_departure=NOW, estimated_departure=NOW + timedelta(minutes=40),
                          codeshares=("LX7171",), version=3, last_synced_at=NOW)
    return SyncResult(
        query=query, success=True, sync_status=SyncStatus.CONFLICT, from_cache=False,
        legs=(record,),
        sources=(SourceOutcome("lufthansa", ok=True, ms=120),
                 SourceOutcome("amadeus", ok=True, ms=95)),
        conflicts=(FieldConflict("departure_gate", {"lufthansa": "A1", "amadeus": "A2"}, "A1",
                                 "priority"),),
        changed_fields=("estimated_departure",))


def test_a_cached_result_comes_back_marked_from_cache(store: StateStore) -> None:
    """put_result/get_result keep the whole sync outcome, flagged as served from the cache."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    providers = ["lufthansa", "amadeus"]
    for name in providers:
        cache.put(name, LH400, _observation(name, LH400), ttl=600)
    result = _result(LH400)
    cache.put_result(LH400, providers, result, ttl=600)
    cached = cache.get_result(LH400, list(reversed(providers)))
    assert cached is not None
    assert cached.from_cache
    assert cached.legs == result.legs
    assert cached.conflicts == result.conflicts
    assert cached.sync_status is result.sync_status
    assert cached.changed_fields == ()
    assert [(s.name, s.ok, s.from_cache, s.ms) for s in cached.sources] == [
        (s.name, s.ok, True, 0) for s in result.sources]
    assert cached.to_json()["flight"] == result.to_json()["flight"]


def test_a_cached_result_lives_no_longer_than_its_observations(store: StateStore) -> None:
    """The result expires with the first provider entry it was built from."""
    clock = FakeClock()
    cache = ObservationCache(store, SETTINGS, clock)
    cache.put("lufthansa", LH400, _observation("lufthansa", LH400), ttl=600)
    cache.put("amadeus", LH400, _observation("amadeus", LH400), ttl=60)
    cache.put_result(LH400, ["lufthansa", "amadeus"], _result(LH400), ttl=900)
    clock.now += 59
    assert cache.get_result(LH400, ["lufthansa", "amadeus"]) is not None
    clock.now += 1
    assert cache.get_result(LH400, ["lufthansa", "amadeus"]) is None


def test_a_cached_result_needs_the_same_providers_and_is_dropped(store: StateStore) -> None:
    """A result for other providers is not served; drop(query) removes it with the rest."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    cache.put_result(LH400, ["lufthansa", "amadeus"], _result(LH400), ttl=600)
    assert cache.get_result(LH400, ["lufthansa"]) is None
    assert cache.get_result(LH400, ["lufthansa", "amadeus", "flightaware"]) is None
    assert cache.get_result(LH400, ["amadeus", "lufthansa"]) is not None
    cache.drop(LH400)
    assert cache.get_result(LH400, ["amadeus", "lufthansa"]) is None


# --- TTL tiers -------------------------------------------------------------------------------

def _leg(**times: object) -> Leg:
    return Leg(origin="FRA", destination="JFK", **times)  # type: ignore[arg-type]


@pytest.mark.parametrize(("leg", "expected"), [
    (_leg(scheduled_departure=NOW + timedelta(hours=24)), Tier.ACTIVE),
    (_leg(scheduled_departure=NOW + timedelta(hours=24, seconds=1)), Tier.FUTURE),
    (_leg(scheduled_departure=NOW + timedelta(hours=30),
          estimated_departure=NOW + timedelta(hours=23)), Tier.ACTIVE),
    (_leg(status=FlightStatus.AIRBORNE, scheduled_departure=NOW - timedelta(hours=10),
          scheduled_arrival=NOW - timedelta(hours=7)), Tier.ACTIVE),
    (_leg(status=FlightStatus.ARRIVED, actual_arrival=NOW - timedelta(hours=6)), Tier.ACTIVE),
    (_leg(status=FlightStatus.ARRIVED,
          actual_arrival=NOW - timedelta(hours=6, seconds=1)), Tier.ARRIVED),
    (_leg(actual_arrival=NOW - timedelta(hours=7)), Tier.ARRIVED),
    (_leg(scheduled_departure=NOW - timedelta(hours=9),
          scheduled_arrival=NOW - timedelta(hours=6, seconds=1)), Tier.ARRIVED),
    (_leg(scheduled_departure=NOW - timedelta(hours=3),
          scheduled_arrival=NOW - timedelta(hours=1)), Tier.ACTIVE),
    (_leg(), Tier.ACTIVE),
], ids=["departs-in-24h", "departs-after-24h", "estimated-earlier", "airborne-late",
        "arrived-6h-ago", "arrived-over-6h-ago", "actual-arrival-only", "long-over-no-status",
        "recently-due", "no-times"])
def test_tier_boundaries(leg: Leg, expected: Tier) -> None:
    """Tiers follow docs/CONTRACTS.md section 7 exactly at their 24 h and 6 h boundaries."""
    assert tier([leg], NOW) is expected


def test_multi_leg_flight_uses_first_departure_and_last_arrival() -> None:
    """A flight is future by its first leg's departure and arrived by its last leg's arrival."""
    first = _leg(status=FlightStatus.ARRIVED, actual_arrival=NOW - timedelta(hours=8))
    second = _leg(status=FlightStatus.AIRBORNE)
    assert tier([first, second], NOW) is Tier.ACTIVE
    later = [_leg(scheduled_departure=NOW + timedelta(hours=25)),
             _leg(scheduled_departure=NOW + timedelta(hours=30))]
    assert tier(later, NOW) is Tier.FUTURE
    assert tier([], NOW) is Tier.ACTIVE


def test_ttl_for_maps_tiers_to_the_configured_seconds(store: StateStore) -> None:
    """ttl_for returns the configured TTL of each tier, using the cache clock by default."""
    cache = ObservationCache(store, SETTINGS, FakeClock())
    future = [_leg(scheduled_departure=NOW + timedelta(days=3))]
    arrived = [_leg(status=FlightStatus.ARRIVED, actual_arrival=NOW - timedelta(days=1))]
    soon = [_leg(scheduled_departure=NOW + timedelta(hours=1))]
    assert cache.ttl_for(future) == SETTINGS.ttl_future_seconds
    assert cache.ttl_for(arrived) == SETTINGS.ttl_arrived_seconds
    assert cache.ttl_for(soon) == SETTINGS.ttl_active_seconds
    assert cache.ttl_for(future, NOW + timedelta(days=2, hours=12)) == SETTINGS.ttl_active_seconds


# --- the state directory ---------------------------------------------------------------------

def test_state_files_are_private(state_dir: Path) -> None:
    """Every folder of the state directory is 0700 and every file in it 0600."""
    with StateStore(state_dir) as store:
        cache = ObservationCache(store, SETTINGS)
        cache.put("lufthansa", LH400, _observation("lufthansa", LH400), ttl=60)
        cache.record(hits=1)
        store.breakers.set("probe", 1)
        paths = [state_dir, *state_dir.rglob("*")]
        assert sum(p.is_file() for p in paths) >= 3
        for path in paths:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o700 if path.is_dir() else 0o600), path


def test_loose_permissions_are_tightened_on_open(state_dir: Path) -> None:
    """A state directory left readable by others is made private again when opened."""
    with StateStore(state_dir) as store:
        store.cache.set("k", 1)
    (state_dir / "cache").chmod(0o755)
    db = state_dir / "cache" / "cache.db"
    db.chmod(0o644)
    with StateStore(state_dir) as store:
        assert store.cache.get("k") == 1
    assert stat.S_IMODE((state_dir / "cache").stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_unusable_state_dir_is_a_store_error(tmp_path: Path) -> None:
    """A state directory that cannot be created raises StoreError (exit 5), in one line."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as caught:
        StateStore(blocker / "state")
    assert caught.value.exit_code == 5
    assert "\n" not in str(caught.value)
    assert str(blocker / "state") in str(caught.value)
