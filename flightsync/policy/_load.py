"""Read ``policy.yaml`` into a Policy; every error is one line naming file, key and line.

The YAML is composed (not just loaded) so that each key and list item keeps its mark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from flightsync._read import mebibytes, read_at_most
from flightsync.config import MAX_YAML_BYTES, YamlTooDeep, check_depth
from flightsync.errors import ConfigError
from flightsync.models import PROVIDER_NAMES
from flightsync.plausibility import Thresholds, threshold_problem
from flightsync.policy._policy import (
    DEFAULT_POLICY,
    MAX_TOLERANCE_MINUTES,
    Policy,
    field_problem,
    mode_problem,
    rule_problem,
)


class _Reader:
    """Walks the composed document; knows the file name for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._constructor = yaml.SafeLoader("")

    def fail(self, node: yaml.Node | None, key: str | None, problem: str) -> NoReturn:
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"{self.path}:{line}"
        subject = f"key {key!r}: " if key else ""
        raise ConfigError(f"invalid policy {where}: {subject}{problem}",
                          path=str(self.path), key=key, line=line)

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, key, "expected a single value, not a list or mapping")
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            self.fail(node, key, f"unreadable value: {getattr(exc, 'problem', None) or exc}")
        except ValueError:  # an int of more digits than Python converts (4300)
            self.fail(node, key, "unreadable value: a number too long to read")

    def text(self, node: yaml.Node, key: str) -> str:
        value = self.scalar(node, key)
        if not isinstance(value, str):
            self.fail(node, key, f"expected a name, got {value!r}")
        return value

    def checked(self, node: yaml.Node, key: str, check: Callable[[str], str | None]) -> str:
        name = self.text(node, key)
        if problem := check(name):
            self.fail(node, key, problem)
        return name

    def mapping(self, node: yaml.Node, key: str | None) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, key, "expected a mapping of keys to values")
        seen: set[str] = set()
        items: list[tuple[str, yaml.Node]] = []
        for key_node, value_node in node.value:
            name = self.text(key_node, key or "")
            if name in seen:
                self.fail(key_node, f"{key}.{name}" if key else name, "duplicate key")
            seen.add(name)
            items.append((name, value_node))
        return items

    def names(self, node: yaml.Node, key: str,
              check: Callable[[str], str | None]) -> list[str]:
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, key, "expected a list of names")
        out: list[str] = []
        for item in node.value:
            name = self.text(item, key)
            problem = check(name) or (f"{name!r} is listed twice" if name in out else None)
            if problem:
                self.fail(item, key, problem)
            out.append(name)
        return out


def load_policy(path: Path | None, *, known_providers: Iterable[str] = ()) -> Policy:
    """Load a policy file; ``None`` gives the built-in default (equal to config/policy.yaml).

    Provider names must be among ``models.PROVIDER_NAMES`` or ``known_providers`` (adapters
    registered by third parties). Keys left out take the default's value.
    """
    if path is None:
        return DEFAULT_POLICY
    try:
        raw = read_at_most(path, MAX_YAML_BYTES)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc}", path=str(path)) from exc
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"invalid policy {path}: larger than {mebibytes(MAX_YAML_BYTES)}, "
                          "the limit of a policy file", path=str(path))
    reader = _Reader(path)
    try:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except RecursionError:
            raise YamlTooDeep(1) from None
        if root is not None:
            check_depth(root)
    except YamlTooDeep as exc:
        raise ConfigError(f"invalid policy {path}:{exc.line}: {exc}", path=str(path),
                          line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = (exc.problem or "invalid YAML").replace("\n", " ")
        raise ConfigError(f"invalid policy {path}:{line}: YAML syntax: {problem}",
                          path=str(path), line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid policy {path}: YAML: {exc}", path=str(path)) from exc
    if root is None:
        return DEFAULT_POLICY
    return _build(reader, root, frozenset(PROVIDER_NAMES) | frozenset(known_providers))


def _build(reader: _Reader, root: yaml.Node, providers: frozenset[str]) -> Policy:
    def provider_problem(name: str) -> str | None:
        if name in providers:
            return None
        return f"unknown provider {name!r}; expected one of {', '.join(sorted(providers))}"

    parsers: dict[str, Callable[[yaml.Node, str], Any]] = {
        "mode": lambda node, key: reader.checked(node, key, mode_problem),
        "priority": lambda node, key: tuple(reader.names(node, key, provider_problem)),
        "operating_carrier_first": lambda node, key: _flag(reader, node, key),
        "time_tolerance_minutes": lambda node, key: _minutes(reader, node, key),
        "fields": lambda node, key: _fields(reader, node),
        "escalate": lambda node, key: frozenset(reader.names(node, key, field_problem)),
        "default_rule": lambda node, key: reader.checked(
            node, key, lambda rule: rule_problem(None, rule)),
        "plausibility": lambda node, key: _plausibility(reader, node),
    }
    values: dict[str, Any] = {}
    for key, node in reader.mapping(root, None):
        parse = parsers.get(key)
        if parse is None:
            reader.fail(node, key, f"unknown key; expected one of {', '.join(parsers)}")
        values[key] = parse(node, key)
    return Policy(**values)


def _flag(reader: _Reader, node: yaml.Node, key: str) -> bool:
    flag = reader.scalar(node, key)
    if not isinstance(flag, bool):
        reader.fail(node, key, f"expected true or false, got {flag!r}")
    return flag


def _minutes(reader: _Reader, node: yaml.Node, key: str) -> float:
    minutes = reader.scalar(node, key)
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) \
            or not 0 <= minutes <= MAX_TOLERANCE_MINUTES:
        reader.fail(node, key, f"expected a number of minutes >= 0 and <= "
                    f"{MAX_TOLERANCE_MINUTES}, got {str(minutes)[:40]}")
    return minutes


def _fields(reader: _Reader, node: yaml.Node) -> dict[str, str]:
    if _is_null(node):
        return {}
    rules: dict[str, str] = {}
    for name, rule_node in reader.mapping(node, "fields"):
        key = f"fields.{name}"
        rule = reader.text(rule_node, key)
        if problem := field_problem(name):
            reader.fail(rule_node, key, problem)
        if problem := rule_problem(name, rule):
            reader.fail(rule_node, key, problem)
        rules[name] = rule
    return rules


def _plausibility(reader: _Reader, node: yaml.Node) -> Thresholds:
    """The ``plausibility`` section: thresholds left out keep their default."""
    if _is_null(node):
        return Thresholds()
    values: dict[str, float] = {}
    for name, value_node in reader.mapping(node, "plausibility"):
        key = f"plausibility.{name}"
        if problem := threshold_problem(name, 0):  # an unknown key, whatever its value
            reader.fail(value_node, key, problem)
        value = reader.scalar(value_node, key)
        if problem := threshold_problem(name, value):
            reader.fail(value_node, key, problem)
        values[name] = value
    return Thresholds(**values)


def _is_null(node: yaml.Node) -> bool:
    """An empty value (``escalate:`` with nothing after it) means an empty list or mapping."""
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"
