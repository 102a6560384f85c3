"""Learned source accuracy (policy rule ``accuracy``): recompute, store and read the figures.

The claims are each source's latest observation of each leg (``source_observation``), one
per (leg, field, source); ``estimate_trust_by_field`` turns them into an accuracy per source
and field and a probability that two sources copy each other, which replace the
``source_score`` and ``source_dependence`` rows in one transaction. The engine reads both once
per run; ``explain`` reads the scores again to show the figures behind an ``accuracy`` choice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.errors import FlightsyncError
from flightsync.models import OBSERVED_FIELDS, TIME_FIELDS, to_json_value
from flightsync.policy import Dependence, Policy, Trust
from flightsync.store import Database
from flightsync.store import repository as repo

if TYPE_CHECKING:
    # policy.accuracy brings numpy (~60 ms): imported by the functions that estimate or vote,
    # so `status` and the other commands that only read stored figures never load it.
    from flightsync.policy.accuracy import Claim, TrustModel

log = structlog.get_logger(__name__)

# Observations older than this do not count: providers change (a feed is fixed, an airline
# moves gates to a new system), and the estimate stays fast as the history grows.
HISTORY_DAYS = 30
# The newest (leg, source) observations learned from: at a million tracked flights the whole
# history held in memory took 1.8 GB in a batch's relearn (benchmarks/RESULTS.md, issue 17).
LEARN_FROM = 20_000
ACCURACY_RULE = "accuracy"
_TIME_FIELDS = frozenset(TIME_FIELDS)
_DIGITS = 4


def uses_accuracy(policy: Policy) -> bool:
    """Whether any field of ``policy`` can be decided by the ``accuracy`` rule."""
    return policy.mode == "automatic" and any(
        policy.rule_for(name) == ACCURACY_RULE for name in OBSERVED_FIELDS)


def trust_from(rows: Sequence[Mapping[str, Any]]) -> Trust | None:
    """Stored score rows as the policy's ``Trust`` (None when nothing is stored: cold start)."""
    trust: dict[str, dict[str, float]] = {}
    for row in rows:
        trust.setdefault(row["source"], {})[row["field"]] = float(row["accuracy"])
    return trust or None


def dependence_from(rows: Sequence[Mapping[str, Any]]) -> Dependence | None:
    """Stored dependence rows (one per pair) as the policy's symmetric ``Dependence``."""
    dependence: dict[str, dict[str, float]] = {}
    for row in rows:
        probability = float(row["dependence"])
        dependence.setdefault(row["source"], {})[row["other"]] = probability
        dependence.setdefault(row["other"], {})[row["source"]] = probability
    return dependence or None


def dependence_rows(model: TrustModel) -> list[dict[str, Any]]:
    """The model's dependence as rows to store, each pair once (``source`` before ``other``)."""
    return [{"source": source, "other": other, "dependence": probability}
            for source, others in sorted(model.dependence.items())
            for other, probability in sorted(others.items()) if source < other]


def score_rows(model: TrustModel, claims: Sequence[Claim]) -> list[dict[str, Any]]:
    """The model's accuracies as rows to store, with each source's share of the items."""
    items: dict[str, set[Any]] = {}
    for claim in claims:
        items.setdefault(claim.field, set()).add(claim.item)
    return [
        {"source": source, "field": field, "accuracy": model.trust[source][field],
         "coverage": count / len(items[field]), "observations": count}
        for source, fields in sorted(model.coverage.items())
        for field, count in sorted(fields.items())
    ]


def load_learned(session: Any) -> tuple[Trust | None, Dependence | None]:
    """The stored trust figures and source dependence: one query each."""
    return (trust_from(repo.source_scores(session)),
            dependence_from(repo.source_dependence(session)))


class LearnedFigures:
    """The trust and source dependence one run resolves with, read on its first write."""

    def __init__(self, policy: Policy) -> None:
        self.trust: Trust | None = None
        self.dependence: Dependence | None = None
        self._loaded = not uses_accuracy(policy)  # a policy without the rule never reads them

    def load(self, session: Any) -> None:
        """Read the stored figures once per run (the write's session: one query each)."""
        if not self._loaded:
            self.trust, self.dependence = load_learned(session)
            self._loaded = True


def load_trust(database: Database) -> Trust | None:
    """The stored trust figures, in one query."""
    with database.session() as session:
        return trust_from(repo.source_scores(session))


def claim_value(field: str, value: Any) -> Any:
    """A stored (JSON) observation value as the domain value the vote compares."""
    if value is None:
        return None
    if field in _TIME_FIELDS:
        parsed = datetime.fromisoformat(str(value))
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if field == "codeshares":
        # A set: two providers listing the same codeshares in another order agree.
        return frozenset(value) if value else None
    return value


def claims_of(rows: Sequence[tuple[int, str, Mapping[str, Any]]]) -> Iterator[Claim]:
    """One claim per (leg id, field, source) that reported a value; a value the
    plausibility checks dropped (``repo.REJECTED_KEY``) is a claim known to be false."""
    from flightsync.policy.accuracy import REJECTED, Claim  # noqa: PLC0415 - numpy: see above

    for leg_id, source, values in rows:
        for field in OBSERVED_FIELDS:
            value = claim_value(field, values.get(field))
            if value is not None:
                yield Claim(leg_id, field, source, value)
        rejected = values.get(repo.REJECTED_KEY)
        for item in rejected if isinstance(rejected, list) else ():
            name = item.get("field") if isinstance(item, Mapping) else None
            if name in OBSERVED_FIELDS:
                yield Claim(leg_id, name, source, REJECTED)


def recompute(database: Database, policy: Policy, *, now: datetime | None = None,
              ) -> dict[str, Any]:
    """Learn every source's accuracy from the recent history and replace the stored scores.

    Returns what ``sources --recompute`` prints: the stored figures plus ``history``.
    """
    from flightsync.policy.accuracy import estimate_trust_by_field  # noqa: PLC0415

    now = now or datetime.now(UTC)
    since = now - timedelta(days=HISTORY_DAYS)
    with database.session() as session:
        rows = repo.latest_observation_values(session, since=since, limit=LEARN_FROM)
    claims = list(claims_of(rows))
    legs = len({leg for leg, _, _ in rows})
    # The rows' value dicts (~40 MB at LEARN_FROM) go before the estimate's own peak, not
    # after it: a `batch --due` of 10,000 peaked at 275 MB here (benchmarks/RESULTS.md).
    del rows
    tolerance = policy.time_tolerance_minutes
    # Passes seeded across fields pick the right camp where two camps of sources each agree
    # among themselves (benchmarks/fusion/README.md: 0.83 -> 0.96 on the real data).
    model = estimate_trust_by_field(claims, tolerance_minutes=tolerance)
    scores = score_rows(model, claims)
    # The estimate runs outside any transaction; only the replacement holds one, so readers
    # see the scores and the dependence of the same estimate.
    with database.session() as session:
        stored = repo.replace_source_scores(session, scores, now=now)
        pairs = repo.replace_source_dependence(session, dependence_rows(model), now=now)
    log.info("sources.recomputed", legs=legs, claims=len(claims), scores=stored,
             dependence=pairs, iterations=model.iterations, converged=model.converged)
    out = report(database, recomputed=True)
    out["history"] = {
        "since": to_json_value(since), "legs": legs,
        "claims": len(claims), "iterations": model.iterations, "converged": model.converged,
        "copies": [pair.to_json() for pair in model.copies],
    }
    return out


def report(database: Database, *, recomputed: bool = False) -> dict[str, Any]:
    """The stored figures as ``sources`` prints them (docs/CONTRACTS.md §3: snake_case, README)."""
    from flightsync.policy.accuracy import DEFAULT_PRIOR  # noqa: PLC0415

    with database.session() as session:
        rows = repo.source_scores(session)
    sources: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        sources.setdefault(row["source"], {})[row["field"]] = {
            "accuracy": round(float(row["accuracy"]), _DIGITS),
            "coverage": round(float(row["coverage"]), _DIGITS),
            "observations": int(row["observations"]),
        }
    computed = max((row["computed_at"] for row in rows if row["computed_at"]), default=None)
    return {"recomputed": recomputed, "computed_at": to_json_value(computed),
            "prior": DEFAULT_PRIOR, "sources": sources}


def figures_behind(field: str, observed: Mapping[str, Any], trust: Trust | None,
                   policy: Policy) -> dict[str, float]:
    """The accuracy each source that reported ``field`` (``observed``: source -> stored JSON
    value) counts with in the ``accuracy`` vote; a source without a score counts at the
    prior."""
    from flightsync.policy.accuracy import choose  # noqa: PLC0415

    values = {source: claim_value(field, value) for source, value in observed.items()}
    values = {source: value for source, value in values.items() if value is not None}
    if not values:
        return {}
    _, _, figures = choose(field, values, trust, policy.time_tolerance_minutes, ())
    return {source: round(figure, _DIGITS) for source, figure in sorted(figures.items())}


# Relearning reads the whole observation history: once an hour is plenty for figures that
# move over days, and `sources --recompute` forces it.
RELEARN_EVERY = timedelta(hours=1)


def relearn_after(database: Database, policy: Policy, *, fetched: bool) -> None:
    """Relearn the scores after a batch that ``fetched`` something new (a flight synced not
    from the cache), at most once per RELEARN_EVERY; a failure is logged and does not undo
    the flights the batch wrote."""
    if not fetched:
        return
    with database.session() as session:
        last = repo.last_scores_at(session)
    if last is not None and datetime.now(UTC) - last < RELEARN_EVERY:
        return  # the 15-minute cron would otherwise relearn the whole history every run
    try:
        recompute(database, policy)
    except FlightsyncError as exc:
        log.warning("sources.recompute.failed", code=exc.code, error=str(exc))
