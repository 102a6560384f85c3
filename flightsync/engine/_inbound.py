"""Inbound webhook events (docs/CONTRACTS.md section 6): recognise the id, verify, validate.

An event is checked like a provider answer (signature, size, strict schema, known provider,
typed values, no control characters, times within the years flights happen in) and becomes an
``InboundEvent``; ``_webhook`` applies it. ``claimed_id`` reads the id a delivery names before
anything is verified, so an event applied before is recognised even after its signature
expired.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from flightsync.engine import _signing
from flightsync.errors import InputError, WebhookPayloadError, WebhookSignatureError
from flightsync.models import OBSERVED_FIELDS, FlightQuery, FlightStatus

EVENT_TYPE = "flight.updated"
_Iata = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# No control characters: a NUL (legal in JSON as \u0000) cannot be stored by PostgreSQL, and
# none belongs in a gate or a registration.
_Text = r"^[^\x00-\x1f\x7f]+$"
_Short = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=_Text)]
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
    aircraft_type: Annotated[str, StringConstraints(min_length=1, max_length=8,
                                                    pattern=_Text)] | None = None
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




# Event times outside these are mistakes, and the extremes break arithmetic on them
# (0001-01-01T00:00:00+14:00 is valid ISO 8601 but has no UTC form).
_FIRST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_TIME = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)
MAX_ID_LENGTH = 128


def claimed_id(body: bytes, headers: Mapping[str, str], *, insecure: bool,
               max_bytes: int) -> str | None:
    """The event id a delivery names, before anything is verified: its ``webhook-id`` header,
    or with ``insecure`` and no header an ``id`` key in the body. WebhookPayloadError when the
    id itself is malformed; None when the delivery names none."""
    found = _signing.lower_keys(headers).get(_signing.ID_HEADER) or None
    if found is None and insecure and len(body) <= max_bytes:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        given = data.get("id") if isinstance(data, dict) else None
        found = given if isinstance(given, str) and given else None
    if found is not None:
        check_event_id(found)
    return found


def check_event_id(event_id: str) -> None:
    """An event id is 1 to 128 printable characters: it is stored and looked up as text (a
    NUL made PostgreSQL refuse the lookup, and stopped a spool run on it)."""
    if len(event_id) > MAX_ID_LENGTH:
        raise WebhookPayloadError(f"webhook-id is longer than {MAX_ID_LENGTH} characters")
    if not event_id.isprintable():
        raise WebhookPayloadError("webhook-id holds control characters: expected printable "
                                  "text such as msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")


def read_event(body: bytes, headers: Mapping[str, str], *, secret: str | None,
               tolerance_seconds: float, max_bytes: int, insecure: bool,
               known_providers: Sequence[str], now: datetime) -> InboundEvent:
    """Verify and validate one event; WebhookSignatureError or WebhookPayloadError (exit 2),
    one line naming the problem, otherwise. ``now`` is when the event was received: the
    signature's timestamp must lie within ``tolerance_seconds`` of it."""
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
    check_event_id(event_id)
    try:
        query = FlightQuery.parse(event.flight, event.date)
    except InputError as exc:
        raise WebhookPayloadError(exc.message, event_id=event_id) from None
    changes = {name: _domain(name, getattr(event.changes, name), event_id)
               for name in OBSERVED_FIELDS if name in given}
    return InboundEvent(
        event_id=event_id, provider=event.provider, query=query, origin=event.origin,
        occurred_at=_domain("occurred_at", event.occurred_at, event_id), changes=changes,
        payload_hash=hashlib.sha256(body).hexdigest(), raw=body.decode("utf-8", "replace"))


def _domain(name: str, value: Any, event_id: str) -> Any:
    """A validated value as the domain holds it: times in UTC, within the years flights
    happen in."""
    if not isinstance(value, datetime):
        return value
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not _FIRST_TIME <= utc <= _LAST_TIME:
        raise WebhookPayloadError(f"{name}: {value.isoformat()[:40]} is outside the times "
                                  f"flightsync accepts ({_FIRST_TIME.year} to "
                                  f"{_LAST_TIME.year}, UTC)", event_id=event_id)
    return utc


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


def named_by(body: bytes) -> tuple[str | None, FlightQuery | None, str | None]:
    """Provider, flight and origin a body names, for the report of a duplicate. The body was
    valid when applied; if it no longer reads (a provider since removed), they stay empty."""
    try:
        event = _Event.model_validate_json(body, strict=True)
        return event.provider, FlightQuery.parse(event.flight, event.date), event.origin
    except (ValidationError, InputError):
        return None, None, None
