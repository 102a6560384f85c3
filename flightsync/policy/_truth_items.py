"""The claims of one trust estimate as flat arrays, built once and shared by every pass.

An *item* is one (thing, field); its *candidates* are the distinct values sources gave for it
(distinct by the field's key in ``_rules.VALUE_KEYS`` where it has one, so an IATA aircraft
code and its ICAO designator are one candidate); a *group* is the set of sources that gave
exactly one candidate. Copier families make the same groups recur on thousands of items, so
the vote is computed per group and the per-item work is a few array operations (``_truth``).
Everything here depends on the claims and the time tolerance only, never on accuracies, so
``trust_passes`` builds it once for its three passes.

A claim whose value is ``REJECTED`` is a value known to be false (the plausibility checks
dropped it before it counted): it is no candidate and takes no part in the vote, but it counts
among the items its source gave a value for (``coverage``), so the source's accuracy on that
field, the expected share of its values that are true, counts it as a mistake.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from flightsync.policy._rules import VALUE_KEYS
from flightsync.policy._truth_vote import near_lists, value_key

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
# value_key returns these unchanged: one function call saved per claim (~100,000 a day).
_PLAIN = frozenset({str, int, float, bool, datetime})


@dataclass(frozen=True, slots=True)
class Items:
    """Index arrays over sources (by name), fields (by name), items, candidates and groups."""

    sources: list[str]
    fields: list[str]
    keys: list[tuple[Hashable, str]]     # item -> (thing, field)
    values: list[Any]                    # candidate -> value
    item_field: Ints                     # item -> field
    item_start: Ints                     # item -> its first candidate (candidates are by item)
    item_count: Ints                     # item -> number of candidates
    cand_item: Ints                      # candidate -> item
    cand_group: Ints                     # candidate -> group
    near_src: Ints                       # candidate pairs within the tolerance, both ways,
    near_dst: Ints                       # a candidate not paired with itself
    mem_group: Ints                      # one row per (group, member source), groups in order,
    mem_source: Ints                     # members in name order
    mem_field: Ints
    order_row: Ints                      # every ordered pair of rows of one group with more
    order_other: Ints                    # than one member, sorted by ``order_row``
    order_pair: Ints                     # source * S + other source, for dependence lookups
    order_members: Ints                  # rows that have pairs, and where their pairs start
    order_starts: Ints
    pair_group: Ints                     # every unordered member pair of a group, and its
    pair_key: Ints                       # (field, a, b) flat key, a before b by name
    coverage: Floats                     # [source, field] items the source gave a value for
    keys_flat: Ints                      # the (field, a, b) keys compared at least once, and
    compared: Ints                       # per such key: items both gave a value for,
    same: Ints                           # and of those, items with the same candidate
    false_values: Floats                 # field -> ACCU's n (mean wrong values, at least 1)

    @property
    def groups(self) -> int:
        return int(self.mem_group[-1]) + 1 if self.mem_group.size else 0


class _Rejected:
    """The type of ``REJECTED``: one instance, equal only to itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "REJECTED"


REJECTED = _Rejected()


def sum_by(index: Ints, weights: npt.ArrayLike, size: int) -> Floats:
    """``weights`` summed per value of ``index`` (0..size-1): numpy's bincount, typed."""
    return cast(Floats, np.bincount(index, weights=weights, minlength=size))


def _as_ints(values: list[int]) -> Ints:
    return np.asarray(values, dtype=np.int64)


def _grouped(claims: Iterable[tuple[Hashable, str, str, Any]],
             rejected: set[tuple[Hashable, str, str]],
             ) -> dict[tuple[Hashable, str], dict[str, Any]]:
    """Values by source per (item, field); REJECTED claims go to ``rejected`` instead."""
    grouped: dict[tuple[Hashable, str], dict[str, Any]] = {}
    for item, field, source, value in claims:
        if value is None:
            continue
        if value is REJECTED:
            rejected.add((item, field, source))
            continue
        by_source = grouped.get((item, field))
        if by_source is None:
            grouped[(item, field)] = {source: value}
        elif source not in by_source:
            # A source that reports an item twice keeps its first value: one source, one vote.
            by_source[source] = value
    return grouped


def build(claims: Iterable[tuple[Hashable, str, str, Any]], tolerance_seconds: float) -> Items:
    """Group ``claims`` into items, candidates and groups; count what pairs of sources share."""
    rejected: set[tuple[Hashable, str, str]] = set()
    grouped = _grouped(claims, rejected)
    # A source that also gave a real value for the item keeps that one (one source, one vote).
    mistakes = [(name, source) for item, name, source in rejected
                if source not in grouped.get((item, name), ())]
    sources = sorted({s for by_source in grouped.values() for s in by_source}
                     | {source for _, source in mistakes})
    fields = sorted({key[1] for key in grouped} | {name for name, _ in mistakes})
    source_index = {s: i for i, s in enumerate(sources)}
    field_index = {f: i for i, f in enumerate(fields)}
    keys = list(grouped)
    values: list[Any] = []
    item_field: list[int] = []
    item_count: list[int] = []
    cand_group: list[int] = []
    near_src: list[int] = []
    near_dst: list[int] = []
    registry: dict[tuple[int, tuple[int, ...]], int] = {}
    key_of_field = [VALUE_KEYS.get(f) for f in fields]
    for key in keys:
        by_source = grouped[key]
        field = field_index[key[1]]
        key_of = key_of_field[field]
        index_of: dict[Hashable, int] = {}
        first = len(values)
        members: list[list[int]] = []
        for source in sorted(by_source):
            value = by_source[source]
            found = index_of.setdefault(
                key_of(value) if key_of is not None
                else value if type(value) in _PLAIN else value_key(value), len(members))
            if found == len(members):
                values.append(value)
                members.append([source_index[source]])
            else:
                members[found].append(source_index[source])
        item_field.append(field)
        item_count.append(len(members))
        cand_group.extend(registry.setdefault((field, tuple(m)), len(registry))
                          for m in members)
        if tolerance_seconds > 0 and len(members) > 1:
            for index, close in enumerate(near_lists(values[first:], tolerance_seconds)):
                for other in close:
                    if other != index:
                        near_src.append(first + index)
                        near_dst.append(first + other)
    count = _as_ints(item_count)
    starts = np.zeros(len(keys), dtype=np.int64)
    if len(keys) > 1:
        starts[1:] = np.cumsum(count)[:-1]
    groups = _as_ints(cand_group)
    built = _with_groups(
        sources=sources, fields=fields, keys=keys, values=values,
        item_field=_as_ints(item_field), item_start=starts, item_count=count,
        cand_item=np.repeat(np.arange(len(keys), dtype=np.int64), count), cand_group=groups,
        near_src=_as_ints(near_src), near_dst=_as_ints(near_dst), registry=list(registry))
    for name, source in mistakes:
        built.coverage[source_index[source], field_index[name]] += 1
    return built


def _with_groups(*, sources: list[str], fields: list[str], keys: list[tuple[Hashable, str]],
                 values: list[Any], item_field: Ints, item_start: Ints, item_count: Ints,
                 cand_item: Ints, cand_group: Ints, near_src: Ints, near_dst: Ints,
                 registry: list[tuple[int, tuple[int, ...]]]) -> Items:
    width, depth = len(sources), len(fields)
    sizes = _as_ints([len(members) for _, members in registry])
    groups_of = np.repeat(np.arange(len(registry), dtype=np.int64), sizes)
    sources_of = _as_ints(list(chain.from_iterable(members for _, members in registry)))
    fields_of = np.repeat(_as_ints([field for field, _ in registry]), sizes)
    rows, others, pair_groups, pair_keys = _member_pairs(sizes, sources_of, fields_of, width)
    order_members, order_starts = np.unique(rows, return_index=True)
    repeats = np.bincount(cand_group, minlength=len(registry)).astype(np.float64)
    coverage = sum_by(sources_of * depth + fields_of, repeats[groups_of],
                      width * depth).reshape(width, depth)
    same = sum_by(pair_keys, repeats[pair_groups], depth * width * width)
    compared = _compared(cand_item=cand_item, cand_group=cand_group, mem_group=groups_of,
                         mem_source=sources_of, item_field=item_field, width=width,
                         depth=depth)
    keys_flat = np.flatnonzero(compared)
    totals = sum_by(item_field, item_count - 1, depth)
    per_field = np.bincount(item_field, minlength=depth)
    return Items(
        sources=sources, fields=fields, keys=keys, values=values, item_field=item_field,
        item_start=item_start, item_count=item_count, cand_item=cand_item,
        cand_group=cand_group, near_src=near_src, near_dst=near_dst, mem_group=groups_of,
        mem_source=sources_of, mem_field=fields_of, order_row=rows, order_other=others,
        order_pair=sources_of[rows] * width + sources_of[others],
        order_members=order_members, order_starts=order_starts,
        pair_group=pair_groups, pair_key=pair_keys, coverage=coverage,
        compared=compared[keys_flat], same=same[keys_flat].astype(np.int64),
        keys_flat=keys_flat,
        false_values=np.maximum(1.0, totals / np.maximum(per_field, 1)))


def _member_pairs(sizes: Ints, sources_of: Ints, fields_of: Ints, width: int,
                  ) -> tuple[Ints, Ints, Ints, Ints]:
    """Ordered pairs of member rows (sorted by the first), and unordered pairs as (group,
    (field, a, b) key): built per group size, a few sizes cover thousands of groups."""
    first_row = np.cumsum(sizes) - sizes
    rows: list[Ints] = []
    others: list[Ints] = []
    pair_groups: list[Ints] = []
    pair_rows: list[Ints] = []
    pair_others: list[Ints] = []
    for size in np.unique(sizes[sizes > 1]).tolist():
        groups = np.flatnonzero(sizes == size)
        base = first_row[groups][:, None]
        a, b = np.nonzero(~np.eye(size, dtype=bool))
        rows.append((base + a).ravel())
        others.append((base + b).ravel())
        upper_a, upper_b = np.triu_indices(size, 1)
        pair_groups.append(np.repeat(groups, upper_a.size))
        pair_rows.append((base + upper_a).ravel())
        pair_others.append((base + upper_b).ravel())
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    row, other = np.concatenate(rows), np.concatenate(others)
    order = np.argsort(row, kind="stable")
    pair_a, pair_b = np.concatenate(pair_rows), np.concatenate(pair_others)
    keys = (fields_of[pair_a] * width + sources_of[pair_a]) * width + sources_of[pair_b]
    return row[order], other[order], np.concatenate(pair_groups), keys


def _compared(*, cand_item: Ints, cand_group: Ints, mem_group: Ints, mem_source: Ints,
              item_field: Ints, width: int, depth: int) -> Ints:
    """Per (field, a, b) with a before b, how many items both sources gave a value for."""
    result = np.zeros((depth, width, width), dtype=np.int64)
    if not cand_item.size:
        return result.ravel()
    # One row per (candidate, member): which item each source spoke on.
    group_start = np.searchsorted(mem_group, np.arange(int(mem_group[-1]) + 1))
    sizes = np.bincount(mem_group)
    counts = sizes[cand_group]
    claim_item = np.repeat(cand_item, counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    claim_source = mem_source[np.repeat(group_start[cand_group], counts) + offsets]
    claim_field = item_field[claim_item]
    for field in range(depth):
        chosen = claim_field == field
        on_items, local = np.unique(claim_item[chosen], return_inverse=True)
        # Integers: a float product would go through BLAS, whose threads spin on the CPU.
        seen = np.zeros((on_items.size, width), dtype=np.int64)
        seen[local, claim_source[chosen]] = 1
        result[field] = np.triu(seen.T @ seen, k=1)
    return result.ravel()
