"""Plausibility checks (issue 13): each rule of ``flightsync.plausibility`` and its boundary
(exactly at the threshold, one minute either side), what ``check`` returns, and the policy
file's ``plausibility`` section."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flightsync.errors import ConfigError
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation, Rejection
from flightsync.plausibility import (
    ACTUAL_TIME_IN_FUTURE,
    ARRIVAL_NOT_AFTER_DEPARTURE,
    BLOCK_TIME_TOO_SHORT,
    FAR_FROM_SCHEDULE,
    STATUS_WITHOUT_ARRIVAL,
    Thresholds,
    check,
    check_leg,
)
from flightsync.policy import DEFAULT_POLICY, Policy, load_policy

REPO = Path(__file__).resolve().parents[1]
MINUTE = timedelta(minutes=1)
DEP = datetime(2026, 2, 25, 8, 0, tzinfo=UTC)        # scheduled departure
ARR = DEP + timedelta(minutes=120)                    # scheduled arrival: a 120-minute block
NOW = DEP + timedelta(days=2)                         # long after the flight
QUERY = FlightQuery("LH", 400, date(2026, 2, 25))
# Only the rule under test may reject: the others are given room.
LOOSE = Thresholds(future_allowance_minutes=5, max_schedule_deviation_minutes=100_000,
                   min_block_time_share=0)


def leg(**values: Any) -> Leg:
    return Leg(origin="FRA", destination="JFK", scheduled_departure=DEP, scheduled_arrival=ARR,
               **values)


def dropped_fields(result: tuple[Leg, list[Any]]) -> dict[str, str]:
    """field -> reason of what ``check_leg`` dropped."""
    return {name: reason for name, _, reason, _ in result[1]}


# --- an arrival at or before the departure ---------------------------------------------------

@pytest.mark.parametrize(("departure", "arrival"), [
    ("scheduled_departure", "scheduled_arrival"),
    ("estimated_departure", "estimated_arrival"),
    ("actual_departure", "actual_arrival"),
])
@pytest.mark.parametrize(("offset", "rejected"), [(-1, True), (0, True), (1, False)])
def test_arrival_at_or_before_departure_is_dropped(departure: str, arrival: str, offset: int,
                                                   rejected: bool) -> None:
    """For each pair (scheduled, estimated, actual), an arrival one minute before or exactly
    at the departure is dropped (the arrival, not the departure); one minute after is kept."""
    values = {"scheduled_departure": DEP, "scheduled_arrival": ARR,
              departure: DEP + timedelta(minutes=30)}
    values[arrival] = values[departure] + offset * MINUTE
    result = check_leg(Leg(origin="FRA", **values), LOOSE, now=NOW)

    assert dropped_fields(result) == ({arrival: ARRIVAL_NOT_AFTER_DEPARTURE} if rejected else {})
    assert getattr(result[0], arrival) == (None if rejected else values[arrival])
    assert getattr(result[0], departure) == values[departure]


def test_a_rejected_scheduled_arrival_is_not_a_yardstick() -> None:
    """A scheduled arrival before the scheduled departure is dropped first, so the later rules
    do not measure the other arrival times against it."""
    bad = DEP - timedelta(hours=5)
    result = check_leg(Leg(origin="FRA", scheduled_departure=DEP, scheduled_arrival=bad,
                           actual_departure=DEP, actual_arrival=DEP + timedelta(hours=2)),
                       Thresholds(max_schedule_deviation_minutes=60), now=NOW)

    assert dropped_fields(result) == {"scheduled_arrival": ARRIVAL_NOT_AFTER_DEPARTURE}
    assert result[0].actual_arrival == DEP + timedelta(hours=2)


# --- an airborne (block) time that is a small fraction of the scheduled one ------------------

@pytest.mark.parametrize(("departure", "arrival"), [
    ("estimated_departure", "estimated_arrival"),
    ("actual_departure", "actual_arrival"),
])
@pytest.mark.parametrize(("minutes", "rejected"), [(59, True), (60, False), (61, False)])
def test_block_time_under_the_share_of_the_schedule_is_dropped(
        departure: str, arrival: str, minutes: int, rejected: bool) -> None:
    """With min_block_time_share 0.5 and a 120-minute scheduled block, a 59-minute block is
    dropped; exactly 60 (the threshold) and 61 minutes are kept."""
    thresholds = Thresholds(min_block_time_share=0.5, max_schedule_deviation_minutes=100_000)
    result = check_leg(leg(**{departure: DEP, arrival: DEP + minutes * MINUTE}), thresholds,
                       now=NOW)

    assert dropped_fields(result) == ({arrival: BLOCK_TIME_TOO_SHORT} if rejected else {})


def test_block_share_zero_turns_the_rule_off_and_needs_a_schedule() -> None:
    """min_block_time_share 0 keeps a one-minute flight; without a scheduled block there is
    nothing to compare with, and the short block is kept as well."""
    short = {"actual_departure": DEP, "actual_arrival": DEP + MINUTE}
    assert dropped_fields(check_leg(leg(**short), LOOSE, now=NOW)) == {}
    assert dropped_fields(check_leg(Leg(origin="FRA", **short), Thresholds(), now=NOW)) == {}
    assert dropped_fields(check_leg(leg(**short), Thresholds(), now=NOW)) == {
        "actual_arrival": BLOCK_TIME_TOO_SHORT}


# --- an actual time in the future ------------------------------------------------------------

@pytest.mark.parametrize("name", ["actual_departure", "actual_arrival"])
@pytest.mark.parametrize(("minutes", "rejected"), [(4, False), (5, False), (6, True)])
def test_actual_time_beyond_the_clock_skew_is_dropped(name: str, minutes: int,
                                                      rejected: bool) -> None:
    """With future_allowance_minutes 5, an actual time 6 minutes after now is dropped; 4 and
    exactly 5 minutes after are kept."""
    now = DEP + timedelta(minutes=200)
    when = now + minutes * MINUTE
    result = check_leg(Leg(origin="FRA", **{name: when}), LOOSE, now=now)

    assert dropped_fields(result) == ({name: ACTUAL_TIME_IN_FUTURE} if rejected else {})


def test_estimated_times_may_lie_in_the_future() -> None:
    """Estimates are about the future: only actual times are held to the clock."""
    result = check_leg(leg(estimated_departure=DEP, estimated_arrival=ARR), Thresholds(),
                       now=DEP - timedelta(days=1))
    assert dropped_fields(result) == {}


# --- times more than a day from the schedule -------------------------------------------------

@pytest.mark.parametrize(("name", "scheduled"), [
    ("estimated_departure", DEP), ("actual_departure", DEP),
    ("estimated_arrival", ARR), ("actual_arrival", ARR),
])
@pytest.mark.parametrize(("minutes", "rejected"), [
    (1439, False), (1440, False), (1441, True), (-1439, False), (-1440, False), (-1441, True),
])
def test_time_more_than_a_day_from_its_schedule_is_dropped(
        name: str, scheduled: datetime, minutes: int, rejected: bool) -> None:
    """With max_schedule_deviation_minutes 1440, an estimated or actual time 1441 minutes
    before or after its scheduled counterpart is dropped; 1439 and exactly 1440 are kept."""
    thresholds = Thresholds(max_schedule_deviation_minutes=1440, min_block_time_share=0)
    values = {name: scheduled + minutes * MINUTE}
    # Its partner sits on the schedule, and is moved out of the way of the order rule.
    if minutes < 0 and name.endswith("arrival"):
        values[name.replace("arrival", "departure")] = values[name] - 60 * MINUTE
    if minutes > 0 and name.endswith("departure"):
        values[name.replace("departure", "arrival")] = values[name] + 60 * MINUTE
    result = check_leg(Leg(origin="FRA", scheduled_departure=DEP, scheduled_arrival=ARR,
                           **values), thresholds, now=DEP + timedelta(days=5))

    assert dropped_fields(result) == ({name: FAR_FROM_SCHEDULE} if rejected else {})


def test_the_day_limit_comes_from_the_thresholds() -> None:
    """A smaller max_schedule_deviation_minutes moves the boundary with it."""
    thresholds = Thresholds(max_schedule_deviation_minutes=180)
    late = leg(actual_departure=DEP + 181 * MINUTE)
    assert dropped_fields(check_leg(late, thresholds, now=NOW)) == {
        "actual_departure": FAR_FROM_SCHEDULE}
    assert dropped_fields(check_leg(late, Thresholds(), now=NOW)) == {}


# --- landed or arrived without the times to back it ------------------------------------------

@pytest.mark.parametrize("status", [FlightStatus.LANDED, FlightStatus.ARRIVED])
def test_landed_without_an_actual_arrival_drops_the_status(status: FlightStatus) -> None:
    """landed/arrived with no actual arrival time is dropped; with one it is kept."""
    bare = check_leg(leg(status=status, actual_departure=DEP), Thresholds(), now=NOW)
    backed = check_leg(leg(status=status, actual_departure=DEP, actual_arrival=ARR),
                       Thresholds(), now=NOW)

    assert dropped_fields(bare) == {"status": STATUS_WITHOUT_ARRIVAL}
    assert bare[0].status is None and bare[0].actual_departure == DEP
    assert dropped_fields(backed) == {} and backed[0].status is status


def test_landed_minutes_after_take_off_loses_the_landing_and_the_status() -> None:
    """The field failure the rules exist for: "landed" ten minutes after take-off on a
    two-hour flight. The actual arrival goes (block time), so the status has nothing to back
    it and goes too; the departure and the schedule stay."""
    result = check_leg(leg(status=FlightStatus.LANDED, actual_departure=DEP,
                           actual_arrival=DEP + 10 * MINUTE), Thresholds(), now=NOW)

    assert dropped_fields(result) == {"actual_arrival": BLOCK_TIME_TOO_SHORT,
                                      "status": STATUS_WITHOUT_ARRIVAL}
    assert result[0] == leg(actual_departure=DEP)


@pytest.mark.parametrize("status", [FlightStatus.DEPARTED, FlightStatus.AIRBORNE,
                                    FlightStatus.SCHEDULED, FlightStatus.CANCELLED])
def test_other_statuses_need_no_arrival(status: FlightStatus) -> None:
    """Only landed and arrived claim an arrival; other statuses are kept without times."""
    assert dropped_fields(check_leg(leg(status=status), Thresholds(), now=NOW)) == {}


# --- check(): the observation and its rejections ---------------------------------------------

def observation(*legs: Leg) -> Observation:
    return Observation(provider="flightaware", query=QUERY, legs=legs, fetched_at=NOW)


def test_check_returns_the_cleaned_observation_and_names_each_rejection() -> None:
    """Each rejection names provider, flight, leg, field, value and reason; only the bad values
    leave the observation, the rest of the answer (other fields, other legs) is untouched."""
    landing = DEP - 5 * MINUTE
    first = leg(status=FlightStatus.ARRIVED, actual_departure=DEP, actual_arrival=landing,
                departure_gate="A1")
    second = Leg(origin="JFK", destination="BOS", actual_departure=NOW + timedelta(hours=1))
    cleaned, rejections = check(observation(first, second), Thresholds(), now=NOW)

    assert [(r.provider, r.flight, r.origin, r.field, r.value, r.reason) for r in rejections] == [
        ("flightaware", "LH400/2026-02-25", "FRA", "actual_arrival", landing,
         ARRIVAL_NOT_AFTER_DEPARTURE),
        ("flightaware", "LH400/2026-02-25", "FRA", "status", FlightStatus.ARRIVED,
         STATUS_WITHOUT_ARRIVAL),
        ("flightaware", "LH400/2026-02-25", "JFK", "actual_departure", NOW + timedelta(hours=1),
         ACTUAL_TIME_IN_FUTURE),
    ]
    assert "2026-02-25T07:55:00Z" in rejections[0].detail
    assert cleaned.legs == (leg(actual_departure=DEP, departure_gate="A1"),
                            Leg(origin="JFK", destination="BOS"))
    assert cleaned.rejections == rejections
    assert (cleaned.provider, cleaned.query, cleaned.fetched_at) == ("flightaware", QUERY, NOW)


def test_a_plausible_observation_comes_back_as_it_was() -> None:
    """Nothing to drop: the same object, no rejections."""
    plausible = observation(leg(status=FlightStatus.ARRIVED, actual_departure=DEP + 10 * MINUTE,
                                actual_arrival=ARR + 5 * MINUTE))
    cleaned, rejections = check(plausible, Thresholds(), now=NOW)
    assert cleaned is plausible and rejections == ()


def test_checking_again_finds_nothing_new() -> None:
    """A cleaned observation passes the checks: its earlier rejections stay, none are added
    (an observation read back from the cache is not rejected twice)."""
    bad = observation(leg(actual_departure=DEP, actual_arrival=DEP))
    cleaned, first = check(bad, Thresholds(), now=NOW)
    again, second = check(cleaned, Thresholds(), now=NOW)
    assert len(first) == 1 and second == () and again.rejections == first


def test_rejection_is_a_plain_value() -> None:
    """Rejections compare by value (they travel through the cache and tests compare them)."""
    one = Rejection("a", "LH400/2026-02-25", "FRA", "status", FlightStatus.LANDED, "r", "d")
    assert one == Rejection("a", "LH400/2026-02-25", "FRA", "status", FlightStatus.LANDED,
                            "r", "d")


# --- the policy file's plausibility section --------------------------------------------------

def test_shipped_policy_holds_the_default_thresholds() -> None:
    """config/policy.yaml spells out the built-in thresholds."""
    shipped = load_policy(REPO / "config" / "policy.yaml")
    assert shipped.plausibility == DEFAULT_POLICY.plausibility == Thresholds()
    assert Thresholds() == Thresholds(future_allowance_minutes=5,
                                      max_schedule_deviation_minutes=1440,
                                      min_block_time_share=0.5)


def test_plausibility_keys_left_out_keep_their_default(tmp_path: Path) -> None:
    """A section naming one threshold changes that one; an empty section is the default."""
    path = tmp_path / "policy.yaml"
    path.write_text("plausibility:\n  min_block_time_share: 0.25\n")
    assert load_policy(path).plausibility == Thresholds(min_block_time_share=0.25)
    path.write_text("plausibility:\n")
    assert load_policy(path).plausibility == Thresholds()


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    ("plausibility:\n  slack: 3\n", 2, "plausibility.slack", "unknown key"),
    ("plausibility:\n  slack: [3]\n", 2, "plausibility.slack", "unknown key"),
    ("plausibility:\n  min_block_time_share: 1.5\n", 2, "plausibility.min_block_time_share",
     "from 0 to 1"),
    ("plausibility:\n  future_allowance_minutes: -1\n", 2,
     "plausibility.future_allowance_minutes", "from 0 to 525600"),
    ("plausibility:\n  max_schedule_deviation_minutes: .inf\n", 2,
     "plausibility.max_schedule_deviation_minutes", "got inf"),
    ("plausibility:\n  future_allowance_minutes: soon\n", 2,
     "plausibility.future_allowance_minutes", "expected a number"),
    ("plausibility:\n  future_allowance_minutes: true\n", 2,
     "plausibility.future_allowance_minutes", "expected a number"),
    ("plausibility:\n  future_allowance_minutes: [5]\n", 2,
     "plausibility.future_allowance_minutes", "expected a single value"),
    ("mode: automatic\nplausibility: 5\n", 2, "plausibility", "expected a mapping"),
    ("plausibility:\n  min_block_time_share: 0.5\n  min_block_time_share: 0.6\n", 3,
     "plausibility.min_block_time_share", "duplicate key"),
])
def test_invalid_plausibility_section_names_file_key_and_line(
        tmp_path: Path, text: str, line: int, key: str, words: str) -> None:
    """Unknown keys and bad values in the section are refused like the rest of the policy
    file: one line naming file, line and key, exit code 2."""
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = caught.value.message
    assert "\n" not in message
    assert f"{path}:{line}:" in message and f"key {key!r}" in message and words in message
    assert caught.value.exit_code == 2


def test_thresholds_built_in_code_are_validated_too() -> None:
    """A Policy constructed directly refuses bad thresholds as the loader does."""
    with pytest.raises(ConfigError, match=r"plausibility\.min_block_time_share"):
        Policy(plausibility=Thresholds(min_block_time_share=2))


# --- learned trust and the cache ---------------------------------------------------------------

def test_a_rejected_claim_counts_as_the_sources_mistake() -> None:
    """In the trust estimate a REJECTED claim takes no part in the vote but counts among the
    source's claims on the field, so its accuracy there falls below what it would be without
    the mistake; a source with only a rejected claim on a field scores below the prior."""
    from flightsync.policy.accuracy import (  # noqa: PLC0415 - numpy
        DEFAULT_PRIOR,
        REJECTED,
        estimate_trust_by_field,
    )

    agreeing = [(leg_id, "status", source, "landed") for leg_id in range(3)
                for source in ("a", "b", "c")]
    plain = estimate_trust_by_field(agreeing, tolerance_minutes=3)
    wrong = [*agreeing[:-1], (2, "status", "c", REJECTED), (0, "actual_arrival", "c", REJECTED)]
    marked = estimate_trust_by_field(wrong, tolerance_minutes=3)

    assert marked.trust["c"]["status"] < plain.trust["c"]["status"]
    assert marked.trust["a"]["status"] == pytest.approx(plain.trust["a"]["status"], abs=0.02)
    assert marked.coverage["c"] == {"status": 3, "actual_arrival": 1}
    assert marked.trust["c"]["actual_arrival"] < DEFAULT_PRIOR
    assert marked.truths[(2, "status")] == "landed"


def test_stored_rejections_become_rejected_claims_and_nothing_else() -> None:
    """``claims_of`` reads the reserved key of a stored observation as one known-false claim
    per dropped field, and never as a field of its own."""
    from flightsync.engine._sources import claims_of  # noqa: PLC0415
    from flightsync.policy.accuracy import REJECTED  # noqa: PLC0415
    from flightsync.store import repository as repo  # noqa: PLC0415

    values = {"status": "departed", repo.REJECTED_KEY: [
        {"field": "actual_arrival", "value": "2026-02-25T08:15:00Z",
         "reason": BLOCK_TIME_TOO_SHORT, "detail": ""},
        {"field": "not_a_field", "value": 1, "reason": "x", "detail": ""}]}
    claims = list(claims_of([(7, "flightaware", values)]))

    assert [(c.item, c.field, c.source, c.value) for c in claims] == [
        (7, "status", "flightaware", "departed"), (7, "actual_arrival", "flightaware", REJECTED)]


def test_the_cache_keeps_an_observations_rejections() -> None:
    """An observation read back from the cache carries the rejections it was stored with."""
    from flightsync.resilience._codec import pack, unpack  # noqa: PLC0415

    cleaned, rejections = check(observation(leg(status=FlightStatus.LANDED)), now=NOW)
    assert rejections
    assert unpack(pack(cleaned)) == cleaned
