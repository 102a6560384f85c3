"""What the providers said last, read back from ``source_observation`` to resolve again.

A webhook brings one provider's news and a sync limited to ``--source`` brings a few
providers' answers; neither may let the policy choose among those few alone, or it would
overwrite what a higher-ranked (or more severe, or more recent) provider established. Both
resolve their news together with the other providers' latest stored observations, read here
inside the caller's write transaction so that the optimistic version check covers them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flightsync.engine._ops import parse_field_value
from flightsync.models import OBSERVED_FIELDS, FlightQuery, Leg, Observation
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# One flight to read: its query, its stored legs, and the sources wanted (None: every one).
StoredFlight = tuple[FlightQuery, Sequence[repo.StoredLeg], Collection[str] | None]


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
            times[source] = (row["observed_at"], row["provider_updated_at"])
    return {source: Observation(provider=source, query=query, legs=tuple(found),
                                fetched_at=times[source][0], updated_at=times[source][1],
                                raw="")
            for source, found in legs.items()}
