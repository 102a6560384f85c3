"""What the providers said last, read back from ``source_observation`` to resolve again.

A webhook brings one provider's news and a sync limited to ``--source`` brings a few
providers' answers; neither may let the policy choose among those few alone, or it would
overwrite what a higher-ranked (or more severe, or more recent) provider established. Both
resolve their news together with the other providers' latest stored observations, read here
inside the caller's write transaction so that the optimistic version check covers them.

What an operator decided is read back here too (``keep_settled``): a disagreement settled with
``conflicts resolve`` is not escalated again while the providers keep saying the same thing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flightsync.engine._merge import Merged
from flightsync.engine._ops import parse_field_value
from flightsync.models import (
    OBSERVED_FIELDS,
    FieldConflict,
    FlightQuery,
    Leg,
    Observation,
    to_json_value,
)
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# One flight to read: its query, its stored legs, and the sources wanted (None: every one).
StoredFlight = tuple[FlightQuery, Sequence[repo.StoredLeg], Collection[str] | None]

OPERATOR_RULE = "operator"  # the rule of a disagreement an operator has already settled


def stored_observations(session: Session, query: FlightQuery,
                        stored: Sequence[repo.StoredLeg], *,
                        sources: Collection[str] | None = None) -> dict[str, Observation]:
    """Each source's latest stored observation of every leg, as one Observation per source
    (only those of ``sources`` when given)."""
    return stored_observations_of(session, [(query, stored, sources)])[0]


def stored_observations_of(session: Session,
                           flights: Sequence[StoredFlight]) -> list[dict[str, Observation]]:
    """``stored_observations`` for each of ``flights`` (in order), in one query: a write
    group reads them all at once."""
    ids = [leg.id for _, stored, sources in flights if sources is None or sources
           for leg in stored]
    by_leg = repo.observations_for(session, ids) if ids else {}
    return [_as_observations(query, stored, sources, by_leg)
            for query, stored, sources in flights]


def keep_observations(legs: Sequence[repo.LegWrite], sources: Collection[str]) -> None:
    """Record only the observations of ``sources`` with the write: the others were read
    from the store, and recording them again would pass them off as new reports."""
    for leg in legs:
        leg.observations = {s: v for s, v in leg.observations.items() if s in sources}


def keep_settled(session: Session,
                 flights: Iterable[tuple[Sequence[repo.StoredLeg], Merged | None]]) -> None:
    """Stand down the escalated conflicts an operator has already settled, in place.

    A stored leg's escalated conflict whose candidates (values by source, rendered as the
    conflict row keeps them) equal those of the latest resolved conflict on that leg and field
    is the disagreement the operator decided: it stays in the result with ``escalated`` false
    and rule ``operator``, so it opens no row and does not make the sync a ``conflict``, and
    the leg keeps its stored value, the operator's. Any change (a value, a new source)
    escalates as before. One query for all of ``flights`` (None: a flight with nothing
    merged), none when nothing is escalated.
    """
    waiting: list[tuple[Merged, repo.LegWrite, repo.StoredLeg]] = []
    for stored, merged in flights:
        if merged is None or not any(c.escalated for c in merged.conflicts):
            continue
        by_origin = repo.match_stored_legs(stored, [leg.origin for leg in merged.legs])
        # A new leg has no history; a field with an open conflict is still the operator's.
        waiting.extend((merged, leg, old) for leg in merged.legs
                       if (old := by_origin.get(leg.origin)) is not None
                       and any(_would_open(c, old) for c in leg.conflicts))
    if not waiting:
        return
    settled = repo.latest_resolved_candidates(session, {
        (old.id, c.field) for _, leg, old in waiting for c in leg.conflicts
        if _would_open(c, old)})
    if not settled:
        return
    for _, leg, old in waiting:
        leg.conflicts = [
            replace(c, escalated=False, rule=OPERATOR_RULE) if _would_open(c, old)
            and settled.get((old.id, c.field)) == _candidates(c.values) else c
            for c in leg.conflicts]
    for merged in {id(m): m for m, _, _ in waiting}.values():
        # A flight's conflicts are its legs' conflicts, in leg order (as merge lists them).
        merged.conflicts[:] = [c for leg in merged.legs for c in leg.conflicts]


def _would_open(conflict: FieldConflict, old: repo.StoredLeg) -> bool:
    """Whether ``conflict`` is escalated and would open a row on ``old``, which holds a value
    for the field (the one kept)."""
    return (conflict.escalated and conflict.field not in old.open_conflicts
            and old.values.get(conflict.field) is not None)


def _candidates(values: dict[str, Any]) -> dict[str, Any]:
    """Values by source as a conflict row's ``candidates`` JSON holds them."""
    return {source: to_json_value(value) for source, value in values.items()}


def _as_observations(query: FlightQuery, stored: Sequence[repo.StoredLeg],
                     sources: Collection[str] | None,
                     by_leg: dict[int, dict[str, Any]]) -> dict[str, Observation]:
    legs: dict[str, list[Leg]] = {}
    times: dict[str, tuple[datetime, datetime | None]] = {}
    for leg in stored:
        for source, row in by_leg.get(leg.id, {}).items():
            if sources is not None and source not in sources:
                continue
            values = {name: parse_field_value(name, raw) for name, raw in row["values"].items()
                      if name in OBSERVED_FIELDS and raw is not None}
            legs.setdefault(source, []).append(Leg(origin=leg.origin, **values))
            # When the provider last said it: an unchanged re-fetch only confirms the row.
            times[source] = (row["confirmed_at"], row["provider_updated_at"])
    return {source: Observation(provider=source, query=query, legs=tuple(found),
                                fetched_at=times[source][0], updated_at=times[source][1],
                                raw="")
            for source, found in legs.items()}
