"""The weighted vote shared by ``choose`` and the trust estimator.

A source's vote is the log-odds weight of ACCU (Dong, Berti-Equille, Srivastava, VLDB 2009):
``ln(n * A / (1 - A))`` for accuracy ``A`` with ``n`` false values per item, so one very
accurate source can outweigh several mediocre ones. A candidate collects the votes of every
source within the time tolerance of it; among sources giving the same value, each one's vote
shrinks by its dependence on the sources already counted (AccuCopy), so copies do not add up.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

MIN_ACCURACY = 0.01
MAX_ACCURACY = 0.99
# A vote never drops to zero or below: a poor source still counts a little, so that sources
# everybody distrusts are decided by their numbers before the priority order.
MIN_WEIGHT = 1e-3

Dependence = Mapping[str, Mapping[str, float]]   # source -> other source -> P(dependent)


def clamp(accuracy: float) -> float:
    """Accuracy kept away from 0 and 1, where the log-odds weight is infinite."""
    return min(MAX_ACCURACY, max(MIN_ACCURACY, accuracy))


def weight(accuracy: float, false_values: float) -> float:
    """ACCU's vote for a source of this accuracy when an item has ``false_values`` wrong values."""
    accuracy = clamp(accuracy)
    return max(MIN_WEIGHT, math.log(false_values * accuracy / (1.0 - accuracy)))


def value_key(value: Any) -> Hashable:
    """A hashable stand-in for a value (lists compare as tuples, sets as frozensets)."""
    if isinstance(value, list | tuple):
        return tuple(value_key(v) for v in value)
    if isinstance(value, set | frozenset):
        return frozenset(value_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), repr(v)) for k, v in value.items()))
    return cast(Hashable, value)


def near_lists(values: Sequence[Any], tolerance_seconds: float) -> list[list[int]]:
    """For each value, the indexes of the values that count as the same (itself included).

    Only datetimes have a tolerance; every other value equals only itself.
    """
    count = len(values)
    near = [[i] for i in range(count)]
    if tolerance_seconds <= 0 or count < 2:
        return near
    for i in range(count):
        first = values[i]
        if not isinstance(first, datetime):
            continue
        for j in range(i + 1, count):
            other = values[j]
            if isinstance(other, datetime) and \
                    abs((first - other).total_seconds()) <= tolerance_seconds:
                near[i].append(j)
                near[j].append(i)
    return near


def independence(members: Sequence[str], dependence: Dependence | None,
                 copy_rate: float) -> list[float]:
    """The share of each member's vote that is its own, ``members`` being best first.

    The first source counts fully; a later one is discounted by ``1 - copy_rate * P(dep)`` for
    every earlier source it depends on (AccuCopy's vote count with copying).
    """
    factors = [1.0] * len(members)
    if not dependence or len(members) < 2:
        return factors
    seen: list[str] = []
    for index, source in enumerate(members):
        links = dependence.get(source)
        if links:
            factor = 1.0
            for other in seen:
                probability = links.get(other)
                if probability is not None:
                    factor *= 1.0 - copy_rate * probability
            factors[index] = factor
        seen.append(source)
    return factors
