"""The fusion benchmark's loader (dataset-specific parsing) and scoring on a tiny synthetic day."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from benchmarks.fusion.__main__ import evaluate, main
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
    ("Not provided by airline", None), ("", None), ("C-44", "C44"), ("TBA", None),
    ("HOLD", None), ("-4-", "4"),
])
def test_gate_normalization(raw: str, gate: str | None) -> None:
    """Gates lose spaces, case, ``?``, ``/T4`` suffixes and terminal prefixes; a terminal
    alone or a placeholder is no gate."""
    assert normalize_gate(raw) == gate


def _write(path: Path, rows: list[list[str]]) -> None:
    with gzip.open(path, "wt", encoding="latin-1") as handle:
        handle.writelines("\t".join(row) + "\n" for row in rows)


def _day_files(directory: Path, stem: str, data: list[list[str]],
               truth: list[list[str]]) -> None:
    _write(directory / f"{stem}-data.txt.gz", data)
    _write(directory / f"{stem}-truth.txt.gz", truth)


FLIGHT, OTHER = "AA-1-DFW-ORD", "UA-2-SFO-DEN"
DATA = [
    ["aa", FLIGHT, "12/01/2011 01:55 PM", "", "C20", "", "", ""],
    ["s1", FLIGHT, "2011-12-01 01:55 PM", "", " c20 ", "", "", ""],
    ["s2", FLIGHT, "1:56pDec 1", "", "Terminal C - C21", "", "", ""],
    ["s3", FLIGHT, "1:56pDec 1", "", "C21", "", "", ""],
    # s1 lists the flight again for another day: the row dated on the file's day wins.
    ["s1", FLIGHT, "2011-12-02 09:00 AM", "", "B1", "", "", ""],
    ["aa", OTHER, "", "", "", "12/01/2011 03:00 PM", "", "C-44"],
    ["s1", OTHER, "", "", "", "2011-12-01 03:00 PM", "", "C44"],
]
TRUTH = [
    [FLIGHT, "12/01/2011 01:55 PM", "", "C20", "", "", ""],
    [FLIGHT, "12/01/2011 01:55 PM", "", "C22", "", "", ""],   # disagrees on the gate
    [OTHER, "", "", "", "12/01/2011 03:00 PM", "", "C-44"],
]


def test_synthetic_day_loads_as_documented(tmp_path: Path) -> None:
    """A two-flight day written here: duplicates resolve as documented, the truth's
    disagreeing rows drop that attribute and are counted, and gate spellings are one."""
    _day_files(tmp_path, "2011-12-01", DATA, TRUTH)
    day = load_day(tmp_path, DAY)
    assert day.duplicate_rows == 1 and day.truth_conflicts == 1
    assert (day.truth_rows, day.truth_repeated_rows) == (3, 1)
    assert day.truth_conflicts_by_attribute == {"departure_gate": 1}
    assert day.observed[FLIGHT]["s1"]["departure_gate"] == "C20"
    assert day.observed[FLIGHT]["s1"]["scheduled_departure"].hour == 13
    assert str(day.observed[FLIGHT]["s1"]["scheduled_departure"].tzinfo) == "America/Chicago"
    assert "departure_gate" not in day.truth[FLIGHT]
    assert day.truth[OTHER]["arrival_gate"] == day.observed[OTHER]["s1"]["arrival_gate"]


def test_placeholder_gold_gates_are_no_value_like_a_sources(tmp_path: Path) -> None:
    """A gold gate ``TBA`` or ``HOLD`` is read as no gate, exactly as a source's ``TBA`` is,
    so it is not scored; the loader counts how many it left out."""
    data = [["aa", FLIGHT, "", "", "TBA", "", "", "HOLD"], ["s1", FLIGHT, "", "", "D5", "", "", ""]]
    truth = [[FLIGHT, "", "", "TBA", "", "", "HOLD"]]
    _day_files(tmp_path, "2011-12-01", data, truth)
    day = load_day(tmp_path, DAY)
    assert day.truth[FLIGHT] == {}
    assert day.truth_placeholders == 2
    assert "departure_gate" not in day.observed[FLIGHT]["aa"]


def test_two_days_score_leave_days_out_and_in_sample(tmp_path: Path) -> None:
    """With two days each day is scored with the trust learned on the other (the headline)
    and with its own (the second column); every rule counts the same gold items."""
    _day_files(tmp_path, "2011-12-01", DATA, TRUTH)
    second = [[cell.replace("12/01/2011", "12/02/2011").replace("2011-12-01", "2011-12-02")
               .replace("Dec 1", "Dec 2") for cell in row] for row in DATA]
    second_truth = [[cell.replace("12/01/2011", "12/02/2011") for cell in row]
                    for row in TRUTH]
    _day_files(tmp_path, "2011-12-02", second, second_truth)
    result = evaluate(tmp_path, 0)
    assert result["folds"] == 2
    assert result["truth_conflicts_left_out"] == 2
    for column in ("leave_days_out", "in_sample"):
        everyone = result["all_sources"][column]
        # aa is first in the priority order: every scored item right (3 a day).
        assert everyone["priority"]["overall"] == {"items": 6, "exact": 1.0,
                                                   "within_10_min": 1.0}
        # Majority: 13:55 (aa, s1) against 13:56 (s2, s3) is a tie, broken by order (aa first).
        assert everyone["majority"]["scheduled_departure"]["exact"] == 1.0
        assert everyone["accuracy"]["overall"]["items"] == 6
        without = result["without_aa_ua_co"][column]
        assert without["majority"]["overall"]["items"] == 6
    assert set(result["all_sources"]["leave_days_out_accuracy_per_day"]) == {
        "2011-12-01", "2011-12-02"}


def test_one_day_is_refused_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        ) -> None:
    """Leave-days-out needs two days: one day is bad input, one line, exit 2."""
    _day_files(tmp_path, "2011-12-01", DATA, TRUTH)
    assert main(["--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
