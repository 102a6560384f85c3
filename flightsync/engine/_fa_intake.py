"""FlightAware alert deliveries (README, "Webhook server"): each becomes a ``flightaware``
observation of one leg, resolved by the policy like a sync, once.

The flight is the one the alert was registered for (``fa_alert``), else the one the delivery
names (its IATA ident and the leg's scheduled departure date at the origin). A delivery for a
flight not stored yet creates it from the route it names, tracked like any other (and due for
a full sync at once). AeroAPI gives a delivery no id: the body's hash is its id, so the same
delivery posted twice is applied once (a duplicate, answered 2xx).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from flightsync.engine._inbound import InboundEvent
from flightsync.engine._webhook import WebhookOutcome, apply_once, finish
from flightsync.errors import InputError, WebhookPayloadError
from flightsync.models import FlightQuery
from flightsync.providers._fa_delivery import Delivery, parse_delivery
from flightsync.store import repository as repo

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine

log = structlog.get_logger(__name__)

PROVIDER = "flightaware"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A delivery that names no leg (a partial one): accepted, nothing to apply."""

    event_code: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"status": "ignored", "event_code": self.event_code, "reason": self.reason}


def event_id_of(body: bytes) -> str:
    return f"flightaware-{hashlib.sha256(body).hexdigest()[:40]}"


def check_delivery(body: bytes) -> Delivery:
    """The delivery in ``body`` (WebhookPayloadError when it is none): what the server checks
    before it spools a delivery it cannot apply now."""
    return parse_delivery(body)


def ingest_delivery(engine: Engine, body: bytes, *, notify: bool,
                    now: datetime | None = None,
                    record_run: bool = True) -> WebhookOutcome | Ignored:
    """Apply one delivery (``body`` as posted); a duplicate when applied before."""
    when = now or datetime.now(UTC)
    delivery = parse_delivery(body)
    event_id = event_id_of(body)
    payload_hash = hashlib.sha256(body).hexdigest()
    with engine.database.session() as session:
        seen = repo.webhook_event_hash(session, event_id)
        alert = (repo.alert_by_id(session, delivery.alert_id)
                 if delivery.alert_id is not None else None)
    if seen is not None:
        log.info("webhook.duplicate", event_id=event_id, provider=PROVIDER)
        return WebhookOutcome(event_id=event_id, status="duplicate", provider=PROVIDER)
    if delivery.leg is None:
        log.info("flightaware.delivery.ignored", alert_id=delivery.alert_id,
                 event_code=delivery.event_code)
        return Ignored(delivery.event_code, "the delivery names no leg (no scheduled time or "
                                            "no known origin airport)")
    query = _query(delivery, alert)
    changes = {name: value for name, value in delivery.leg.values().items()
               if name != "origin"}
    event = InboundEvent(event_id=event_id, provider=PROVIDER, query=query,
                         origin=delivery.leg.origin, occurred_at=when, changes=changes,
                         payload_hash=payload_hash, raw=body.decode("utf-8", "replace"))
    outcome = apply_once(engine, event, when)
    log.info("flightaware.delivery", alert_id=delivery.alert_id,
             event_code=delivery.event_code, flight=query.key, status=outcome.status)
    return finish(engine, outcome, notify=notify, record_run=record_run)


def _query(delivery: Delivery, alert: dict[str, object] | None) -> FlightQuery:
    if alert is not None:
        day = alert["departure_date"]
        carrier, number, suffix = alert["carrier"], alert["flight_number"], alert["suffix"]
        if isinstance(carrier, str) and isinstance(number, int) and isinstance(suffix, str) \
                and day is not None and hasattr(day, "isoformat"):
            return FlightQuery.parse(f"{carrier}{number}{suffix}", str(day.isoformat()))
    if delivery.designator is None or delivery.day is None:
        raise WebhookPayloadError("flightaware delivery: names no flight flightsync knows "
                                  "(no ident_iata, operator_iata and flight_number, and an "
                                  "alert_id that is not registered here)")
    try:
        return FlightQuery.parse(delivery.designator, delivery.day)
    except InputError as exc:
        raise WebhookPayloadError(f"flightaware delivery: {exc.message}") from None


__all__ = ["Ignored", "check_delivery", "event_id_of", "ingest_delivery"]
