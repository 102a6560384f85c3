"""Circuit breakers: the pure state machine with a fake clock, persistence between runs, and
exactly one half-open probe when several processes race for it."""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import replace
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest

from flightsync.config import BreakerSettings
from flightsync.resilience import (
    Breakers,
    BreakerState,
    BreakerStatus,
    StateStore,
    decide,
    next_probe_at,
    on_failure,
    on_success,
)

SETTINGS = BreakerSettings(failure_threshold=3, reset_timeout_seconds=30)
T0 = 1_800_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _opened(at: float = T0) -> BreakerState:
    state = BreakerState()
    for _ in range(SETTINGS.failure_threshold):
        state = on_failure(state, at, SETTINGS)
    return state


# --- the pure state machine ------------------------------------------------------------------

def test_closed_breaker_allows_calls_and_stays_closed_below_threshold() -> None:
    """Fewer consecutive failures than the threshold keep the breaker closed and calling."""
    state = BreakerState()
    for _ in range(SETTINGS.failure_threshold - 1):
        state = on_failure(state, T0, SETTINGS)
    allowed, after = decide(state, T0, SETTINGS)
    assert allowed
    assert after.state is BreakerStatus.CLOSED
    assert after.failures == SETTINGS.failure_threshold - 1


def test_success_resets_the_consecutive_failure_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    state = BreakerState()
    for _ in range(SETTINGS.failure_threshold - 1):
        state = on_failure(state, T0, SETTINGS)
    state = on_success(state, T0, SETTINGS)
    state = on_failure(state, T0, SETTINGS)
    assert state.state is BreakerStatus.CLOSED
    assert state.failures == 1


def test_threshold_failures_open_the_breaker() -> None:
    """The threshold-th consecutive failure opens it, stamping opened_at and open_since."""
    state = _opened(T0)
    assert state.state is BreakerStatus.OPEN
    assert state.opened_at == T0
    assert state.open_since == T0
    assert next_probe_at(state, SETTINGS) == T0 + SETTINGS.reset_timeout_seconds


def test_open_breaker_refuses_calls_until_the_reset_timeout() -> None:
    """Before reset_timeout has passed an open breaker refuses and does not change."""
    state = _opened(T0)
    allowed, after = decide(state, T0 + SETTINGS.reset_timeout_seconds - 0.001, SETTINGS)
    assert not allowed
    assert after == state


def test_after_the_timeout_exactly_one_probe_is_granted() -> None:
    """At reset_timeout the first caller gets the probe (half-open); the next is refused."""
    when = T0 + SETTINGS.reset_timeout_seconds
    allowed, probing = decide(_opened(T0), when, SETTINGS)
    assert allowed
    assert probing.state is BreakerStatus.HALF_OPEN
    assert probing.probe_started_at == when
    again, unchanged = decide(probing, when + 1, SETTINGS)
    assert not again
    assert unchanged == probing


def test_successful_probe_closes_the_breaker() -> None:
    """A successful probe closes the breaker and forgets failures and opening times."""
    _, probing = decide(_opened(T0), T0 + SETTINGS.reset_timeout_seconds, SETTINGS)
    closed = on_success(probing, T0 + 31, SETTINGS)
    assert closed == BreakerState()
    assert next_probe_at(closed, SETTINGS) is None


def test_failed_probe_reopens_and_keeps_open_since() -> None:
    """A failed probe opens the breaker again with a new opened_at; open_since stays."""
    probe_at = T0 + SETTINGS.reset_timeout_seconds
    _, probing = decide(_opened(T0), probe_at, SETTINGS)
    reopened = on_failure(probing, probe_at + 2, SETTINGS)
    assert reopened.state is BreakerStatus.OPEN
    assert reopened.opened_at == probe_at + 2
    assert reopened.open_since == T0
    assert reopened.probe_started_at is None
    allowed, _ = decide(reopened, probe_at + 2 + SETTINGS.reset_timeout_seconds - 1, SETTINGS)
    assert not allowed


def test_a_probe_that_never_reports_back_is_given_up() -> None:
    """A half-open probe silent for reset_timeout is abandoned and a new probe may go."""
    probe_at = T0 + SETTINGS.reset_timeout_seconds
    _, probing = decide(_opened(T0), probe_at, SETTINGS)
    later = probe_at + SETTINGS.reset_timeout_seconds
    allowed, reprobing = decide(probing, later, SETTINGS)
    assert allowed
    assert reprobing.state is BreakerStatus.HALF_OPEN
    assert reprobing.probe_started_at == later


def test_late_failure_while_open_does_not_extend_the_timeout() -> None:
    """A failure reported by a call granted before the opening leaves opened_at alone."""
    state = _opened(T0)
    later = on_failure(state, T0 + 10, SETTINGS)
    assert later.opened_at == T0
    assert later.failures == state.failures + 1


# --- persisted breakers ----------------------------------------------------------------------

def test_state_survives_between_two_invocations(state_dir: Path) -> None:
    """Failures recorded by one run open the breaker that the next run (a new store) sees."""
    clock = FakeClock()
    with StateStore(state_dir) as store:
        first = Breakers(store, SETTINGS, clock)
        for _ in range(SETTINGS.failure_threshold):
            assert first.before_call("lufthansa")
            first.record_failure("lufthansa")
    clock.now += 5
    with StateStore(state_dir) as store:
        second = Breakers(store, SETTINGS, clock)
        assert not second.before_call("lufthansa")
        assert second.before_call("amadeus")
        view = second.snapshot()["lufthansa"]
        assert view.state == "open"
        assert view.failures == SETTINGS.failure_threshold
        assert view.opened_at is not None
        assert view.opened_at.timestamp() == T0
        assert view.next_probe_at is not None
        assert view.next_probe_at.timestamp() == T0 + SETTINGS.reset_timeout_seconds
        clock.now = T0 + SETTINGS.reset_timeout_seconds
        assert second.before_call("lufthansa")
        assert not second.before_call("lufthansa")
        second.record_success("lufthansa")
        assert second.state("lufthansa") == BreakerState()


def test_snapshot_lists_requested_providers_and_renders_json(state_dir: Path) -> None:
    """Providers never written show closed; to_json has the status keys of docs/CONTRACTS.md §3."""
    clock = FakeClock()
    with StateStore(state_dir) as store:
        breakers = Breakers(store, SETTINGS, clock)
        for _ in range(SETTINGS.failure_threshold):
            breakers.record_failure("flightaware")
        views = breakers.snapshot(["amadeus"])
    assert set(views) == {"amadeus", "flightaware"}
    assert views["amadeus"].to_json() == {"state": "closed", "failures": 0, "opened_at": None,
                                          "open_since": None, "next_probe_at": None}
    rendered = views["flightaware"].to_json()
    assert rendered["state"] == "open"
    assert rendered["opened_at"].endswith("Z")


def test_reset_closes_one_or_all_breakers(state_dir: Path) -> None:
    """reset(name) closes that provider's breaker only; reset() closes every one."""
    with StateStore(state_dir) as store:
        breakers = Breakers(store, SETTINGS, FakeClock())
        for name in ("amadeus", "lufthansa"):
            for _ in range(SETTINGS.failure_threshold):
                breakers.record_failure(name)
        breakers.reset("amadeus")
        assert breakers.before_call("amadeus")
        assert not breakers.before_call("lufthansa")
        breakers.reset()
        assert breakers.before_call("lufthansa")
        assert breakers.snapshot() == {}


# --- across processes ------------------------------------------------------------------------

def _slow_clock() -> float:
    # Reading the clock happens between the read and the write of the decision: a pause here
    # widens the race window so that a non-atomic read-modify-write would hand out many probes.
    time.sleep(0.05)
    return time.time()


def _race_for_probe(state_dir: str, barrier: Barrier, results: Queue[bool]) -> None:
    store = StateStore(Path(state_dir))
    breakers = Breakers(store, SETTINGS, _slow_clock)  # real time: the opening is long past
    barrier.wait()
    results.put(breakers.before_call("amadeus"))
    store.close()


def _probe_and_hang(state_dir: str, granted: Queue[bool], hang: Event) -> None:
    store = StateStore(Path(state_dir))
    granted.put(Breakers(store, SETTINGS).before_call("amadeus"))
    hang.wait()  # killed here, never reporting back


def _open_long_ago(state_dir: Path) -> float:
    opened = time.time() - 10 * SETTINGS.reset_timeout_seconds
    with StateStore(state_dir) as store:
        breakers = Breakers(store, SETTINGS, FakeClock(opened))
        for _ in range(SETTINGS.failure_threshold):
            breakers.record_failure("amadeus")
    return opened


def _context() -> ForkContext | SpawnContext:
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def test_exactly_one_process_gets_the_half_open_probe(state_dir: Path) -> None:
    """Several processes asking at the same moment after the timeout: one probe, not more."""
    _open_long_ago(state_dir)
    ctx = _context()
    racers = 6
    barrier = ctx.Barrier(racers)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race_for_probe, args=(str(state_dir), barrier, results))
             for _ in range(racers)]
    for proc in procs:
        proc.start()
    grants = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    assert grants.count(True) == 1
    assert len(grants) == racers
    with StateStore(state_dir) as store:
        assert Breakers(store, SETTINGS).state("amadeus").state is BreakerStatus.HALF_OPEN


def test_a_killed_probe_is_eventually_retried(state_dir: Path) -> None:
    """A process killed while holding the probe blocks others only until the probe timeout."""
    _open_long_ago(state_dir)
    ctx = _context()
    granted = ctx.Queue()
    hang = ctx.Event()
    proc = ctx.Process(target=_probe_and_hang, args=(str(state_dir), granted, hang))
    proc.start()
    try:
        assert granted.get(timeout=60) is True
    finally:
        proc.kill()
        proc.join(timeout=60)
    with StateStore(state_dir) as store:
        held = Breakers(store, SETTINGS).state("amadeus")
        assert held.probe_started_at is not None
        soon = FakeClock(held.probe_started_at + 1)
        assert not Breakers(store, SETTINGS, soon).before_call("amadeus")
        later = FakeClock(held.probe_started_at + SETTINGS.reset_timeout_seconds)
        assert Breakers(store, SETTINGS, later).before_call("amadeus")
        assert Breakers(store, SETTINGS, later).state("amadeus") == replace(
            held, probe_started_at=later.now)


def test_exactly_one_thread_gets_the_probe_on_a_shared_store(state_dir: Path) -> None:
    """Worker threads sharing one Breakers object also hand out a single probe."""
    _open_long_ago(state_dir)
    racers = 6
    barrier = threading.Barrier(racers)
    grants: list[bool] = []
    with StateStore(state_dir) as store:
        breakers = Breakers(store, SETTINGS, _slow_clock)

        def race() -> None:
            barrier.wait()
            grants.append(breakers.before_call("amadeus"))

        threads = [threading.Thread(target=race) for _ in range(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(grants) == racers
    assert grants.count(True) == 1


@pytest.mark.parametrize("failures", [1, 2])
def test_breakers_follow_the_configured_threshold(state_dir: Path, failures: int) -> None:
    """The threshold comes from BreakerSettings, not a constant."""
    settings = BreakerSettings(failure_threshold=failures, reset_timeout_seconds=30)
    with StateStore(state_dir) as store:
        breakers = Breakers(store, settings, FakeClock())
        for _ in range(failures - 1):
            breakers.record_failure("amadeus")
            assert breakers.before_call("amadeus")
        breakers.record_failure("amadeus")
        assert not breakers.before_call("amadeus")

