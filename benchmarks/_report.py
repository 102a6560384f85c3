"""One row per scenario: the figure, its target, whether it was met; as a table or JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass
class Row:
    """A scenario's headline figure. ``at_most``: the target is an upper bound (else lower).
    ``value`` None: the scenario could not run here (``note`` says why)."""

    key: str
    title: str
    figure: str
    unit: str
    target: float | None   # None: reported, no target
    at_most: bool
    value: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value <= self.target if self.at_most else self.value >= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'<=' if self.at_most else '>='} {_show(self.target)}"

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.key, "title": self.title, "figure": self.figure,
                "unit": self.unit, "value": _rounded(self.value),
                "target": self.target_text,
                "met": self.met, "detail": {k: _rounded(v) for k, v in self.detail.items()},
                "note": self.note}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4 if abs(value) < 10 else 1)
    return value


def _show(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def load_before(path: Path) -> dict[str, float]:
    """Scenario -> value of an earlier run saved with ``--save`` (or printed with ``--json``);
    ValueError naming the file when it is not such a result."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return {str(row["scenario"]): float(row["value"]) for row in saved["scenarios"]
                if isinstance(row.get("value"), int | float)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a saved benchmark result ({exc})") from exc


def change(value: float | None, before: float | None) -> str:
    """``+12%``: this run against the earlier one (empty when either is missing)."""
    if value is None or before is None or before == 0:
        return ""
    return f"{(value - before) / abs(before):+.0%}"


def render(rows: list[Row], header: dict[str, Any],
           before: Mapping[str, float] | None = None) -> str:
    """A plain-text table: scenario, figure, median, target, met, and with ``before`` (an
    earlier run, ``--compare``) that run's value and the change; details below each row."""
    lines = [" ".join(f"{k}={v}" for k, v in header.items()), ""]
    width = max(len(r.key) for r in rows) if rows else 10
    compared = f"  {'before':>12}  change" if before is not None else ""
    lines.append(f"{'scenario':{width}}  {'value':>12}  {'unit':14}  {'target':>12}  met"
                 + compared)
    lines.append("-" * (width + 50 + len(compared)))
    for row in rows:
        met = {True: "yes", False: "NO", None: "n/a"}[row.met]
        target = row.target_text
        was = ""
        if before is not None:
            earlier = before.get(row.key)
            was = f"  {_show(earlier):>12}  {change(row.value, earlier)}"
        lines.append(f"{row.key:{width}}  {_show(row.value):>12}  {row.unit:14}  "
                     f"{target:>12}  {met:3}{was}".rstrip())
        facts = ", ".join(f"{k} {_show(v) if isinstance(v, float) else v}"
                          for k, v in row.detail.items())
        lines.append(f"{'':{width}}    {row.figure}" + (f"; {facts}" if facts else ""))
        if row.note:
            lines.append(f"{'':{width}}    note: {row.note}")
    return "\n".join(lines)
