"""One row per scenario: the figure, its target, whether it was met; as a table or JSON."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
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


def render(rows: list[Row], header: dict[str, Any]) -> str:
    """A plain-text table: scenario, figure, median, target, met; details below each row."""
    lines = [" ".join(f"{k}={v}" for k, v in header.items()), ""]
    width = max(len(r.key) for r in rows) if rows else 10
    lines.append(f"{'scenario':{width}}  {'value':>12}  {'unit':14}  {'target':>12}  met")
    lines.append("-" * (width + 50))
    for row in rows:
        met = {True: "yes", False: "NO", None: "n/a"}[row.met]
        target = row.target_text
        lines.append(f"{row.key:{width}}  {_show(row.value):>12}  {row.unit:14}  "
                     f"{target:>12}  {met}")
        facts = ", ".join(f"{k} {_show(v) if isinstance(v, float) else v}"
                          for k, v in row.detail.items())
        lines.append(f"{'':{width}}    {row.figure}" + (f"; {facts}" if facts else ""))
        if row.note:
            lines.append(f"{'':{width}}    note: {row.note}")
    return "\n".join(lines)
