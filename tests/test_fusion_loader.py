"""The fusion benchmark's loader (dataset-specific parsing) and scoring on a tiny synthetic day."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from benchmarks.fusion.__main__ import evaluate
from benchmarks.fusion._load import load_day
from benchmarks.fusion._parse import normalize_gate, parse_time

DAY = date(2011, 12, 1)


@pytest.mark.parametrize(("raw", "clock"), [
    ("12/01/2011 01:55 PM", "13:55"),
    ("1:55pDec 1", "13:55"),
    ("Dec 01 - 1:55pm", "13:55"),
    ("2:07 PMDec 01", "14:07"),
    ("12/1/11 2:06 PM (-05:00)", "14:06"),
    ("12/1/2011 2:07PM EST", "14:07"),
    ("2011-12-01 12:10PM CST", "12:10"),
    ("2011-12-01 13:52", "13:52"),
    ("2011-12-01 Thu  16:17", "16:17"),
    ("3:00P 12-01-11", "15:00"),
    ("Thu., Dec.01, 2011 1:55 p.m.", "13:55"),
    ("Thu, Dec 1 6:20 PM            Delayed", "18:20"),
    ("December 8, 2011               07:45 PM", "19:45"),
    ("12:10 PM, Dec 01", "12:10"),
    ("Dec 01 - 12:05am", "00:05"),
    ("Dec 01 - 12:00noon", "12:00"),
])
def test_each_time_format_parses_to_the_local_clock_time(raw: str, clock: str) -> None:
    """Every format of the data README gives the airport-local hour and minute written."""
    parsed = parse_time(raw, 2011)
    assert parsed is not None
    _, minutes = parsed
    assert f"{minutes // 60:02d}:{minutes % 60:02d}" == clock


def test_written_dates_are_read() -> None:
    """The date a source writes is kept (it ranks duplicate rows)."""
    assert parse_time("December 8, 2011               07:45 PM", 2011) == (date(2011, 12, 8),
                                                                          19 * 60 + 45)
    assert parse_time("3:00P 12-01-11", 2011) == (date(2011, 12, 1), 15 * 60)
    assert parse_time("2:07 PMDec 01", 2011) == (date(2011, 12, 1), 14 * 60 + 7)


@pytest.mark.parametrize("raw", [
    "-", "--", "Not Available", "Not provided by airline", "Dec 01 - Contact Airline",
    "December 8, 2011", "2011-12-01 Cancelled", "Thu, Dec 1 Cancelled", "",
])
def test_placeholders_are_no_value(raw: str) -> None:
    """Placeholders, dates without a time and cancellations carry no time."""
    assert parse_time(raw, 2011) is None


@pytest.mark.parametrize(("raw", "gate"), [
    (" c20 ", "C20"), ("39?", "39"), ("44J/T4", "44J"), ("Terminal 3 - E2", "E2"),
    ("Term C - C99", "C99"), ("North Term - D1", "D1"), ("Terminal 3", None), ("-", None),
    ("Not provided by airline", None), ("", None),
])
def test_gate_normalization(raw: str, gate: str | None) -> None:
    """Gates lose spaces, case, ``?``, ``/T4`` suffixes and terminal prefixes; a terminal
    alone or a placeholder is no gate."""
    assert normalize_gate(raw) == gate


def _write(path: Path, rows: list[list[str]]) -> None:
    with gzip.open(path, "wt", encoding="latin-1") as handle:
        handle.writelines("\t".join(row) + "\n" for row in rows)


def test_synthetic_day_loads_and_scores(tmp_path: Path) -> None:
    """A two-flight day written here: duplicates resolve as documented, the truth's
    disagreeing rows drop that attribute, and the scores count the right answers."""
    flight, other = "AA-1-DFW-ORD", "UA-2-SFO-DEN"
    data = [
        ["aa", flight, "12/01/2011 01:55 PM", "", "C20", "", "", ""],
        ["s1", flight, "2011-12-01 01:55 PM", "", " c20 ", "", "", ""],
        ["s2", flight, "1:56pDec 1", "", "Terminal C - C21", "", "", ""],
        ["s3", flight, "1:56pDec 1", "", "C21", "", "", ""],
        # s1 lists the flight again for another day: the row dated on the file's day wins.
        ["s1", flight, "2011-12-02 09:00 AM", "", "B1", "", "", ""],
        ["aa", other, "", "", "", "12/01/2011 03:00 PM", "", ""],
        ["s1", other, "", "", "", "2011-12-01 03:00 PM", "", ""],
    ]
    truth = [
        [flight, "12/01/2011 01:55 PM", "", "C20", "", "", ""],
        [flight, "12/01/2011 01:55 PM", "", "C22", "", "", ""],   # disagrees on the gate
        [other, "", "", "", "12/01/2011 03:00 PM", "", ""],
    ]
    _write(tmp_path / "2011-12-01-data.txt.gz", data)
    _write(tmp_path / "2011-12-01-truth.txt.gz", truth)
    day = load_day(tmp_path, DAY)
    assert day.duplicate_rows == 1 and day.truth_conflicts == 1
    assert day.observed[flight]["s1"]["departure_gate"] == "C20"
    assert day.observed[flight]["s1"]["scheduled_departure"].hour == 13
    assert str(day.observed[flight]["s1"]["scheduled_departure"].tzinfo) == "America/Chicago"
    assert "departure_gate" not in day.truth[flight]

    result = evaluate(tmp_path, 0)
    everyone = result["all_sources"]["rules"]
    # aa is first in the priority order: both scored items right.
    assert everyone["priority"]["overall"] == {"items": 2, "exact": 1.0, "within_10_min": 1.0}
    # Majority: 13:55 (aa, s1) against 13:56 (s2, s3) is a tie, broken by order (aa first).
    assert everyone["majority"]["scheduled_departure"]["exact"] == 1.0
    without = result["without_aa_ua_co"]["rules"]
    assert without["majority"]["overall"]["items"] == 2
