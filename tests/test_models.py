"""Domain values: strict designator and date parsing, canonical registrations, JSON rendering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from flightsync.errors import InputError
from flightsync.models import (
    FlightQuery,
    FlightRecord,
    Leg,
    parse_date,
    parse_designator,
    to_json_value,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("LH001", ("LH", 1, "")), ("LH1", ("LH", 1, "")), ("lh 1", ("LH", 1, "")),
    ("LH001A", ("LH", 1, "A")), ("U21", ("U2", 1, "")), ("4Y123", ("4Y", 123, "")),
    ("DLH400", ("LH", 400, "")), ("baw 117", ("BA", 117, "")), ("KLM1001", ("KL", 1001, "")),
    ("UAL123", ("UAL", 123, "")), (" ba 117 ", ("BA", 117, "")),
])
def test_designators_normalize(text: str, expected: tuple[str, int, str]) -> None:
    """The accepted spellings of docs/CONTRACTS.md section 1 normalize to carrier, number, suffix;
    the ICAO codes of the airlines with their own adapters become their IATA codes, other
    ICAO codes stay."""
    assert parse_designator(text) == expected


@pytest.mark.parametrize("text", [
    "", "LH", "12345", "LH12345", "11 2", "L-H1", "LH1AB", "LHAB1", "LH 1 2", "LH0", "LH0000A",
    "\u041b\u04251", "x" * 100,  # Cyrillic letters; an overlong string
])
def test_bad_designators_are_input_errors(text: str) -> None:
    """Anything outside the strict grammar is an InputError with code invalid_flight (exit 2)."""
    with pytest.raises(InputError) as info:
        parse_designator(text)
    assert info.value.code == "invalid_flight"
    assert info.value.exit_code == 2


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "tomorrow", "20260225", "26-2-25"])
def test_bad_dates_are_input_errors(text: str) -> None:
    """Only real YYYY-MM-DD dates pass."""
    with pytest.raises(InputError) as info:
        parse_date(text)
    assert info.value.code == "invalid_date"


@pytest.mark.parametrize("text", ["0001-01-01", "1969-12-31", "2100-01-01", "9999-12-31"])
def test_dates_no_flight_can_have_are_input_errors(text: str) -> None:
    """Years below 1970 or after 2099 are refused with the accepted range in the message,
    whether they come as text or as a date (a webhook payload's)."""
    with pytest.raises(InputError, match="from 1970-01-01 to 2099-12-31") as info:
        parse_date(text)
    assert info.value.code == "invalid_date"
    with pytest.raises(InputError, match="invalid date"):
        FlightQuery.parse("LH400", date.fromisoformat(text))
    assert parse_date("1970-01-01") == date(1970, 1, 1)
    assert FlightQuery.parse("LH400", date(2099, 12, 31)).departure_date == date(2099, 12, 31)


def test_json_times_keep_four_digit_years() -> None:
    """A provider's placeholder year still renders as ISO text that parses back."""
    early = datetime(1, 1, 1, 11, 51, 32, tzinfo=UTC)
    assert to_json_value(early) == "0001-01-01T11:51:32Z"
    assert datetime.fromisoformat(to_json_value(early)) == early


def test_query_key_and_designator_drop_zero_padding() -> None:
    """LH001A on a date has the canonical designator LH1A and a stable cache key."""
    query = FlightQuery.parse("LH001A", "2026-02-25")
    assert (query.designator, query.key) == ("LH1A", "LH1A/2026-02-25")
    assert query.departure_date == date(2026, 2, 25)


@pytest.mark.parametrize("raw", ["D-ABYA", "dabya", "D ABYA", "DABYA"])
def test_registrations_have_one_canonical_form(raw: str) -> None:
    """Every provider's way of writing a registration becomes the same value, so the formats
    alone never make a conflict."""
    assert Leg(origin="FRA", aircraft_registration=raw).aircraft_registration == "DABYA"


def test_flight_json_is_utc_with_z_and_delay_in_minutes() -> None:
    """Times render as UTC with Z whatever their zone; delay_minutes derives from the times."""
    cet = timezone(timedelta(hours=1))
    record = FlightRecord(
        carrier="LH", flight_number=400, suffix="", departure_date=date(2026, 2, 25),
        leg_index=0, origin="FRA",
        scheduled_departure=datetime(2026, 2, 25, 10, 0, tzinfo=cet),
        estimated_departure=datetime(2026, 2, 25, 9, 25, tzinfo=UTC))
    out = record.to_json()
    assert out["scheduled_departure"] == "2026-02-25T09:00:00Z"
    assert out["delay_minutes"] == 25
    assert out["status"] == "unknown" and out["codeshares"] == []
