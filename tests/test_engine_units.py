"""Unit tests of the engine's pure parts: batch input parsing (engine/_input.py), leg alignment
and merging (engine/_merge.py), and run results (engine/_results.py)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from flightsync.engine import BatchResult, _results, read_batch
from flightsync.engine._input import MAX_LINE
from flightsync.engine._merge import align_legs, merge
from flightsync.engine._results import failed_result, sync_status_of
from flightsync.errors import InputError
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
from flightsync.policy import Policy
from flightsync.store.repository import StoredLeg

DAY = date(2026, 2, 25)
QUERY = FlightQuery(carrier="KL", number=419, departure_date=DAY)
T0 = datetime(2026, 2, 25, 8, 0, tzinfo=UTC)


def read(text: str | bytes, *, strict: bool = False, limit: int = 1000) -> Any:
    data = text.encode() if isinstance(text, str) else text
    return read_batch(data, name="in.csv", strict=strict, limit=limit)


# --- read_batch ------------------------------------------------------------------------------

def test_csv_lines_become_queries_in_order() -> None:
    """A CSV with header flight,date yields one normalized query per line, in file order."""
    parsed = read("flight,date\nLH001,2026-02-25\nlh 2,2026-02-26\nLH400A,2026-02-25\n")

    assert [q.key for q in parsed.queries] == ["LH1/2026-02-25", "LH2/2026-02-26",
                                               "LH400A/2026-02-25"]
    assert parsed.rejected == () and parsed.duplicates == 0


def test_csv_header_case_bom_crlf_and_blank_lines_are_accepted() -> None:
    """A BOM, CRLF line ends, a capitalized header and blank lines do not matter, and line
    numbers still count every physical line."""
    parsed = read(b"\xef\xbb\xbfFlight,Date\r\nLH400,2026-02-25\r\n\r\nLH,2026-02-25\r\n")

    assert [q.designator for q in parsed.queries] == ["LH400"]
    assert [r["line"] for r in parsed.rejected] == [4]


def test_bad_csv_lines_are_collected_with_line_numbers() -> None:
    """Bad designators, dates and field counts are rejected with their line number and code;
    the good lines still parse."""
    parsed = read("flight,date\nLH400,2026-02-25\nL-H1,2026-02-25\nLH402,tomorrow\n"
                  "LH404\nLH406,2026-02-25\n")

    assert [q.designator for q in parsed.queries] == ["LH400", "LH406"]
    rejected = {r["line"]: r for r in parsed.rejected}
    assert sorted(rejected) == [3, 4, 5]
    assert rejected[3]["error"]["code"] == "invalid_flight"
    assert rejected[4]["error"]["code"] == "invalid_date"
    assert rejected[5]["error"]["code"] == "invalid_line"
    for number, row in rejected.items():
        assert row["error"]["message"].startswith(f"line {number}:")


def test_json_lines_with_bad_lines() -> None:
    """JSON Lines: invalid JSON, unknown keys and non-string values are rejected by line."""
    lines = [json.dumps({"flight": "AF1000", "date": "2026-02-25"}), "{not json",
             json.dumps({"flight": "AF1002", "date": "2026-02-25", "extra": 1}),
             json.dumps({"flight": 1002, "date": "2026-02-25"}),
             json.dumps({"flight": "AF1004", "date": "2026-02-30"})]
    parsed = read("\n".join(lines) + "\n")

    assert [q.designator for q in parsed.queries] == ["AF1000"]
    codes = {r["line"]: r["error"]["code"] for r in parsed.rejected}
    assert codes == {2: "invalid_json", 3: "invalid_line", 4: "invalid_line",
                     5: "invalid_date"}


def test_json_lines_problems_are_named_with_what_is_known() -> None:
    """Each bad JSON line says what is wrong with it (missing key, unknown key, wrong type,
    not an object) and keeps the flight and date it did give; a CSV line with a field too
    many keeps its flight and date apart."""
    lines = [json.dumps({"flight": "AF1"}),
             json.dumps({"flight": "AF2", "date": "2026-02-25", "gate": "A1"}),
             json.dumps({"flight": 3, "date": "2026-02-25"}),
             json.dumps([1, 2])]
    rejected = read("\n".join(lines) + "\n").rejected
    messages = [r["error"]["message"] for r in rejected]

    assert "missing 'date'" in messages[0] and rejected[0]["flight"] == "AF1"
    assert "unknown key(s) 'gate'" in messages[1]
    assert (rejected[1]["flight"], rejected[1]["date"]) == ("AF2", "2026-02-25")
    assert "'flight' must be a string, got int" in messages[2]
    assert rejected[2]["date"] == "2026-02-25"
    assert "got a JSON list" in messages[3]
    [extra] = read("flight,date\nUA1,2026-11-26,extra\n").rejected
    assert (extra["flight"], extra["date"]) == ("UA1", "2026-11-26")
    assert "expected 2 fields (flight,date), got 3" in extra["error"]["message"]


def test_overlong_lines_are_refused_not_parsed() -> None:
    """A line longer than MAX_LINE is rejected as line_too_long, in CSV and JSON Lines."""
    long_csv = read(f"flight,date\nLH400,2026-02-25\n{'L' * (MAX_LINE + 1)},2026-02-25\n")
    long_json = read('{"flight": "LH400", "date": "2026-02-25"}\n'
                     + json.dumps({"flight": "L" * MAX_LINE, "date": "2026-02-25"}) + "\n")

    for parsed in (long_csv, long_json):
        assert [q.designator for q in parsed.queries] == ["LH400"]
        [row] = parsed.rejected
        assert (row["line"], row["error"]["code"]) == (2 if parsed is long_json else 3,
                                                       "line_too_long")
        assert len(row["flight"]) <= 40


def test_strict_refuses_everything_on_one_bad_line() -> None:
    """strict=True turns any bad line into an InputError naming the count and first line."""
    with pytest.raises(InputError) as caught:
        read("flight,date\nLH400,2026-02-25\nXX,2026-02-25\nYY,2026-02-25\n", strict=True)

    assert caught.value.code == "invalid_batch_line"
    assert caught.value.exit_code == 2
    assert "2 bad line(s)" in caught.value.message and "line 3" in caught.value.message


@pytest.mark.parametrize(("data", "needle"), [
    (b"flight,date\nLH400\x00,2026-02-25\n", "binary"),
    (b"flight,date\n\xff\xfe\n", "UTF-8"),
    (b"", "empty"),
    (b"\n  \n", "empty"),
    (b"LH400,2026-02-25\n", "header"),
    (b"date,flight\n2026-02-25,LH400\n", "header"),
])
def test_unreadable_input_raises(data: bytes, needle: str) -> None:
    """Binary, non-UTF-8, empty or headerless input is an InputError (exit 2) naming it."""
    with pytest.raises(InputError) as caught:
        read(data)

    assert caught.value.code == "invalid_batch_file"
    assert caught.value.exit_code == 2
    assert needle in caught.value.message and "in.csv" in caught.value.message


def test_duplicates_are_kept_once_and_counted() -> None:
    """Spellings of one flight on one date collapse to the first; the rest are counted."""
    parsed = read("flight,date\nLH400,2026-02-25\nLH0400,2026-02-25\nlh 400,2026-02-25\n"
                  "LH400,2026-02-26\n")

    assert [q.key for q in parsed.queries] == ["LH400/2026-02-25", "LH400/2026-02-26"]
    assert parsed.duplicates == 2


def test_limit_counts_distinct_flights() -> None:
    """More distinct flights than the limit raises batch_too_large; duplicates do not count."""
    text = "flight,date\nLH400,2026-02-25\nLH400,2026-02-25\nLH402,2026-02-25\n"

    assert len(read(text, limit=2).queries) == 2
    with pytest.raises(InputError) as caught:
        read(text, limit=1)
    assert caught.value.code == "batch_too_large" and "--limit" in caught.value.message


# --- align_legs and merge ------------------------------------------------------------------

def leg(origin: str, destination: str, hours: float | None, **fields: Any) -> Leg:
    departure = None if hours is None else T0 + timedelta(hours=hours)
    return Leg(origin=origin, destination=destination, scheduled_departure=departure, **fields)


def observation(provider: str, *legs: Leg, updated: datetime | None = None) -> Observation:
    return Observation(provider=provider, query=QUERY, legs=tuple(legs), fetched_at=T0,
                       updated_at=updated, raw=f"{provider}-payload")


def stored(origin: str, leg_index: int, **values: Any) -> StoredLeg:
    record = FlightRecord(carrier="KL", flight_number=419, suffix="", departure_date=DAY,
                          leg_index=leg_index, origin=origin, version=3)
    return StoredLeg(id=leg_index + 1, leg_index=leg_index, origin=origin, values=values,
                     version=3, open_conflicts=frozenset(), record=record)


def test_align_groups_by_origin_in_flying_order() -> None:
    """Legs from providers listing them in different orders line up by origin, earliest
    scheduled departure first."""
    a = observation("airfrance_klm", leg("RUH", "DXB", 8), leg("AMS", "RUH", 0),
                    leg("DXB", "AMS", 12))
    b = observation("flightaware", leg("DXB", "AMS", 12), leg("AMS", "RUH", 0))

    aligned = align_legs([a, b])

    assert [origin for origin, _ in aligned] == ["AMS", "RUH", "DXB"]
    assert set(aligned[0][1]) == {"airfrance_klm", "flightaware"}
    assert set(aligned[1][1]) == {"airfrance_klm"}
    assert aligned[2][1]["flightaware"].destination == "AMS"


def test_align_keeps_listing_order_without_times() -> None:
    """Legs with no scheduled departure follow the timed ones, in the order listed."""
    a = observation("amadeus", leg("CCC", "AAA", None), leg("BBB", "CCC", None),
                    leg("AAA", "BBB", 1))

    assert [origin for origin, _ in align_legs([a])] == ["AAA", "CCC", "BBB"]


def test_merge_resolves_each_leg_and_keeps_unreported_fields() -> None:
    """Merge: agreed values are taken, a disagreement goes by the policy's rule (with the leg
    index), and a field no provider reported keeps its stored value."""
    policy = Policy(mode="priority", priority=("airfrance_klm", "flightaware"),
                    operating_carrier_first=False)
    a = observation("airfrance_klm", leg("AMS", "RUH", 0, departure_gate="D1"),
                    leg("RUH", "DXB", 8, departure_gate="B2"))
    b = observation("flightaware", leg("AMS", "RUH", 0, departure_gate="D1"),
                    leg("RUH", "DXB", 8, departure_gate="C9", baggage_belt="7"))
    old = [stored("AMS", 0, departure_gate="D0", aircraft_type="744"),
           stored("RUH", 1, departure_gate="B2")]

    merged = merge(policy, [a, b], old, ranks={}, operating_carrier_source=None, trust=None)

    first, second = merged.legs
    assert (first.leg_index, first.origin, second.leg_index, second.origin) == (
        0, "AMS", 1, "RUH")
    assert first.values["departure_gate"] == "D1"
    assert first.decisions["departure_gate"] == ("airfrance_klm", "agree")
    assert first.values["aircraft_type"] == "744"  # nobody reported it: the stored value
    assert "aircraft_type" not in first.decisions
    assert second.values["departure_gate"] == "B2"
    assert second.decisions["departure_gate"] == ("airfrance_klm", "priority")
    assert second.values["baggage_belt"] == "7"
    [conflict] = merged.conflicts
    assert (conflict.field, conflict.leg_index, conflict.rule) == ("departure_gate", 1,
                                                                   "priority")
    assert conflict.values == {"airfrance_klm": "B2", "flightaware": "C9"}
    assert second.conflicts == [conflict]
    assert set(second.observations) == {"airfrance_klm", "flightaware"}
    values, updated, raw = second.observations["flightaware"]
    assert values["departure_gate"] == "C9" and updated == T0 and raw == "flightaware-payload"
    assert merged.source_of_truth == "airfrance_klm"


def test_merge_most_recent_uses_each_providers_update_time() -> None:
    """most_recent picks the provider updated last (its own time, else the fetch time)."""
    policy = Policy(mode="automatic", fields={"departure_gate": "most_recent"})
    early = observation("lufthansa", leg("FRA", "JFK", 0, departure_gate="A1"),
                        updated=T0 - timedelta(minutes=30))
    late = observation("flightaware", leg("FRA", "JFK", 0, departure_gate="Z9"),
                       updated=T0 - timedelta(minutes=5))

    merged = merge(policy, [early, late], [], ranks={}, operating_carrier_source=None,
                   trust=None)

    assert merged.legs[0].values["departure_gate"] == "Z9"
    assert merged.legs[0].decisions["departure_gate"] == ("flightaware", "most_recent")


# --- results -------------------------------------------------------------------------------

def outcome(name: str, ok: bool = True, error: str | None = None) -> SourceOutcome:
    return SourceOutcome(name=name, ok=ok, ms=1, error=error)


def conflict(escalated: bool) -> FieldConflict:
    return FieldConflict("status", {"a": "scheduled", "b": "cancelled"}, "cancelled",
                         "most_severe", 0, escalated)


def test_sync_status_conflict_beats_partial_beats_synced() -> None:
    """An escalated conflict makes `conflict`, a failed provider `partial`; a provider that
    does not know the flight and an unescalated disagreement leave it `synced`."""
    ok, down = outcome("a"), outcome("b", ok=False, error="provider_unavailable")
    unknown = outcome("c", ok=False, error="flight_not_found")

    assert sync_status_of([ok, down], [conflict(True)]) is SyncStatus.CONFLICT
    assert sync_status_of([ok, down], [conflict(False)]) is SyncStatus.PARTIAL
    assert sync_status_of([ok, unknown], [conflict(False)]) is SyncStatus.SYNCED
    assert sync_status_of([ok], []) is SyncStatus.SYNCED


def test_failed_result_carries_the_error() -> None:
    """failed_result: not a success, status failed, no legs, the error's code unless given."""
    error = InputError("bad thing", code="invalid_source")
    plain = failed_result(QUERY, [outcome("a", ok=False, error="x")], error)
    coded = failed_result(QUERY, [], error, code="flight_not_found")

    assert (plain.success, plain.sync_status, plain.legs) == (False, SyncStatus.FAILED, ())
    assert plain.error == {"code": "invalid_source", "message": "bad thing"}
    assert coded.error is not None and coded.error["code"] == "flight_not_found"
    assert plain.to_json()["flight"] is None


def success(number: int, *, from_cache: bool = False,
            status: SyncStatus = SyncStatus.SYNCED) -> SyncResult:
    query = FlightQuery(carrier="LH", number=number, departure_date=DAY)
    record = FlightRecord(carrier="LH", flight_number=number, suffix="", departure_date=DAY,
                          leg_index=0, origin="FRA", status=FlightStatus.SCHEDULED, version=1)
    return SyncResult(query=query, success=True, sync_status=status, from_cache=from_cache,
                      legs=(record,), sources=(outcome("lufthansa"),))


def test_batch_result_json_and_exit_code() -> None:
    """BatchResult.to_json follows docs/CONTRACTS.md §3 `batch`: successes, failures (rejected
    input lines included) and a summary; exit 1 when anything failed or was rejected."""
    failure = failed_result(FlightQuery(carrier="LH", number=9, departure_date=DAY), [],
                            InputError("nobody knows", code="flight_not_found"))
    results = [success(1), success(2, from_cache=True), success(3, status=SyncStatus.CONFLICT),
               failure]
    started = datetime.now(UTC)
    batch = BatchResult.of("run1", results, started)
    rejected = [{"line": 4, "flight": "XX", "date": "", "error": {
        "code": "invalid_flight", "message": "line 4: bad"}}]

    data = batch.to_json()
    assert data["run_id"] == "run1" and data["requested"] == 4
    assert len(data["successful"]) == 3
    assert data["failed"] == [{"flight": "LH9", "date": "2026-02-25", "error": {
        "code": "flight_not_found", "message": "nobody knows"}}]
    summary = data["summary"]
    assert (summary["synced"], summary["from_cache"], summary["failed"],
            summary["conflicts"]) == (2, 1, 1, 1)
    assert summary["elapsed_ms"] >= 0
    assert batch.exit_code == 1

    clean = BatchResult.of("run2", results[:3], started)
    assert clean.exit_code == 0
    with_bad_lines = clean.with_rejected(rejected)
    assert with_bad_lines.exit_code == 1
    bad = with_bad_lines.to_json()
    assert bad["requested"] == 4 and bad["failed"] == rejected
    assert bad["summary"]["failed"] == 1


@pytest.mark.parametrize("indent", [None, 2])
def test_batch_result_written_a_flight_at_a_time_is_the_same_document(
        indent: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """BatchResult.write_json writes exactly what json.dumps of to_json() would (one line
    for a pipe, indented for a terminal), also once the results have gone from memory to
    the temporary file; the results keep their order."""
    monkeypatch.setattr(_results, "SPOOL_BYTES", 64)  # to the file after the first result
    failure = failed_result(FlightQuery(carrier="LH", number=9, departure_date=DAY), [],
                            InputError("nobody \u00e9 knows", code="flight_not_found"))
    results = [success(1), success(2, from_cache=True), failure,
               success(3, status=SyncStatus.CONFLICT)]
    rejected = [{"line": 4, "flight": "XX", "date": "", "error": {
        "code": "invalid_flight", "message": "line 4: bad"}}]
    for batch in (BatchResult.of("run1", results, datetime.now(UTC)),
                  BatchResult.of("run2", [], datetime.now(UTC), rejected),
                  BatchResult.of("run3", results, datetime.now(UTC), rejected,
                                 interrupted=True)):
        out = io.StringIO()
        batch.write_json(out, indent=indent)
        assert out.getvalue() == json.dumps(batch.to_json(), indent=indent,
                                            ensure_ascii=False, default=str)
    document = json.loads(out.getvalue())
    assert [r["flight"]["flight_number"] for r in document["successful"]] == [1, 2, 3]
    assert [f["flight"] for f in document["failed"]] == ["LH9", "XX"]
    assert document["summary"]["synced"] == 2 and document["summary"]["failed"] == 2
