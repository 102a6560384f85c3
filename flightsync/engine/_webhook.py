"""Inbound webhooks (docs/CONTRACTS.md section 6): apply each event once.

An event (read and checked by ``_inbound``) is one provider's report about one leg. It becomes
that provider's latest observation of the leg and goes through ``merge`` and ``write_flight``
with the other sources' latest stored observations, exactly as a sync would: a webhook cannot
overwrite what the policy ranks higher. The ``webhook_event`` row (id and payload hash) is
written in the same transaction as the change, so a replayed event id is a no-op even when two
deliveries race, and an id sent again with another body is refused (WebhookIdReusedError).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy.exc import DataError, IntegrityError

from flightsync.engine import _sources
from flightsync.engine._due import still_tracked
from flightsync.engine._inbound import InboundEvent, claimed_id, named_by, read_event
from flightsync.engine._killpoint import reached
from flightsync.engine._merge import merge, operating_carrier
from flightsync.engine._results import sync_status_of
from flightsync.engine._screen import screen
from flightsync.engine._stored import keep_settled, stored_observations
from flightsync.errors import (
    ConcurrentUpdateError,
    WebhookIdReusedError,
    WebhookPayloadError,
)
from flightsync.models import (
    FieldConflict,
    FlightQuery,
    Leg,
    Observation,
    SourceOutcome,
    SyncResult,
    to_json_value,
)
from flightsync.providers import registry
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What became of one event (the JSON of ``ingest-webhook``)."""

    event_id: str | None
    status: Literal["applied", "duplicate", "rejected"]  # a reused id is rejected
    provider: str | None = None
    query: FlightQuery | None = None
    origin: str | None = None
    result: SyncResult | None = None
    error: dict[str, str] | None = None
    conflicts: tuple[FieldConflict, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        result = self.result
        leg = next((r for r in result.legs if r.origin == self.origin), None) if result else None
        out: dict[str, Any] = {
            "event_id": self.event_id, "status": self.status, "provider": self.provider,
            "designator": self.query.designator if self.query else None,
            "date": self.query.departure_date.isoformat() if self.query else None,
            "origin": self.origin,
            "flight": leg.to_json() if leg else None,
            "changed_fields": list(result.changed_fields) if result else [],
            "conflicts": [
                {"field": c.field, "leg_index": c.leg_index,
                 "values": {k: to_json_value(v) for k, v in c.values.items()},
                 "chosen": to_json_value(c.chosen), "rule": c.rule, "escalated": c.escalated}
                for c in (result.conflicts if result else ())],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


# -- applying ----------------------------------------------------------------------------

def ingest(engine: Engine, body: bytes, headers: Mapping[str, str], *, insecure: bool,
           notify: bool, now: datetime | None = None,
           received: datetime | None = None, record_run: bool = True) -> WebhookOutcome:
    """Recognise, verify, validate and apply one event; raise WebhookError when it is rejected.

    An event already applied is recognised by its id before anything else is checked (its
    signature may have expired since: a spool drained late, or again after a crash): it is a
    duplicate when its body is the one applied, WebhookIdReusedError otherwise. ``received``
    is when the event arrived (the signature's tolerance is measured from it; default now).
    ``record_run`` False leaves the engine's run row alone (`flightsync serve`: one long-lived
    engine serving concurrent requests records no run per event).
    """
    when = now or datetime.now(UTC)
    webhooks = engine.settings.webhooks
    event_id = claimed_id(body, headers, insecure=insecure, max_bytes=webhooks.max_bytes)
    outcome = _known(engine, event_id, body) if event_id is not None else None
    if outcome is None:
        event = read_event(body, headers, secret=engine.settings.webhook_secret,
                           tolerance_seconds=webhooks.tolerance_seconds,
                           max_bytes=webhooks.max_bytes, insecure=insecure,
                           known_providers=registry.names(), now=received or when)
        outcome = apply_once(engine, event, when)
    return finish(engine, outcome, notify=notify, record_run=record_run)


def finish(engine: Engine, outcome: WebhookOutcome, *, notify: bool,
           record_run: bool = True) -> WebhookOutcome:
    """After the commit: the run row, the log line, the cache and the subscribers."""
    if not record_run:
        if outcome.result is None or outcome.query is None:
            log.info("webhook.duplicate", event_id=outcome.event_id, provider=outcome.provider)
            return outcome
        _after_change(engine, outcome, notify=notify)
        return outcome
    # The engine's own run row (one per command), shared with sync and batch.
    engine.runbook.start(1)
    if outcome.result is None or outcome.query is None:
        engine.runbook.finish([])
        log.info("webhook.duplicate", event_id=outcome.event_id, provider=outcome.provider)
        reached("webhook.recorded")
        return outcome
    engine.runbook.finish([outcome.result])
    _after_change(engine, outcome, notify=notify)
    reached("webhook.recorded")
    return outcome


def _after_change(engine: Engine, outcome: WebhookOutcome, *, notify: bool) -> None:
    assert outcome.result is not None and outcome.query is not None
    changed = outcome.result.changed_fields
    log.info("webhook.applied", event_id=outcome.event_id, provider=outcome.provider,
             flight=outcome.query.key, changed=list(changed),
             conflicts=len(outcome.result.conflicts))
    if changed:
        engine.cache.drop(outcome.query)
        if notify and engine.notifier is not None:
            engine.notifier.notify([outcome.result], run_id=engine.run_id)


def _known(engine: Engine, event_id: str, body: bytes) -> WebhookOutcome | None:
    """The outcome of an id applied before (a duplicate, or WebhookIdReusedError when the body
    differs), None for an id never applied."""
    with engine.database.session() as session:
        stored = repo.webhook_event_hash(session, event_id)
    if stored is None:
        return None
    if stored != hashlib.sha256(body).hexdigest():
        raise _reused(event_id)
    provider, query, origin = named_by(body)
    return WebhookOutcome(event_id=event_id, status="duplicate", provider=provider,
                          query=query, origin=origin)


def _reused(event_id: str) -> WebhookIdReusedError:
    return WebhookIdReusedError(
        f"webhook-id {event_id[:40]!r} was applied before with a different body: not a "
        "replay of that event and not applied; a new event needs a new id", event_id=event_id)


def apply_once(engine: Engine, event: InboundEvent, now: datetime) -> WebhookOutcome:
    """Apply ``event`` in one transaction with its ``webhook_event`` row: applied once, a
    duplicate after (WebhookIdReusedError for the same id with another body)."""
    duplicate = WebhookOutcome(event_id=event.event_id, status="duplicate",
                               provider=event.provider, query=event.query, origin=event.origin)
    for attempt in range(2):
        try:
            with engine.database.session() as session:
                stored = repo.webhook_event_hash(session, event.event_id)
                if stored is not None:
                    return _seen(event, stored, duplicate)
                # Inserted first: a concurrent delivery of the same id blocks on (PostgreSQL)
                # or serializes behind (SQLite) this row, then fails its unique check.
                row = repo.record_webhook_event(
                    session, event_id=event.event_id, source=event.provider, received_at=now,
                    payload_hash=event.payload_hash, outcome="applied")
                result, origin = _apply(engine, session, event, now)
                repo.link_webhook_event(session, row, repo.leg_id(
                    session, repo.key_of(event.query), origin))
                reached("webhook.before_commit")
            reached("webhook.committed")
        except (IntegrityError, ConcurrentUpdateError):
            with engine.database.session() as session:
                stored = repo.webhook_event_hash(session, event.event_id)
            if stored is not None:
                return _seen(event, stored, duplicate)
            if attempt:
                raise
            continue  # another writer changed the flight meanwhile: once more, fresh values
        except DataError as exc:
            # A value the database cannot store (validation should have refused it first):
            # this event is refused, the run goes on.
            raise WebhookPayloadError(f"the database refused a value of the event: "
                                      f"{str(exc.orig or exc).splitlines()[0][:120]}",
                                      event_id=event.event_id) from None
        return replace(duplicate, status="applied", origin=origin, result=result)
    raise AssertionError("unreachable")


def _seen(event: InboundEvent, stored_hash: str, duplicate: WebhookOutcome) -> WebhookOutcome:
    if stored_hash != event.payload_hash:
        raise _reused(event.event_id)
    return duplicate


def _apply(engine: Engine, session: Session, event: InboundEvent,
           now: datetime) -> tuple[SyncResult, str]:
    query = event.query
    stored = repo.load_legs(session, [repo.key_of(query)]).get(repo.key_of(query), [])
    origin = _target_origin(event, stored)
    observations = stored_observations(session, query, stored)
    mine = observations.get(event.provider)
    legs = {leg.origin: leg for leg in mine.legs} if mine else {}
    base = legs.get(origin, Leg(origin=origin))
    legs[origin] = replace(base, **event.changes)
    order = [leg.origin for leg in stored] or [origin]
    observations[event.provider] = screen(Observation(
        # A sender's clock ahead of ours must not win every later most_recent decision.
        provider=event.provider, query=query, fetched_at=now,
        updated_at=min(event.occurred_at, now),
        raw=event.raw, legs=tuple(legs[o] for o in order if o in legs)),
        engine.policy.plausibility, now=now)
    sources = list(observations.values())
    carrier = operating_carrier(sources) or query.carrier
    trust, dependence = (_sources.load_learned(session)
                         if _sources.uses_accuracy(engine.policy) else (None, None))
    merged = merge(engine.policy, sources, stored,
                   ranks={name: engine.provider_set.priority(name) for name in observations},
                   operating_carrier_source=_own_source(engine, carrier, observations),
                   trust=trust, dependence=dependence)
    for leg in merged.legs:  # only the event is a new observation; the rest is already stored
        leg.observations = {s: v for s, v in leg.observations.items()
                            if s == event.provider and leg.origin == origin}
    keep_settled(session, [(stored, merged)])  # as a sync: a settled disagreement stays so
    resolved = [Leg(origin=leg.origin, **leg.values) for leg in merged.legs]
    # A flight first met through a webhook is due for a full sync at once.
    next_due = now + timedelta(seconds=engine.cache.ttl_for(resolved, now)) if stored else now
    status = sync_status_of([], merged.conflicts)
    written = repo.write_flight(
        session, query, merged.legs, stored, run_id=engine.run_id, now=now,
        sync_status=status.value, next_due=next_due,
        tracked=still_tracked(resolved, now),
        source_of_truth=merged.source_of_truth)
    result = SyncResult(
        query=query, success=True, sync_status=status, from_cache=False, legs=written.records,
        sources=(SourceOutcome(name=event.provider, ok=True, ms=0),),
        conflicts=tuple(merged.conflicts),
        changed_fields=tuple(dict.fromkeys(f for _, f in written.changed)))
    return result, origin


def _target_origin(event: InboundEvent, stored: Sequence[repo.StoredLeg]) -> str:
    origins = [leg.origin for leg in stored]
    where = f"{event.query.designator} on {event.query.departure_date}"
    if event.origin is not None:
        if origins and event.origin not in origins:
            raise WebhookPayloadError(f"origin {event.origin} is not a leg of {where} (legs "
                                      f"from {', '.join(origins)})", event_id=event.event_id)
        return event.origin
    if len(origins) > 1:
        raise WebhookPayloadError(f"origin is required: {where} has {len(origins)} legs (from "
                                  f"{', '.join(origins)})", event_id=event.event_id)
    if not origins:
        raise WebhookPayloadError(f"{where} is not stored yet: give its origin to create it",
                                  event_id=event.event_id)
    return origins[0]


def _own_source(engine: Engine, carrier: str, sources: Mapping[str, Any]) -> str | None:
    """The operating airline's own provider among ``sources``, configured here or not."""
    for name in sources:
        carriers = engine.provider_set.carriers(name)
        if carriers is not None and carrier in carriers:
            return name
    return None
