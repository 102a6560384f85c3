"""The conflict policy as a value (docs/CONTRACTS.md §8): modes, rules, and which field takes which.

``Policy()`` is the built-in default and equals the shipped ``config/policy.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from flightsync.errors import ConfigError
from flightsync.models import OBSERVED_FIELDS, TIME_FIELDS
from flightsync.plausibility import DEFAULT_THRESHOLDS, Thresholds, thresholds_problem

MODES: tuple[str, ...] = ("priority", "automatic", "manual")
RULES: tuple[str, ...] = (
    "priority", "most_recent", "most_severe", "earliest", "latest", "majority", "accuracy",
)
# Rules that make sense for any value; the others only compare times or statuses.
_ANY_FIELD_RULES = frozenset({"priority", "most_recent", "majority", "accuracy"})
_TIME_FIELD_SET = frozenset(TIME_FIELDS)
_FIELD_SET = frozenset(OBSERVED_FIELDS)

DEFAULT_PRIORITY: tuple[str, ...] = (
    "lufthansa", "airfrance_klm", "british_airways", "flightaware", "cirium",
    "aviationstack", "aerodatabox", "amadeus",
)
DEFAULT_FIELDS: Mapping[str, str] = MappingProxyType({
    "status": "most_severe",
    "estimated_departure": "earliest",
    "estimated_arrival": "latest",
    "departure_gate": "most_recent",
    "actual_departure": "priority",
    # Learned trust where it wins leave-days-out on real data (benchmarks/fusion, README).
    "scheduled_departure": "accuracy",
    "scheduled_arrival": "accuracy",
})


def rules_for(field_name: str) -> tuple[str, ...]:
    """The rules a field can take, in RULES order."""
    allowed = set(_ANY_FIELD_RULES)
    if field_name in _TIME_FIELD_SET:
        allowed |= {"earliest", "latest"}
    if field_name == "status":
        allowed.add("most_severe")
    return tuple(r for r in RULES if r in allowed)


def field_problem(field_name: str) -> str | None:
    """Why ``field_name`` is not a field the policy can speak about, or None."""
    if field_name in _FIELD_SET:
        return None
    return f"unknown field {field_name!r}; expected one of {', '.join(OBSERVED_FIELDS)}"


def rule_problem(field_name: str | None, rule: str) -> str | None:
    """Why ``rule`` cannot decide ``field_name`` (None: any field), or None when it can."""
    if rule not in RULES:
        return f"unknown rule {rule!r}; expected one of {', '.join(RULES)}"
    allowed = _ANY_FIELD_RULES if field_name is None else rules_for(field_name)
    if rule not in allowed:
        target = "every field" if field_name is None else f"field {field_name!r}"
        return f"rule {rule!r} cannot decide {target}; it takes {', '.join(sorted(allowed))}"
    return None


def mode_problem(mode: str) -> str | None:
    if mode in MODES:
        return None
    return f"unknown mode {mode!r}; expected one of {', '.join(MODES)}"


# A day: times further apart are never "the same time", and timedelta cannot hold .inf or the
# huge numbers a YAML file can spell (an OverflowError instead of a one-line refusal).
MAX_TOLERANCE_MINUTES = 1440

@dataclass(frozen=True)
class Policy:
    """How disagreeing providers are reconciled. Construct through ``load_policy`` for line
    numbers in errors; direct construction validates too (without them)."""

    mode: str = "automatic"
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    operating_carrier_first: bool = True
    time_tolerance_minutes: float = 3
    fields: Mapping[str, str] = field(default_factory=lambda: DEFAULT_FIELDS, hash=False)
    escalate: frozenset[str] = frozenset({"status"})
    default_rule: str = "priority"
    # The limits of the plausibility checks every provider's answer passes before it counts.
    plausibility: Thresholds = DEFAULT_THRESHOLDS
    # Precomputed once so that resolving a leg does no per-call policy work.
    rank_of: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)
    tolerance: timedelta = field(init=False, repr=False, compare=False, hash=False)
    plan: Mapping[str, tuple[str, bool]] = field(init=False, repr=False, compare=False,
                                                 hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "priority", tuple(self.priority))
        object.__setattr__(self, "escalate", frozenset(self.escalate))
        object.__setattr__(self, "fields", MappingProxyType(dict(self.fields)))
        problems = [mode_problem(self.mode), rule_problem(None, self.default_rule)]
        problems += [field_problem(f) or rule_problem(f, r) for f, r in self.fields.items()]
        problems += [field_problem(f) for f in sorted(self.escalate)]
        if len(set(self.priority)) != len(self.priority):
            problems.append("priority names a provider twice")
        minutes = self.time_tolerance_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
                or not 0 <= minutes <= MAX_TOLERANCE_MINUTES:
            problems.append("time_tolerance_minutes must be a number >= 0 and <= "
                            f"{MAX_TOLERANCE_MINUTES}")
        problems.append(thresholds_problem(self.plausibility))
        found = [p for p in problems if p is not None]
        if found:
            raise ConfigError(f"invalid policy: {found[0]}")
        # Plain dicts (not proxies) for the resolver's lookups: they are read-only by contract.
        object.__setattr__(self, "rank_of",
                           {name: index for index, name in enumerate(self.priority)})
        object.__setattr__(self, "tolerance", timedelta(minutes=self.time_tolerance_minutes))
        object.__setattr__(self, "plan", {name: self.plan_for(name) for name in OBSERVED_FIELDS})

    def rule_for(self, field_name: str) -> str:
        """The rule that decides ``field_name`` under this policy's mode."""
        if self.mode == "automatic":
            return self.fields.get(field_name, self.default_rule)
        return "priority"

    def plan_for(self, field_name: str) -> tuple[str, bool]:
        """How a disagreement on ``field_name`` is settled: (rule, escalated). An escalated
        field that has no stored value yet takes the priority rule's choice."""
        escalated = self.mode == "manual" or (
            self.mode == "automatic" and field_name in self.escalate)
        return ("priority" if escalated else self.rule_for(field_name)), escalated


DEFAULT_POLICY = Policy()
