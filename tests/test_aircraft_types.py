"""Aircraft types across code systems: an airline's IATA code (``32N``) and FlightAware's ICAO
designator (``A20N``) name one type, so the policy treats them as agreeing; different types
still disagree (docs/CONTRACTS.md section 8, docs/PROVIDERS.md section 6.1)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from flightsync.policy import AGREE, CURRENT, DEFAULT_POLICY, LegResolution, Policy, resolve_leg
from flightsync.policy._aircraft import _ICAO_BY_IATA, aircraft_key
from flightsync.policy.accuracy import Claim, choose, estimate_trust
from flightsync.sandbox import SandboxConfig
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import SandboxCli, sandbox_cli

LH, AF, BA, FA = "lufthansa", "airfrance_klm", "british_airways", "flightaware"
FIELD = "aircraft_type"
MANUAL = Policy(mode="manual")


def resolve(policy: Policy, observed: Mapping[str, Mapping[str, Any]],
            current: Mapping[str, Any] | None = None) -> LegResolution:
    return resolve_leg(policy, observed, current, updated_at={}, ranks={})


def conflicting_fields(resolution: LegResolution) -> list[str]:
    return [c.field for c in resolution.conflicts]


# --- the key ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("codes", "icao"), [
    (("738", "73H"), "B738"),
    (("73G", "73W"), "B737"),
    (("320", "32A"), "A320"),
    (("321", "32B"), "A321"),
    (("319",), "A319"),
    (("32N",), "A20N"),
    (("32Q",), "A21N"),
    (("333",), "A333"),
    (("359",), "A359"),
    (("380", "388"), "A388"),
    (("77W",), "B77W"),
    (("789",), "B789"),
    (("744", "74E", "74Y"), "B744"),
    (("74H", "74N"), "B748"),
    (("E90",), "E190"),
    (("E95",), "E195"),
    (("DH4",), "DH8D"),
    (("CR9",), "CRJ9"),
    (("AT5",), "AT45"),
])
def test_iata_codes_of_one_type_key_as_its_icao_designator(codes: tuple[str, ...],
                                                           icao: str) -> None:
    """Every IATA code of a type (winglets, freighter and combi variants included) keys as
    that type's ICAO designator, and so does the designator itself."""
    assert {aircraft_key(code) for code in (*codes, icao)} == {icao}


@pytest.mark.parametrize("value", ["B738", "A20N", "B77W", "CRJ9", "XYZ9", "32S", "787", "AT7"])
def test_icao_designators_and_unknown_codes_key_as_themselves(value: str) -> None:
    """An ICAO designator, an unknown code, or an IATA family code covering several ICAO
    designators (A320 family, any 787, any ATR 72) is its own key."""
    assert aircraft_key(value) == value


@pytest.mark.parametrize(("value", "key"), [
    (" 32n ", "A20N"), ("b738", "B738"), ("\tE90\n", "E190"), (" a359", "A359"), ("x1 ", "X1"),
])
def test_key_ignores_case_and_surrounding_whitespace(value: str, key: str) -> None:
    """Lower case and stray whitespace do not change the key."""
    assert aircraft_key(value) == key


def test_no_table_entry_turns_one_icao_designator_into_another() -> None:
    """The table is safe as a key: every ICAO designator it names keys as itself, so a code
    that is both an IATA code and an ICAO designator (F70) cannot be read as two types."""
    designators = set(_ICAO_BY_IATA.values())
    assert all(aircraft_key(icao) == icao for icao in designators)
    assert all(code not in designators or icao == code
               for code, icao in _ICAO_BY_IATA.items())


# --- resolve_leg -----------------------------------------------------------------------------

def test_default_policy_iata_and_icao_of_one_type_agree_on_the_airlines_code() -> None:
    """Default policy: FlightAware's A20N and Lufthansa's 32N are no conflict; the flight
    keeps Lufthansa's own code, decided by agreement."""
    result = resolve(DEFAULT_POLICY, {FA: {FIELD: "A20N"}, LH: {FIELD: "32N"}})

    assert FIELD not in conflicting_fields(result)
    assert result.values[FIELD] == "32N"
    assert result.decisions[FIELD][1:3] == (LH, AGREE)


def test_manual_policy_opens_no_conflict_for_one_type_in_two_code_systems() -> None:
    """Manual mode: A20N from FlightAware beside 32N from Lufthansa and Amadeus holds nothing
    for an operator, even with a stored value in the ICAO form (which stays: same type)."""
    observed = {FA: {FIELD: "A20N"}, LH: {FIELD: "32N"}, "amadeus": {FIELD: "32N"}}

    result = resolve(MANUAL, observed, current={FIELD: "A20N"})

    assert result.conflicts == []
    assert result.values[FIELD] == "A20N"
    assert result.decisions[FIELD][2] == AGREE


@pytest.mark.parametrize("policy", [DEFAULT_POLICY, MANUAL], ids=["default", "manual"])
def test_a_stored_type_is_not_rewritten_in_another_spelling(policy: Policy) -> None:
    """When the airline drops out and only FlightAware reports the same type in ICAO form,
    the stored IATA code stays (no audit row, no new version for nothing); codeshares in
    another order likewise. A different type still replaces it."""
    current = {FIELD: "32N", "codeshares": ("UA9050", "AC9100")}

    same = resolve(policy, {FA: {FIELD: "A20N", "codeshares": ("AC9100", "UA9050")}},
                   current=current)
    other = resolve(policy, {FA: {FIELD: "B738"}}, current=current)

    assert same.values[FIELD] == "32N"
    assert same.values["codeshares"] == ("UA9050", "AC9100")
    assert other.values[FIELD] == "B738"


def test_different_types_still_conflict_in_default_and_manual_mode() -> None:
    """B738 against 789 is a real disagreement: the default policy records it and takes the
    priority rule's value; manual mode holds it for an operator and keeps the stored value."""
    observed = {FA: {FIELD: "B738"}, LH: {FIELD: "789"}}

    automatic = resolve(DEFAULT_POLICY, observed)
    manual = resolve(MANUAL, observed, current={FIELD: "738"})

    [auto_conflict] = automatic.conflicts
    assert (auto_conflict.field, auto_conflict.values) == (FIELD, {LH: "789", FA: "B738"})
    assert automatic.values[FIELD] == "789" and not auto_conflict.escalated
    [held] = manual.conflicts
    assert held.field == FIELD and held.escalated
    assert manual.values[FIELD] == "738" and manual.decisions[FIELD][2] == CURRENT


def test_a320_against_a321_conflicts_whichever_code_system() -> None:
    """A320 (ICAO) against 321 (IATA) is two types, not two spellings."""
    result = resolve(DEFAULT_POLICY, {FA: {FIELD: "A320"}, LH: {FIELD: "321"}})

    assert conflicting_fields(result) == [FIELD]


def test_majority_counts_both_code_systems_as_one_value() -> None:
    """Rule majority: 32N (British Airways) and A20N (FlightAware) are two votes for one type
    and outvote Lufthansa's 320; the value kept is the best-ranked of the two, as reported."""
    policy = Policy(mode="automatic", fields={FIELD: "majority"}, escalate=frozenset())
    observed = {LH: {FIELD: "320"}, BA: {FIELD: "32N"}, FA: {FIELD: "A20N"}}

    result = resolve(policy, observed)

    assert result.values[FIELD] == "32N"
    assert result.decisions[FIELD][1:3] == (BA, "majority")


# --- the accuracy rule -----------------------------------------------------------------------

def test_accuracy_vote_counts_both_code_systems_as_one_candidate() -> None:
    """choose: with equal trust, Air France's 32N and FlightAware's A20N are one candidate
    with two votes and beat Lufthansa's 320, which would win a three-way tie on rank."""
    value, source, _ = choose(FIELD, {LH: "320", AF: "32N", FA: "A20N"}, None, 3,
                              (LH, AF, FA))

    assert (value, source) == ("32N", AF)


def test_trust_estimate_does_not_penalise_the_icao_source() -> None:
    """estimate_trust: FlightAware always reports the ICAO designator of the type the
    airlines report in IATA, so it is as accurate as they are; a source that reports another
    type is not."""
    types = (("32N", "A20N"), ("738", "B738"), ("77W", "B77W"))
    claims: list[Claim] = []
    for item in range(30):
        iata, icao = types[item % 3]
        claims += [Claim(item, FIELD, LH, iata), Claim(item, FIELD, "amadeus", iata),
                   Claim(item, FIELD, FA, icao), Claim(item, FIELD, "other", "359")]

    trust = estimate_trust(claims, tolerance_minutes=3).trust

    assert trust[FA][FIELD] == pytest.approx(trust[LH][FIELD])
    assert trust[FA][FIELD] > 0.9 > 0.5 > trust["other"][FIELD]


# --- end to end ------------------------------------------------------------------------------

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)  # before LH400 departs: nothing moves
AIRCRAFT = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0].aircraft


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


def test_sandbox_lh_flight_with_flightaware_has_no_aircraft_conflict(cli: SandboxCli) -> None:
    """A real sync of LH400 through Lufthansa, Amadeus (IATA codes) and FlightAware (ICAO):
    no aircraft_type conflict under the default policy, the flight stores Lufthansa's IATA
    code, and in manual mode no conflict row is opened for it."""
    assert AIRCRAFT.iata != AIRCRAFT.icao
    manual = cli.write_config("manual", {}, {"mode": "manual"})

    default = cli.sync("LH400", DAY)
    held = cli.sync("LH400", DAY, "--force", config=manual)

    assert default.exit_code == 0, default.stderr
    assert {s["name"] for s in default.data["sources"] if s["ok"]} >= {LH, FA}
    assert FIELD not in [c["field"] for c in default.data["conflicts"]]
    assert default.data["flight"][FIELD] == AIRCRAFT.iata
    assert held.exit_code == 0, held.stderr
    assert FIELD not in [c["field"] for c in held.data["conflicts"]]
    assert cli.rows("SELECT field FROM conflict WHERE field = :f", f=FIELD) == []
