"""The limits storages (flightsync.resilience._limits) and the wait rule of Budgets: the
diskcache storage is a `limits` storage (its strategies run on it), both backends keep the
sent-window, charges and quota blocks alike, and a call waits for a slot only when the wait
fits in max_wait_seconds and the call's deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from flightsync.config import BudgetCaps, ProviderSettings
from flightsync.errors import QuotaSkipped
from flightsync.resilience import Budgets, SentWindowStorage, provider_budgets
from flightsync.resilience._limits import Charge, DiskcacheStorage, SharedRedisStorage, Window
from tests._redis import private_redis


@pytest.fixture(params=["diskcache", "redis"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SentWindowStorage]:
    if request.param == "diskcache":
        disk = DiskcacheStorage(f"flightsync+diskcache://{tmp_path / 'limits'}")
        yield disk
        disk.close()
        return
    with private_redis(tmp_path / "redis") as url:
        shared = SharedRedisStorage(url, key_prefix="test")
        yield shared
        shared.close()


def test_the_state_directory_storage_is_a_limits_storage(tmp_path: Path) -> None:
    """`limits` finds DiskcacheStorage by its scheme and its moving-window strategy runs on
    it: 3/second admits three hits and refuses the fourth; the folder is 0700."""
    storage = storage_from_string(f"flightsync+diskcache://{tmp_path / 'limits'}")
    assert isinstance(storage, DiskcacheStorage)
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/second")
    assert [limiter.hit(item, "p") for _ in range(4)] == [True, True, True, False]
    assert storage.incr("n", 60) == 1 and storage.incr("n", 60, 4) == 5 and storage.get("n") == 5
    assert (tmp_path / "limits").stat().st_mode & 0o777 == 0o700


def test_calls_in_flight_count_until_a_window_after_they_finish(
        storage: SentWindowStorage) -> None:
    """Two slots of 2/second: two calls in flight fill them (the third must wait, with no
    known time yet); once both finished they still count, and the wait named is about one
    window."""
    window = [Window(2, 1)]
    assert storage.acquire_sent("s", window, "a", 30).verdict == "ok"
    assert storage.acquire_sent("s", window, "b", 30).verdict == "ok"
    third = storage.acquire_sent("s", window, "c", 30)
    assert (third.verdict, third.wait) == ("wait", 0.0)
    storage.settle_sent("s", window, "a")
    storage.settle_sent("s", window, "b")
    assert storage.sent_counts("s", window) == [2]
    later = storage.acquire_sent("s", window, "c", 30)
    assert later.verdict == "wait" and 0.5 < later.wait <= 1.02


def test_a_charge_over_its_cap_refuses_the_call_and_adds_nothing(
        storage: SentWindowStorage) -> None:
    """Charges add atomically up to their cap; the one that would pass it refuses the call
    and leaves every counter as it was."""
    spend = Charge("spend", 300, 60, cap=700)
    calls = Charge("calls", 1, 60)
    assert storage.acquire_sent("s", [], "a", 30, charges=[calls, spend]).verdict == "ok"
    assert storage.acquire_sent("s", [], "b", 30, charges=[calls, spend]).verdict == "ok"
    refused = storage.acquire_sent("s", [], "c", 30, charges=[calls, spend])
    assert (refused.verdict, refused.charge) == ("cap", 1)
    assert (storage.counter("spend"), storage.counter("calls")) == (600, 2)


def test_a_block_refuses_every_call_until_it_ends(storage: SentWindowStorage) -> None:
    """A blocked key refuses calls naming it, says for how long, and is never shortened."""
    storage.block_for("quota", 100)
    storage.block_for("quota", 1)
    admission = storage.acquire_sent("s", [Window(5, 1)], "a", 30, block="quota")
    assert admission.verdict == "blocked" and 98 < admission.wait <= 100
    until = storage.blocked_until("quota")
    assert until is not None and 98 < until - time.time() <= 100
    assert storage.acquire_sent("s", [Window(5, 1)], "b", 30, block="other").verdict == "ok"


class _Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        time.sleep(seconds)


def _budgets(tmp_path: Path, max_wait: float, sleep: _Sleeps) -> Budgets:
    settings = {"sandbox": ProviderSettings(limits="1/second", max_wait_seconds=max_wait)}
    disk = DiskcacheStorage(f"flightsync+diskcache://{tmp_path / 'limits'}")
    return Budgets(lambda: disk, provider_budgets(settings, {}), hold_seconds=30,
                   sleep=sleep)


def _one_call(budgets: Budgets, deadline_in: float = 60) -> None:
    with budgets.call("sandbox", deadline=time.monotonic() + deadline_in):
        pass


def test_a_wait_longer_than_max_wait_skips_at_once(tmp_path: Path) -> None:
    """With 1/second used, the next slot is about a second away: beyond max_wait_seconds 0.5
    the call is skipped (`quota_exhausted`, reason rate_limit) without sleeping."""
    sleeps = _Sleeps()
    budgets = _budgets(tmp_path, max_wait=0.5, sleep=sleeps)
    _one_call(budgets)
    with pytest.raises(QuotaSkipped) as skipped:
        _one_call(budgets)
    assert (skipped.value.code, skipped.value.reason) == ("quota_exhausted", "rate_limit")
    assert sleeps.calls == []


def test_a_wait_within_max_wait_sleeps_then_calls(tmp_path: Path) -> None:
    """With max_wait_seconds 3 the same call waits for its slot and is made."""
    sleeps = _Sleeps()
    budgets = _budgets(tmp_path, max_wait=3, sleep=sleeps)
    _one_call(budgets)
    _one_call(budgets)
    assert sleeps.calls and sum(sleeps.calls) <= 3


def test_the_wait_counts_against_the_calls_deadline(tmp_path: Path) -> None:
    """max_wait_seconds 3 would allow the wait, but the call's deadline is 0.5 s away: the
    call is skipped rather than waiting past its deadline."""
    sleeps = _Sleeps()
    budgets = _budgets(tmp_path, max_wait=3, sleep=sleeps)
    _one_call(budgets)
    with pytest.raises(QuotaSkipped):
        _one_call(budgets, deadline_in=0.5)
    assert sleeps.calls == []


def test_budgets_come_from_settings_and_published_defaults() -> None:
    """Configured limits win over the adapter's published default; the older
    rate_limit_per_second joins them; cost and caps are kept in micro-units."""
    budgets = provider_budgets({
        "amadeus": ProviderSettings(limits="2/second", cost_per_call=0.0125,
                                    budget=BudgetCaps(day=1.5)),
        "lufthansa": ProviderSettings(rate_limit_per_second=0.5),
    }, {"amadeus": "10/second", "flightaware": "7/minute", "cirium": None})
    assert [w for _, w in budgets["amadeus"].windows] == [Window(2, 1)]
    assert budgets["amadeus"].cost_micro == 12_500
    assert budgets["amadeus"].budget_micro == {"day": 1_500_000}
    assert [w for _, w in budgets["lufthansa"].windows] == [Window(1, 2)]
    assert [w for _, w in budgets["flightaware"].windows] == [Window(7, 60)]
    assert not budgets["cirium"].active


def test_published_limits_apply_only_against_the_providers_own_host(tmp_path: Path) -> None:
    """Amadeus publishes 10/second for its test host: the default applies at that base URL,
    and not when the base URL points elsewhere (the sandbox, a test server), so a sandbox
    run is never slowed or skipped by it."""
    from flightsync.config import load_settings  # noqa: PLC0415
    from flightsync.providers import build_providers  # noqa: PLC0415
    from flightsync.sandbox import sandbox_environment  # noqa: PLC0415

    own = build_providers(load_settings(None, {}), tmp_path)
    sandboxed = build_providers(
        load_settings(None, sandbox_environment("http://127.0.0.1:9")), tmp_path)
    assert own.default_limits("amadeus") == "10/second"
    assert own.default_limits("lufthansa") is None  # nothing published
    assert sandboxed.default_limits("amadeus") is None


def test_due_flights_are_taken_most_urgent_first() -> None:
    """Airborne first; then those still to depart, soonest first (a never-synced flight
    among them); then those that departed, latest first; a tie goes to the flight that
    changed most (highest version)."""
    from datetime import UTC, date, datetime, timedelta  # noqa: PLC0415

    from flightsync.engine._due import most_urgent_first  # noqa: PLC0415
    from flightsync.models import FlightQuery, FlightRecord, FlightStatus  # noqa: PLC0415
    from flightsync.store import repository as repo  # noqa: PLC0415

    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    day = date(2026, 3, 1)

    def leg(number: int, status: FlightStatus, hours: float, version: int = 1,
            ) -> tuple[FlightQuery, list[repo.StoredLeg]]:
        record = FlightRecord(carrier="LH", flight_number=number, suffix="",
                              departure_date=day, leg_index=0, origin="FRA", status=status,
                              scheduled_departure=now + timedelta(hours=hours),
                              version=version)
        stored = repo.StoredLeg(id=number, leg_index=0, origin="FRA", values={},
                                version=version, open_conflicts=frozenset(), record=record)
        return FlightQuery(carrier="LH", number=number, departure_date=day), [stored]

    flights = dict([
        leg(1, FlightStatus.LANDED, -5),
        leg(2, FlightStatus.SCHEDULED, 6),
        leg(3, FlightStatus.AIRBORNE, -1),
        leg(4, FlightStatus.SCHEDULED, 1, version=1),
        leg(5, FlightStatus.SCHEDULED, 1, version=4),
        leg(6, FlightStatus.ARRIVED, -2),
    ])
    never = FlightQuery(carrier="LH", number=7, departure_date=day)
    stored = {repo.key_of(q): legs for q, legs in flights.items()}
    order = most_urgent_first([*flights, never], stored, now)
    assert [q.number for q in order] == [3, 7, 5, 4, 2, 6, 1]
