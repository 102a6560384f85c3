"""Webhooks in, change notifications out (issue 5): the idempotency rows of received webhook
events and the delivery rows of outbound notifications.

Every function takes an open Session and leaves committing to the caller.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flightsync.store.tables import NotificationDelivery, WebhookEvent

_EVENT = WebhookEvent.__table__  # type: ignore[attr-defined]
_DELIVERY = NotificationDelivery.__table__  # type: ignore[attr-defined]


def webhook_event_seen(session: Session, event_id: str) -> bool:
    return session.execute(select(_EVENT.c.id).where(_EVENT.c.event_id == event_id)
                           ).first() is not None


def webhook_event_hash(session: Session, event_id: str) -> str | None:
    """The payload hash stored with ``event_id``, None when the id was never applied."""
    found = session.execute(select(_EVENT.c.payload_hash).where(_EVENT.c.event_id == event_id)
                            ).first()
    return None if found is None else str(found[0])


def record_webhook_event(session: Session, *, event_id: str, source: str,
                         received_at: datetime, payload_hash: str, outcome: str) -> int:
    """Insert the idempotency row; a second insert of ``event_id`` raises IntegrityError."""
    inserted = session.execute(_EVENT.insert().values(
        event_id=event_id, source=source, received_at=received_at, payload_hash=payload_hash,
        outcome=outcome))
    return int(inserted.inserted_primary_key[0])  # type: ignore[attr-defined]


def link_webhook_event(session: Session, row_id: int, flight_id: int | None) -> None:
    session.execute(update(_EVENT).where(_EVENT.c.id == row_id).values(flight_id=flight_id))


def start_delivery(session: Session, *, message_id: str, url: str, run_id: str | None,
                   flight_id: int | None, payload_hash: str, now: datetime) -> int:
    inserted = session.execute(_DELIVERY.insert().values(
        message_id=message_id, url=url[:500], run_id=run_id, flight_id=flight_id,
        payload_hash=payload_hash, status="pending", attempts=0, created_at=now))
    return int(inserted.inserted_primary_key[0])  # type: ignore[attr-defined]


def note_delivery(session: Session, delivery_id: int, *, attempts: int, status: str,
                  status_code: int | None, error: str | None,
                  delivered_at: datetime | None = None) -> None:
    """Record an attempt (``status`` pending) or the outcome (delivered or failed)."""
    session.execute(update(_DELIVERY).where(_DELIVERY.c.id == delivery_id).values(
        attempts=attempts, status=status, last_status_code=status_code,
        last_error=None if error is None else error[:500], delivered_at=delivered_at))


__all__ = ["link_webhook_event", "note_delivery", "record_webhook_event", "start_delivery",
           "webhook_event_hash", "webhook_event_seen"]
