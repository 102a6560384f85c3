"""The state interface (``resilience.Bucket``) behaves the same on both backends: the state
directory (diskcache) and Redis. Each test runs on both; the Redis variant skips when the
server is unreachable (fails under CI=true)."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flightsync.models import FlightStatus
from flightsync.resilience import Bucket, StateStore


@pytest.fixture(params=["disk", "redis"])
def store(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[StateStore]:
    if request.param == "disk":
        opened = StateStore(state_dir)
    else:
        url, prefix = request.getfixturevalue("redis_state")
        opened = StateStore(state_dir, url=url, prefix=prefix)
    with opened:
        yield opened


def test_values_round_trip_with_their_types(store: StateStore) -> None:
    """Tuples, floats, None, dicts, datetimes and the model enums come back equal."""
    value = (1, 2.5, None, "x", {"a": [1, 2]}, datetime(2026, 2, 25, 5, tzinfo=UTC),
             FlightStatus.ARRIVED, frozenset({"b"}))
    store.cache.set("k", value)
    assert store.cache.get("k") == value
    assert store.cache.get("absent") is None


def test_delete_and_incr(store: StateStore) -> None:
    """delete says whether the key was there; incr starts from 0 and adds atomically."""
    bucket = store.counters
    assert bucket.incr("n", 2) == 2
    assert bucket.incr("n", 3) == 5
    assert bucket.get("n") == 5
    assert bucket.delete("n") is True
    assert bucket.delete("n") is False


def test_incr_from_many_threads_loses_nothing(store: StateStore) -> None:
    """Eight threads adding 50 times each give 400."""
    def add() -> None:
        for _ in range(50):
            store.counters.incr("hits")

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.counters.get("hits") == 400


def test_update_is_an_atomic_read_modify_write(store: StateStore) -> None:
    """Concurrent updates of one key each see the previous one's result: none is lost; a
    change returning the old value writes nothing, None deletes."""
    bucket = store.breakers

    def bump() -> None:
        for _ in range(25):
            bucket.update("row", lambda old: (old if isinstance(old, int) else 0) + 1)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bucket.get("row") == 100
    assert bucket.update("row", lambda old: old) == (100, 100)
    assert bucket.update("row", lambda old: None) == (100, None)
    assert bucket.get("row") is None


def test_the_lock_excludes_and_gives_up_at_its_deadline(store: StateStore) -> None:
    """While one holder has the lock another waiting 0.05 s does not get it; once released
    it does."""
    bucket = store.tokens
    with bucket.lock("account", hold=30, wait=1) as held:
        assert held
        with bucket.lock("account", hold=30, wait=0.05) as second:
            assert not second
    with bucket.lock("account", hold=30, wait=0) as again:
        assert again


def test_a_lock_whose_holder_died_expires(store: StateStore) -> None:
    """A lock held past ``hold`` (its holder killed) is free for the next caller."""
    bucket = store.tokens
    with bucket.lock("gone", hold=0.05, wait=0) as held:
        assert held
        with bucket.lock("gone", hold=30, wait=5) as taken_over:
            assert taken_over


def test_evict_by_tag_keys_clear_and_size(store: StateStore) -> None:
    """evict removes every entry of a tag and only those; keys lists entries; clear empties
    the bucket; size counts entries and bytes."""
    bucket: Bucket = store.cache
    bucket.set("a|LH400", 1, ttl=60, tag="LH400")
    bucket.set("b|LH400", 2, ttl=60, tag="LH400")
    bucket.set("a|LH402", 3, ttl=60, tag="LH402")
    assert sorted(bucket.keys()) == ["a|LH400", "a|LH402", "b|LH400"]
    entries, size = bucket.size()
    assert entries == 3 and size > 0
    assert bucket.evict("LH400") == 2
    assert sorted(bucket.keys()) == ["a|LH402"]
    assert bucket.clear() == 1
    assert list(bucket.keys()) == []


def test_redis_refuses_to_unpickle_anything_but_plain_state(
        state_dir: Path, redis_state: tuple[str, str]) -> None:
    """A value someone wrote to the shared server that would unpickle to an arbitrary object
    (code execution) is refused when read: the reader sees a damaged entry, nothing runs."""
    import redis  # noqa: PLC0415

    url, prefix = redis_state
    client = redis.Redis.from_url(url)
    client.set(f"{prefix}:cache:evil", pickle.dumps(Path("/etc/passwd"), protocol=5))
    client.close()
    with (StateStore(state_dir, url=url, prefix=prefix) as store,
          pytest.raises(pickle.UnpicklingError, match="refused")):
        store.cache.get("evil")
