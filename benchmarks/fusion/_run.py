"""Scoring against the gold standard: tallies per rule and attribute, and the fixed order.

The rules themselves run in ``_folds`` (every one of them product code: ``resolve_leg``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.fusion._load import Day

TRUTH_SOURCES = frozenset({"aa", "ua", "co"})   # the airline sites the gold standard comes from
WITHIN_MINUTES = 10


@dataclass
class Tally:
    """Right answers out of items scored, exact and within WITHIN_MINUTES (gates: exact)."""

    items: int = 0
    exact: int = 0
    near: int = 0

    def add(self, chosen: Any, gold: Any) -> None:
        self.items += 1
        if chosen == gold:
            self.exact += 1
            self.near += 1
        elif isinstance(chosen, datetime) and isinstance(gold, datetime) and \
                abs((chosen - gold).total_seconds()) <= WITHIN_MINUTES * 60:
            self.near += 1

    def merge(self, other: Tally) -> None:
        self.items += other.items
        self.exact += other.exact
        self.near += other.near

    def share(self) -> float:
        """Exact right answers / items (0 for no items)."""
        return self.exact / self.items if self.items else 0.0

    def to_json(self) -> dict[str, Any]:
        def share(count: int) -> float | None:
            return round(count / self.items, 4) if self.items else None
        return {"items": self.items, "exact": share(self.exact),
                f"within_{WITHIN_MINUTES}_min": share(self.near)}


@dataclass
class Score:
    """Per rule, per attribute tallies (attribute ``overall`` sums the six)."""

    tallies: dict[str, dict[str, Tally]] = field(default_factory=dict)
    estimate_seconds: list[float] = field(default_factory=list)  # the product's estimate
    claims: list[int] = field(default_factory=list)

    def add(self, rule: str, attribute: str, chosen: Any, gold: Any) -> None:
        per = self.tallies.setdefault(rule, {})
        for name in (attribute, "overall"):
            per.setdefault(name, Tally()).add(chosen, gold)

    def merge(self, other: Score) -> None:
        """Add ``other``'s tallies (another day or fold) to these."""
        for rule, per in other.tallies.items():
            mine = self.tallies.setdefault(rule, {})
            for name, tally in per.items():
                mine.setdefault(name, Tally()).merge(tally)
        self.estimate_seconds += other.estimate_seconds
        self.claims += other.claims

    def tally(self, rule: str, name: str) -> Tally:
        """The tally of ``rule`` on ``name`` (an attribute or ``overall``); empty if none."""
        return self.tallies.get(rule, {}).get(name, Tally())

    def to_json(self) -> dict[str, Any]:
        return {rule: {name: tally.to_json() for name, tally in per.items()}
                for rule, per in self.tallies.items()}


def priority_order(day: Day, sources: Iterable[str]) -> tuple[str, ...]:
    """The fixed order for ``priority``: the airlines' own sites first, then by how many
    values a source gives that day (most first), then by name. Decided without the truth."""
    counts: dict[str, int] = {}
    for _, _, source, _ in day.claims():
        counts[source] = counts.get(source, 0) + 1
    return tuple(sorted(sources, key=lambda s: (s.lower() not in TRUTH_SOURCES,
                                                -counts.get(s, 0), s)))
