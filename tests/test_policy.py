"""The conflict policy: loading policy.yaml and resolving one leg (docs/CONTRACTS.md section 8)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flightsync.errors import ConfigError
from flightsync.models import FlightStatus
from flightsync.policy import (
    AGREE,
    CURRENT,
    DEFAULT_POLICY,
    LegResolution,
    Policy,
    load_policy,
    rank_sources,
    resolve_leg,
)

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 2, 25, 10, 0, tzinfo=UTC)
# Four sources in the default policy's priority order (best first).
LH, AF, BA, FA = "lufthansa", "airfrance_klm", "british_airways", "flightaware"
Obs = dict[str, dict[str, Any]]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def resolve(policy: Policy, observed: Mapping[str, Mapping[str, Any]],
            current: Mapping[str, Any] | None = None, *,
            updated_at: Mapping[str, datetime] | None = None,
            ranks: Mapping[str, int] | None = None,
            operating_carrier_source: str | None = None) -> LegResolution:
    return resolve_leg(policy, observed, current, updated_at=updated_at or {},
                       ranks=ranks or {}, operating_carrier_source=operating_carrier_source)


def automatic(rule: str, field: str, **changes: Any) -> Policy:
    return Policy(mode="automatic", fields={field: rule}, escalate=frozenset(), **changes)


# --- rules -----------------------------------------------------------------------------------

D, C, A, S = (FlightStatus.DELAYED, FlightStatus.CANCELLED, FlightStatus.ARRIVED,
              FlightStatus.SCHEDULED)


@pytest.mark.parametrize(("rule", "field", "values", "updated", "winner"), [
    ("priority", "departure_gate", {LH: "A1", AF: "B2", BA: "C3"}, {}, LH),
    ("most_recent", "departure_gate", {LH: "A1", AF: "B2", BA: "C3"},
     {LH: at(0), AF: at(5), BA: at(1)}, AF),
    ("most_recent", "departure_gate", {LH: "A1", AF: "B2", BA: "C3"},
     {LH: at(0), AF: at(5), BA: at(5)}, AF),                       # tie: priority
    ("most_recent", "departure_gate", {LH: "A1", AF: "B2"}, {AF: at(-60)}, AF),  # LH has none
    ("most_recent", "departure_gate", {LH: "A1", AF: "B2"}, {}, LH),  # nobody has one
    ("most_severe", "status", {LH: D, AF: C, BA: A}, {}, AF),
    ("most_severe", "status", {LH: A, AF: FlightStatus.DIVERTED}, {}, AF),
    ("most_severe", "status", {LH: S, AF: FlightStatus.BOARDING, BA: D}, {}, AF),
    ("most_severe", "status", {LH: D, AF: C, BA: C}, {}, AF),       # tie: priority
    ("most_severe", "status", {LH: "unheard-of", AF: "unknown"}, {}, AF),
    ("earliest", "estimated_departure", {LH: at(30), AF: at(10), BA: at(20)}, {}, AF),
    ("earliest", "estimated_departure", {LH: at(30), AF: at(10), BA: at(10)}, {}, AF),
    ("latest", "estimated_arrival", {LH: at(30), AF: at(10), BA: at(50)}, {}, BA),
    ("latest", "estimated_arrival", {LH: at(10), AF: at(50), BA: at(50)}, {}, AF),
    ("majority", "departure_gate", {LH: "A1", AF: "B2", BA: "B2"}, {}, AF),
    ("majority", "departure_gate", {LH: "A1", AF: "B2", BA: "C3", FA: "C3"}, {}, BA),
    ("majority", "departure_gate", {LH: "A1", AF: "B2", BA: "B2", FA: "A1"}, {}, LH),  # tie
    ("majority", "estimated_departure", {LH: at(0), AF: at(20), BA: at(21), FA: at(23)}, {}, AF),
    ("majority", "estimated_departure", {LH: at(0), AF: at(20)}, {}, LH),  # tie: priority
    ("majority", "codeshares", {LH: ("UA1",), AF: ("AC2", "UA1"), BA: ("UA1", "AC2")}, {}, AF),
])
def test_rule_picks_its_winner(rule: str, field: str, values: dict[str, Any],
                               updated: dict[str, datetime], winner: str) -> None:
    """Each automatic-mode rule chooses its source's value; ties go to the better-ranked source."""
    policy = automatic(rule, field)
    result = resolve(policy, {s: {field: v} for s, v in values.items()}, updated_at=updated)
    assert result.values[field] == values[winner]
    assert result.decisions[field].source == winner
    assert result.decisions[field].rule == rule
    [conflict] = result.conflicts
    assert (conflict.field, conflict.rule, conflict.escalated) == (field, rule, False)
    assert conflict.values == values
    assert conflict.chosen == values[winner]


def test_accuracy_rule_delegates_to_the_learned_trust() -> None:
    """`accuracy` takes the value of the source trusted most for the field and keeps the
    trust figures behind the choice in the decision's detail."""
    accuracy = pytest.importorskip("flightsync.policy.accuracy")
    assert callable(accuracy.choose)
    trust = {LH: {"departure_gate": 0.1}, AF: {"departure_gate": 0.99}}
    result = resolve_leg(automatic("accuracy", "departure_gate"),
                         {LH: {"departure_gate": "A1"}, AF: {"departure_gate": "B2"}}, None,
                         updated_at={}, ranks={}, trust=trust)
    decision = result.decisions["departure_gate"]
    assert (decision.value, decision.source, decision.rule) == ("B2", AF, "accuracy")
    assert decision.detail
    assert result.conflicts[0].rule == "accuracy"


# --- agreement, tolerance, sets, None ----------------------------------------------------------

@pytest.mark.parametrize(("later_minutes", "agree"), [
    (0, True), (2, True), (3, True), (3 + 1 / 60, False), (-3, True), (10, False),
])
def test_times_within_tolerance_agree(later_minutes: float, agree: bool) -> None:
    """Times at most `time_tolerance_minutes` apart (boundary included) are not a conflict and
    take the priority source's value; further apart, the field's rule decides."""
    policy = automatic("earliest", "estimated_departure", time_tolerance_minutes=3)
    observed = {LH: {"estimated_departure": at(10)},
                AF: {"estimated_departure": at(10 + later_minutes)}}
    result = resolve(policy, observed)
    assert (not result.conflicts) is agree
    decision = result.decisions["estimated_departure"]
    if agree:
        assert (decision.value, decision.source, decision.rule) == (at(10), LH, AGREE)
    else:
        expected = min(at(10), at(10 + later_minutes))
        assert (decision.value, decision.rule) == (expected, "earliest")


def test_zero_tolerance_makes_any_time_difference_a_conflict() -> None:
    """With a tolerance of 0 minutes, one second apart is a disagreement."""
    observed = {LH: {"actual_departure": at(0)}, AF: {"actual_departure": at(1 / 60)}}
    result = resolve(Policy(time_tolerance_minutes=0), observed)
    assert [c.field for c in result.conflicts] == ["actual_departure"]


@pytest.mark.parametrize(("other", "conflict"), [
    (("AC2", "UA1"), False), (("UA1", "AC2"), False), (("UA1",), True), (("UA1", "NH3"), True),
])
def test_codeshares_compare_as_sets(other: tuple[str, ...], conflict: bool) -> None:
    """Codeshare lists with the same members in any order agree; other members disagree."""
    observed: Obs = {LH: {"codeshares": ("UA1", "AC2")}, AF: {"codeshares": other}}
    result = resolve(Policy(mode="priority"), observed)
    assert bool(result.conflicts) is conflict
    assert result.values["codeshares"] == ("UA1", "AC2")


def test_none_values_are_ignored() -> None:
    """A source that reports None for a field neither disagrees nor counts; a field nobody
    reported is absent from the resolution."""
    observed: Obs = {LH: {"departure_gate": None, "arrival_gate": None, "status": D},
                     AF: {"departure_gate": "B2", "arrival_gate": None, "status": D},
                     BA: {"departure_gate": "B2"}}
    result = resolve(DEFAULT_POLICY, observed)
    assert result.conflicts == []
    assert result.values == {"departure_gate": "B2", "status": D}
    assert result.decisions["departure_gate"].source == AF
    assert "arrival_gate" not in result.decisions


def test_a_single_source_agrees_with_itself() -> None:
    """One reporting source gives its value with rule `agree` and no conflict."""
    result = resolve(DEFAULT_POLICY, {FA: {"aircraft_type": "A359", "status": C}})
    assert result.values == {"aircraft_type": "A359", "status": C}
    assert {d.rule for d in result.decisions.values()} == {AGREE}
    assert result.conflicts == []


def test_status_enum_and_text_agree() -> None:
    """A FlightStatus and its text value are the same status, not a disagreement."""
    observed: Obs = {LH: {"status": FlightStatus.LANDED}, AF: {"status": "landed"}}
    result = resolve(DEFAULT_POLICY, observed)
    assert result.conflicts == []


# --- ranking -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("first", "operating", "expected"), [
    (True, BA, (BA, LH, AF, FA)),
    (False, BA, (LH, AF, BA, FA)),
    (True, None, (LH, AF, BA, FA)),
    (True, "amadeus", (LH, AF, BA, FA)),     # not among the sources: no effect
])
def test_operating_carrier_source_ranks_first(first: bool, operating: str | None,
                                              expected: tuple[str, ...]) -> None:
    """The operating airline's own adapter ranks first when `operating_carrier_first` is set."""
    policy = Policy(mode="priority", operating_carrier_first=first)
    observed = {s: {"departure_gate": s[:2]} for s in (FA, BA, AF, LH)}
    result = resolve(policy, observed, operating_carrier_source=operating)
    assert result.order == expected
    assert result.values["departure_gate"] == expected[0][:2]


def test_unnamed_sources_rank_after_named_by_number_then_name() -> None:
    """Sources the priority list does not name come after the named ones, higher `ranks`
    number first, then by name."""
    policy = Policy(mode="priority", priority=(AF,))
    ranks = {"zeta": 50, "alpha": 50, "beta": 90, "gamma": 10, AF: 0}
    order = rank_sources(policy, ["gamma", "zeta", AF, "alpha", "beta", "nameless"], ranks)
    assert order == (AF, "beta", "alpha", "zeta", "gamma", "nameless")
    observed = {"gamma": {"baggage_belt": "1"}, "beta": {"baggage_belt": "2"}}
    assert resolve(policy, observed, ranks=ranks).values["baggage_belt"] == "2"


# --- modes and escalation ---------------------------------------------------------------------

STATUS_SPLIT = {LH: {"status": D}, AF: {"status": C}}


@pytest.mark.parametrize(("mode", "current", "value", "rule", "escalated"), [
    ("priority", None, D, "priority", False),
    ("priority", {"status": S}, D, "priority", False),
    ("automatic", None, C, "most_severe", False),
    ("automatic", {"status": S}, C, "most_severe", False),
    ("manual", None, D, "priority", True),
    ("manual", {"status": None}, D, "priority", True),
    ("manual", {"status": S}, S, CURRENT, True),
])
def test_modes(mode: str, current: dict[str, Any] | None, value: Any, rule: str,
               escalated: bool) -> None:
    """priority mode always takes the best-ranked source; automatic uses the field's rule;
    manual keeps the stored value (or, with none, stores the priority choice) and escalates."""
    policy = Policy(mode=mode, fields={"status": "most_severe"}, escalate=frozenset())
    result = resolve(policy, STATUS_SPLIT, current)
    [conflict] = result.conflicts
    assert (result.values["status"], conflict.chosen) == (value, value)
    assert (conflict.rule, conflict.escalated) == (rule, escalated)
    assert result.decisions["status"].rule == rule
    assert conflict.values == {LH: D, AF: C}


def test_manual_mode_keeps_agreement_without_conflict() -> None:
    """Manual mode only holds disagreements: an agreed value replaces the stored one."""
    result = resolve(Policy(mode="manual"), {LH: {"status": C}, AF: {"status": C}},
                     {"status": S})
    assert result.values == {"status": C}
    assert result.conflicts == []


@pytest.mark.parametrize(("current", "value", "rule", "source"), [
    ({"status": S, "departure_gate": "Z9"}, S, CURRENT, None),
    (None, D, "priority", LH),
])
def test_escalate_fields_in_automatic_mode(current: dict[str, Any] | None, value: Any,
                                           rule: str, source: str | None) -> None:
    """An `escalate` field keeps the stored value (a new flight: the priority rule's choice,
    not the field's rule) and opens an escalated conflict; other fields follow their rule."""
    observed = {LH: {"status": D, "departure_gate": "A1"},
                AF: {"status": C, "departure_gate": "B2"}}
    result = resolve(DEFAULT_POLICY, observed, current,
                     updated_at={LH: at(0), AF: at(1)})
    status, gate = (next(c for c in result.conflicts if c.field == f)
                    for f in ("status", "departure_gate"))
    assert (status.chosen, status.rule, status.escalated) == (value, rule, True)
    assert result.decisions["status"].source == source
    assert (gate.chosen, gate.rule, gate.escalated) == ("B2", "most_recent", False)
    assert result.values == {"status": value, "departure_gate": "B2"}


@pytest.mark.parametrize(("values", "escalated"), [
    (("landed", "arrived"), False),
    (("delayed", "departed"), False),
    (("scheduled", "cancelled"), True),
    (("diverted", "landed"), True),
    (("cancelled", "diverted"), True),
])
def test_escalated_status_needs_an_irregular_status(values: tuple[str, str],
                                                    escalated: bool) -> None:
    """In automatic mode an escalated status opens an operator conflict only when a source
    says cancelled or diverted; two points of a normal progression are settled by the rule
    (most_severe: the most advanced) and recorded as an ordinary conflict."""
    observed = {LH: {"status": FlightStatus(values[0])}, AF: {"status": FlightStatus(values[1])}}
    result = resolve(DEFAULT_POLICY, observed, {"status": FlightStatus.SCHEDULED})
    [conflict] = result.conflicts
    assert conflict.escalated is escalated
    if not escalated:
        assert conflict.rule == "most_severe"
        assert result.values["status"] == max(
            values, key=("scheduled", "delayed", "boarding", "departed", "airborne", "landed",
                         "arrived").index)


def test_resolver_accepts_any_source_and_field_names() -> None:
    """The resolver is pure and takes names no configuration knows (a benchmark's sources)."""
    observed = {"src-a": {"wind": 10}, "src-b": {"wind": 12}}
    result = resolve(Policy(), observed, ranks={"src-a": 1, "src-b": 2})
    assert result.values == {"wind": 12}
    assert result.conflicts[0].rule == "priority"


# --- loading -----------------------------------------------------------------------------------

def test_default_policy_equals_shipped_policy_yaml() -> None:
    """The built-in default and config/policy.yaml are the same policy."""
    shipped = load_policy(REPO / "config" / "policy.yaml")
    assert shipped == load_policy(None) == DEFAULT_POLICY == Policy()
    assert dict(shipped.fields) == dict(DEFAULT_POLICY.fields)


def test_policy_file_overrides_and_keeps_defaults(tmp_path: Path) -> None:
    """Keys given replace the default's, keys left out keep it; extra providers are allowed
    when the caller names them."""
    path = tmp_path / "policy.yaml"
    path.write_text("mode: manual\npriority:\n  - acme\n  - amadeus\n"
                    "time_tolerance_minutes: 1.5\nfields:\n  baggage_belt: majority\n"
                    "escalate: []\n")
    policy = load_policy(path, known_providers=["acme"])
    assert (policy.mode, policy.priority, policy.time_tolerance_minutes) == (
        "manual", ("acme", "amadeus"), 1.5)
    assert dict(policy.fields) == {"baggage_belt": "majority"}
    assert policy.escalate == frozenset()
    assert policy.operating_carrier_first is DEFAULT_POLICY.operating_carrier_first


def test_empty_policy_file_is_the_default(tmp_path: Path) -> None:
    """An empty file (only comments) is the default policy."""
    path = tmp_path / "policy.yaml"
    path.write_text("# nothing yet\n")
    assert load_policy(path) == DEFAULT_POLICY


@pytest.mark.parametrize(("text", "line", "key", "words"), [
    ("mode: fast\n", 1, "mode", "unknown mode 'fast'"),
    ("mode: manual\n\nsteps: 3\n", 3, "steps", "unknown key"),
    ("priority:\n  - lufthansa\n  - acme\n", 3, "priority", "unknown provider 'acme'"),
    ("priority: [lufthansa, lufthansa]\n", 1, "priority", "listed twice"),
    ("priority: lufthansa\n", 1, "priority", "expected a list"),
    ("fields:\n  status: most_severe\n  wind: majority\n", 3, "fields.wind", "unknown field"),
    ("fields:\n  status: loudest\n", 2, "fields.status", "unknown rule 'loudest'"),
    ("fields:\n  departure_gate: earliest\n", 2, "fields.departure_gate", "cannot decide"),
    ("fields:\n  estimated_departure: most_severe\n", 2, "fields.estimated_departure",
     "cannot decide"),
    ("fields:\n  status: [priority]\n", 2, "fields.status", "expected a single value"),
    ("fields:\n  status: priority\n  status: majority\n", 3, "fields.status", "duplicate key"),
    ("escalate: [status, wind]\n", 1, "escalate", "unknown field 'wind'"),
    ("default_rule: earliest\n", 1, "default_rule", "cannot decide every field"),
    ("time_tolerance_minutes: -1\n", 1, "time_tolerance_minutes", ">= 0"),
    ("time_tolerance_minutes: soon\n", 1, "time_tolerance_minutes", "number of minutes"),
    ("operating_carrier_first: maybe\n", 1, "operating_carrier_first", "true or false"),
    ("mode: automatic\nmode: manual\n", 2, "mode", "duplicate key"),
    ("- mode\n", 1, None, "expected a mapping"),
    ("mode: automatic\nfields: {status: [\n", 3, None, "YAML syntax"),
])
def test_invalid_policy_names_file_key_and_line(tmp_path: Path, text: str, line: int,
                                                key: str | None, words: str) -> None:
    """Every kind of invalid policy is a ConfigError whose one-line message names the file,
    the key and the line number."""
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    message = caught.value.message
    assert "\n" not in message
    assert f"{path}:{line}:" in message
    assert words in message
    if key is not None:
        assert f"key {key!r}" in message
    assert caught.value.exit_code == 2


def test_missing_policy_file_is_a_config_error(tmp_path: Path) -> None:
    """A policy path that does not exist is a ConfigError naming it."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_policy(path)


@pytest.mark.parametrize("changes", [
    {"mode": "fast"}, {"fields": {"departure_gate": "latest"}}, {"fields": {"wind": "priority"}},
    {"escalate": frozenset({"wind"})}, {"default_rule": "most_severe"},
    {"priority": (LH, LH)}, {"time_tolerance_minutes": -2}, {"time_tolerance_minutes": "3"},
])
def test_policy_built_in_code_is_validated_too(changes: dict[str, Any]) -> None:
    """A Policy constructed directly refuses the same mistakes as the loader."""
    with pytest.raises(ConfigError, match="invalid policy"):
        Policy(**changes)
