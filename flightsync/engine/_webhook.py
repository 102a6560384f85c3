"""Inbound webhooks (DESIGN.md section 6): verify, validate, apply once.

An event is one provider's report about one leg. It is checked like a provider answer
(signature, size, strict schema, known provider, typed values), then becomes that provider's
latest observation of the leg and goes through ``merge`` and ``write_flight`` with the other
sources' latest stored observations, exactly as a sync would: a webhook cannot overwrite what
the policy ranks higher. The ``webhook_event`` row is written in the same transaction as the
change, so a replayed event id is a no-op even when two deliveries race.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import structlog
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from sqlalchemy.exc import IntegrityError

from flightsync.engine import _signing, _sources
from flightsync.engine._due import still_tracked
from flightsync.engine._merge import merge, operating_carrier
from flightsync.engine._results import sync_status_of
from flightsync.engine._screen import screen
from flightsync.engine._stored import keep_settled, stored_observations
from flightsync.errors import (
    ConcurrentUpdateError,
    InputError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from flightsync.models import (
    OBSERVED_FIELDS,
    FieldConflict,
    FlightQuery,
    FlightStatus,
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

EVENT_TYPE = "flight.updated"
_Iata = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
_Short = Annotated[str, StringConstraints(min_length=1, max_length=16)]
_Designator = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Changes(_Strict):
    """Every field a provider can report (models.OBSERVED_FIELDS), typed; null is refused."""

    destination: _Iata | None = None
    status: FlightStatus | None = None
    scheduled_departure: AwareDatetime | None = None
    estimated_departure: AwareDatetime | None = None
    actual_departure: AwareDatetime | None = None
    scheduled_arrival: AwareDatetime | None = None
    estimated_arrival: AwareDatetime | None = None
    actual_arrival: AwareDatetime | None = None
    departure_terminal: _Short | None = None
    departure_gate: _Short | None = None
    arrival_terminal: _Short | None = None
    arrival_gate: _Short | None = None
    baggage_belt: _Short | None = None
    aircraft_type: Annotated[str, StringConstraints(min_length=1, max_length=8)] | None = None
    aircraft_registration: _Short | None = None
    codeshares: tuple[_Designator, ...] | None = None
    operating_carrier: Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,3}$")] | None = None
    operating_flight_number: Annotated[int, Field(ge=1, le=9999)] | None = None
    diverted_to: _Iata | None = None


class _Event(_Strict):
    type: Literal["flight.updated"]
    provider: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    flight: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    date: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    occurred_at: AwareDatetime
    origin: _Iata | None = None
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    changes: _Changes


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A verified, validated event, ready to apply."""

    event_id: str
    provider: str
    query: FlightQuery
    origin: str | None
    occurred_at: datetime
    changes: dict[str, Any]
    payload_hash: str
    raw: str


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """What became of one event (the JSON of ``ingest-webhook``)."""

    event_id: str | None
    status: Literal["applied", "duplicate", "rejected"]
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


def read_event(body: bytes, headers: Mapping[str, str], *, secret: str | None,
               tolerance_seconds: float, max_bytes: int, insecure: bool,
               known_providers: Sequence[str], now: datetime) -> InboundEvent:
    """Verify and validate one event; WebhookSignatureError or WebhookPayloadError (exit 2),
    one line naming the problem, otherwise."""
    if len(body) > max_bytes:
        raise WebhookPayloadError(f"payload exceeds the limit of {max_bytes} bytes "
                                  "(webhooks.max_bytes)")
    lowered = _signing.lower_keys(headers)
    event_id: str | None = None
    if insecure:
        event_id = lowered.get(_signing.ID_HEADER) or None
    elif secret is None:
        raise WebhookSignatureError(
            "no webhook secret configured (FLIGHTSYNC_WEBHOOK_SECRET): every event is refused; "
            "set the secret, or pass --insecure to accept unsigned events for testing")
    else:
        key = _signing.parse_secret(secret, where="environment variable FLIGHTSYNC_WEBHOOK_SECRET")
        event_id = _signing.verify(key, headers, body, now=now.timestamp(),
                                   tolerance_seconds=tolerance_seconds)
    try:
        event = _Event.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise WebhookPayloadError(_describe(exc), event_id=event_id) from None
    given = event.changes.model_fields_set
    nulls = sorted(name for name in given if getattr(event.changes, name) is None)
    if nulls:
        raise WebhookPayloadError(f"changes.{nulls[0]}: null is not a value; leave out the "
                                  "fields the event does not report", event_id=event_id)
    if not given:
        raise WebhookPayloadError("changes is empty: nothing to apply", event_id=event_id)
    if event.provider not in known_providers:
        raise WebhookPayloadError(f"unknown provider {event.provider!r} (known: "
                                  f"{', '.join(known_providers)})", event_id=event_id)
    event_id = event_id or event.id
    if event_id is None:
        raise WebhookPayloadError("no event id: send the webhook-id header (or, with "
                                  "--insecure and no headers, an `id` key in the body)")
    if len(event_id) > 128:
        raise WebhookPayloadError("webhook-id is longer than 128 characters")
    try:
        query = FlightQuery.parse(event.flight, event.date)
    except InputError as exc:
        raise WebhookPayloadError(exc.message, event_id=event_id) from None
    changes = {name: _domain(getattr(event.changes, name)) for name in OBSERVED_FIELDS
               if name in given}
    return InboundEvent(
        event_id=event_id, provider=event.provider, query=query, origin=event.origin,
        occurred_at=event.occurred_at.astimezone(UTC), changes=changes,
        payload_hash=hashlib.sha256(body).hexdigest(), raw=body.decode("utf-8", "replace"))


def _domain(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _describe(exc: ValidationError) -> str:
    """The first problem of a validation error as one line naming the key."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    path = ".".join(loc)
    kind = error["type"]
    if kind == "json_invalid":
        return f"malformed JSON: {error['msg'].removeprefix('Invalid JSON: ')}"
    if kind == "model_type" and not loc:
        return "payload must be a JSON object"
    if kind == "extra_forbidden":
        if loc[0] == "changes" and len(loc) == 2:
            return (f"unknown flight field {loc[1]!r} in changes (known: "
                    f"{', '.join(OBSERVED_FIELDS)})")
        return f"unknown key {path!r} (known: {', '.join(_Event.model_fields)})"
    if kind == "missing":
        return f"missing key {path!r}"
    shown = json.dumps(error.get("input"), default=str)
    return f"{path}: {error['msg']}, got {shown[:40]}"


# -- applying ----------------------------------------------------------------------------

def ingest(engine: Engine, body: bytes, headers: Mapping[str, str], *, insecure: bool,
           notify: bool, now: datetime | None = None) -> WebhookOutcome:
    """Verify, validate and apply one event; raise WebhookError when it is rejected."""
    when = now or datetime.now(UTC)
    webhooks = engine.settings.webhooks
    event = read_event(body, headers, secret=engine.settings.webhook_secret,
                       tolerance_seconds=webhooks.tolerance_seconds,
                       max_bytes=webhooks.max_bytes, insecure=insecure,
                       known_providers=registry.names(), now=when)
    outcome = _apply_once(engine, event, when)
    # The engine's own run row (one per command), shared with sync and batch.
    engine.runbook.start(1)
    if outcome.result is None:
        engine.runbook.finish([])
        log.info("webhook.duplicate", event_id=event.event_id, provider=event.provider)
        return outcome
    engine.runbook.finish([outcome.result])
    changed = outcome.result.changed_fields
    log.info("webhook.applied", event_id=event.event_id, provider=event.provider,
             flight=event.query.key, changed=list(changed),
             conflicts=len(outcome.result.conflicts))
    if changed:
        engine.cache.drop(event.query)
        if notify and engine.notifier is not None:
            engine.notifier.notify([outcome.result], run_id=engine.run_id)
    return outcome


def _apply_once(engine: Engine, event: InboundEvent, now: datetime) -> WebhookOutcome:
    duplicate = WebhookOutcome(event_id=event.event_id, status="duplicate",
                               provider=event.provider, query=event.query, origin=event.origin)
    for attempt in range(2):
        try:
            with engine.database.session() as session:
                if repo.webhook_event_seen(session, event.event_id):
                    return duplicate
                # Inserted first: a concurrent delivery of the same id blocks on (PostgreSQL)
                # or serializes behind (SQLite) this row, then fails its unique check.
                row = repo.record_webhook_event(
                    session, event_id=event.event_id, source=event.provider, received_at=now,
                    payload_hash=event.payload_hash, outcome="applied")
                result, origin = _apply(engine, session, event, now)
                repo.link_webhook_event(session, row, repo.leg_id(
                    session, repo.key_of(event.query), origin))
        except (IntegrityError, ConcurrentUpdateError):
            with engine.database.session() as session:
                if repo.webhook_event_seen(session, event.event_id):
                    return duplicate
            if attempt:
                raise
            continue  # another writer changed the flight meanwhile: once more, fresh values
        return replace(duplicate, status="applied", origin=origin, result=result)
    raise AssertionError("unreachable")


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
