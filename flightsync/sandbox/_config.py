"""The sandbox's knobs: latency, random failures, scripted faults and per-provider overrides.

A scenario is a YAML file (or the same keys as a JSON body at run time)::

    now: 2026-03-01T12:00:00Z        # the clock flight statuses are derived from (default: real)
    seed: 7                          # seeds the random failures of fail_rate
    token_ttl_seconds: 1799
    default_latency_ms: 0
    latency_ms: {lufthansa: 100}
    fail_rate: 0.05                  # share of data calls answered with a random 5xx
    hang_seconds: 30                 # how long a `hang` fault sleeps
    faults:
      - {provider: lufthansa, kind: status_5xx, status: 503, times: 2}
      - {provider: amadeus, kind: rate_limit, retry_after: 3, flight: LH400}
      - {provider: aviationstack, kind: quota}   # the provider's own quota answer
      - {provider: aerodatabox, kind: quota}   # the plan's quota spent, as the provider says it
    overrides:
      - {provider: flightaware, flight: LH400, fields: {departure_gate: Z99}}
    plans: {aviationstack: free}     # a provider's plan; default paid (free refuses paid features)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from flightsync.errors import ConfigError
from flightsync.models import PROVIDER_NAMES
from flightsync.sandbox._truth import OVERRIDABLE

FAULT_KINDS = frozenset({"status_5xx", "hang", "rate_limit", "malformed_json", "wrong_shape",
                         "expired_token", "not_found", "connection_close", "quota"})
PLANS = frozenset({"free", "paid"})
ANY_PROVIDER = "*"
_Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted fault on data calls of ``provider`` (``*``: every provider)."""

    provider: str
    kind: str
    flight: str | None = None        # a designator such as LH400: only that flight
    date: date | None = None         # only that date
    times: int | None = None         # only the first N matching calls; None: every call
    status: int = 503                # status_5xx
    retry_after: float = 1           # rate_limit, seconds
    seconds: float | None = None     # hang; None: the config's hang_seconds


@dataclass(frozen=True, slots=True)
class Override:
    """Fields one provider (or every provider) reports differently from the truth."""

    fields: Mapping[str, Any]
    provider: str = ANY_PROVIDER
    flight: str | None = None
    date: date | None = None
    leg: int | None = None           # None: every leg


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    default_latency_ms: float = 0
    fail_rate: float = 0
    seed: int = 0
    token_ttl_seconds: float = 1799
    hang_seconds: float = 30
    now: datetime | None = None
    faults: tuple[Fault, ...] = ()
    overrides: tuple[Override, ...] = ()
    plans: Mapping[str, str] = field(default_factory=dict)   # provider -> free/paid

    @classmethod
    def from_yaml(cls, path: Path) -> SandboxConfig:
        """Load a scenario file; a bad one raises ConfigError naming the file and line."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read scenario: {exc.strerror}") from exc
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: invalid YAML: "
                              f"{getattr(exc, 'problem', None) or exc}") from exc
        lines: dict[_Path, int] = {}
        if node is not None:
            _collect_lines(node, (), lines)
        return cls.from_mapping(data or {}, source=str(path), lines=lines)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "scenario",
                     lines: Mapping[_Path, int] | None = None,
                     base: SandboxConfig | None = None) -> SandboxConfig:
        """Validate ``data`` (scenario keys); keys it omits keep their value from ``base``."""
        return _Validator(source, lines or {}).config(data, base or cls())

    def plan_of(self, provider: str) -> str:
        """``provider``'s plan: ``paid`` unless the scenario says ``free``."""
        return self.plans.get(provider, "paid")

    def latency_for(self, provider: str) -> float:
        """Latency in milliseconds for ``provider``'s requests."""
        return float(self.latency_ms.get(provider, self.default_latency_ms))


def _collect_lines(node: yaml.Node, path: _Path, out: dict[_Path, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, str(key.value))] = key.start_mark.line + 1
            _collect_lines(value, (*path, str(key.value)), out)
            out[(*path, str(key.value))] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*path, index), out)


class _Validator:
    def __init__(self, source: str, lines: Mapping[_Path, int]) -> None:
        self.source = source
        self.lines = lines

    def fail(self, path: _Path, problem: str) -> ConfigError:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = f":{self.lines[probe]}" if probe in self.lines else ""
        return ConfigError(f"{self.source}{line}: {key or 'scenario'}: {problem}")

    def mapping(self, value: Any, path: _Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected a mapping")
        return value

    def number(self, value: Any, path: _Path, *, low: float = 0, high: float | None = None,
               integer: bool = False) -> float:
        ok_type = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, ok_type):
            raise self.fail(path, f"expected {'an integer' if integer else 'a number'}")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.fail(path, f"must be {bound}, got {value}")
        return value

    def provider(self, value: Any, path: _Path) -> str:
        if value != ANY_PROVIDER and value not in PROVIDER_NAMES:
            raise self.fail(path, f"unknown provider {value!r}; known: "
                            f"{', '.join(PROVIDER_NAMES)} or '*'")
        return str(value)

    def day(self, value: Any, path: _Path) -> date | None:
        if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.fail(path, "expected a date YYYY-MM-DD") from None

    def flight(self, value: Any, path: _Path) -> str | None:
        if value is None:
            return None
        text = str(value).replace(" ", "").upper()
        if not (3 <= len(text) <= 8 and text[:2].isalnum() and text[-1:].isalnum()):
            raise self.fail(path, f"expected a flight designator like LH400, got {value!r}")
        carrier, digits = text[:2], text[2:].lstrip("0")
        return f"{carrier}{digits}"

    def now(self, value: Any, path: _Path) -> datetime | None:
        if value is None:
            return None
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        except ValueError:
            raise self.fail(path, "expected an ISO 8601 date-time like "
                            "2026-03-01T12:00:00Z") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def config(self, data: Any, base: SandboxConfig) -> SandboxConfig:
        data = self.mapping(data, ())
        known = {f.name for f in fields(SandboxConfig)}
        for key in data:
            if key not in known:
                raise self.fail((str(key),), f"unknown key; known: {', '.join(sorted(known))}")
        changes: dict[str, Any] = {}
        for key in ("default_latency_ms", "token_ttl_seconds", "hang_seconds"):
            if key in data:
                changes[key] = float(self.number(data[key], (key,)))
        if "fail_rate" in data:
            changes["fail_rate"] = float(self.number(data["fail_rate"], ("fail_rate",), high=1))
        if "seed" in data:
            changes["seed"] = int(self.number(data["seed"], ("seed",), integer=True))
        if "now" in data:
            changes["now"] = self.now(data["now"], ("now",))
        if "latency_ms" in data:
            latency = self.mapping(data["latency_ms"], ("latency_ms",))
            changes["latency_ms"] = {
                self.provider(name, ("latency_ms", name)):
                    float(self.number(ms, ("latency_ms", name))) for name, ms in latency.items()}
        if "plans" in data:
            changes["plans"] = self.plans(data["plans"])
        if "faults" in data:
            changes["faults"] = tuple(self.fault(item, ("faults", i))
                                      for i, item in enumerate(self.sequence(data, "faults")))
        if "overrides" in data:
            changes["overrides"] = tuple(self.override(item, ("overrides", i))
                                         for i, item in enumerate(self.sequence(data, "overrides")))
        return replace(base, **changes)

    def plans(self, value: Any) -> dict[str, str]:
        plans = self.mapping(value, ("plans",))
        for name, plan in plans.items():
            if plan not in PLANS:
                raise self.fail(("plans", name), f"unknown plan {plan!r}; known: "
                                f"{', '.join(sorted(PLANS))}")
        return {self.provider(name, ("plans", name)): str(plan) for name, plan in plans.items()}

    def sequence(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data[key] or []
        if not isinstance(value, list):
            raise self.fail((key,), "expected a list")
        return value

    def fault(self, item: Any, path: _Path) -> Fault:
        item = self.mapping(item, path)
        allowed = {f.name for f in fields(Fault)}
        for key in item:
            if key not in allowed:
                raise self.fail((*path, str(key)),
                                f"unknown key; known: {', '.join(sorted(allowed))}")
        for key in ("provider", "kind"):
            if key not in item:
                raise self.fail(path, f"missing {key!r}")
        kind = item["kind"]
        if kind not in FAULT_KINDS:
            raise self.fail((*path, "kind"), f"unknown fault {kind!r}; known: "
                            f"{', '.join(sorted(FAULT_KINDS))}")
        times = item.get("times")
        if times is None and kind == "expired_token":
            times = 1
        status = item.get("status", 503)
        if "status" in item:
            self.number(status, (*path, "status"), low=500, high=599, integer=True)
        seconds = item.get("seconds")
        return Fault(
            provider=self.provider(item["provider"], (*path, "provider")), kind=kind,
            flight=self.flight(item.get("flight"), (*path, "flight")),
            date=self.day(item.get("date"), (*path, "date")),
            times=None if times is None else int(
                self.number(times, (*path, "times"), low=1, integer=True)),
            status=int(status),
            retry_after=float(self.number(item.get("retry_after", 1), (*path, "retry_after"))),
            seconds=None if seconds is None else float(
                self.number(seconds, (*path, "seconds"))),
        )

    def override(self, item: Any, path: _Path) -> Override:
        item = self.mapping(item, path)
        allowed = {f.name for f in fields(Override)}
        for key in item:
            if key not in allowed:
                raise self.fail((*path, str(key)),
                                f"unknown key; known: {', '.join(sorted(allowed))}")
        values = self.mapping(item.get("fields"), (*path, "fields"))
        for name, value in values.items():
            kind = OVERRIDABLE.get(name)
            if kind is None:
                raise self.fail((*path, "fields", name), "cannot override this field; known: "
                                f"{', '.join(sorted(OVERRIDABLE))}")
            if kind is int:
                self.number(value, (*path, "fields", name), low=-1440, integer=True)
            elif not isinstance(value, kind):
                raise self.fail((*path, "fields", name), f"expected a {kind.__name__}")
        leg = item.get("leg")
        return Override(
            fields=dict(values),
            provider=self.provider(item.get("provider", ANY_PROVIDER), (*path, "provider")),
            flight=self.flight(item.get("flight"), (*path, "flight")),
            date=self.day(item.get("date"), (*path, "date")),
            leg=None if leg is None else int(self.number(leg, (*path, "leg"), integer=True)),
        )
