"""SQLModel tables (docs/CONTRACTS.md section 5). Alembic owns the schema: a change here needs a
migration in ``migrations/versions`` (tests/test_migrations.py checks they agree)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from flightsync.store._types import UTCDateTime

# Named constraints: later migrations can drop or alter them by name, which SQLite's batch
# mode (copy-and-move) and PostgreSQL both need. Set before the first table is declared.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _utc(*, nullable: bool = True) -> Any:
    # Aware UTC timestamps on every backend (SQLite stores them as text): see UTCDateTime.
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class Flight(SQLModel, table=True):
    """One row per leg; identity (carrier, flight_number, suffix, departure_date, leg_index)."""

    __tablename__ = "flight"
    __table_args__ = (
        UniqueConstraint("carrier", "flight_number", "suffix", "departure_date", "leg_index",
                         name="uq_flight_identity"),
        Index("ix_flight_due", "tracked", "next_sync_due_at"),
        Index("ix_flight_open_conflict", "has_open_conflict"),
        Index("ix_flight_departure", "scheduled_departure"),
        Index("ix_flight_departure_date", "departure_date"),  # retention's horizons
    )

    id: int | None = Field(default=None, primary_key=True)
    carrier: str = Field(max_length=3)
    flight_number: int
    suffix: str = Field(default="", max_length=1)
    departure_date: date
    leg_index: int = 0
    origin: str = Field(max_length=3)
    destination: str | None = Field(default=None, max_length=3)
    status: str = Field(default="unknown", max_length=16)
    scheduled_departure: datetime | None = _utc()
    estimated_departure: datetime | None = _utc()
    actual_departure: datetime | None = _utc()
    scheduled_arrival: datetime | None = _utc()
    estimated_arrival: datetime | None = _utc()
    actual_arrival: datetime | None = _utc()
    departure_terminal: str | None = Field(default=None, max_length=16)
    departure_gate: str | None = Field(default=None, max_length=16)
    arrival_terminal: str | None = Field(default=None, max_length=16)
    arrival_gate: str | None = Field(default=None, max_length=16)
    baggage_belt: str | None = Field(default=None, max_length=16)
    aircraft_type: str | None = Field(default=None, max_length=8)
    aircraft_registration: str | None = Field(default=None, max_length=16)
    codeshares: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    operating_carrier: str | None = Field(default=None, max_length=3)
    operating_flight_number: int | None = None
    diverted_to: str | None = Field(default=None, max_length=3)
    # sync tracking
    sync_status: str = Field(default="synced", max_length=16)
    tracked: bool = True
    last_synced_at: datetime | None = _utc()
    last_attempt_at: datetime | None = _utc()
    next_sync_due_at: datetime | None = _utc()
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _utc()
    sync_attempts: int = 0
    consecutive_failures: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    source_of_truth: str | None = Field(default=None, max_length=32)
    content_hash: str | None = Field(default=None, max_length=64)
    # source -> hash of that provider's latest stored observation of this leg: an unchanged
    # re-fetch only moves that observation's confirmed_at (store/_write.py)
    observation_hashes: dict[str, str] | None = Field(default=None,
                                                      sa_column=Column(JSON, nullable=True))
    version: int = 1
    has_open_conflict: bool = False
    created_at: datetime | None = _utc(nullable=False)
    updated_at: datetime | None = _utc(nullable=False)


class FlightChange(SQLModel, table=True):
    """Audit trail: one row per changed field."""

    __tablename__ = "flight_change"
    # AUTOINCREMENT on SQLite: an id is never handed out twice, even after the newest rows
    # are deleted, so the change feed's cursor never passes a change (migration 0007).
    __table_args__ = (Index("ix_flight_change_flight", "flight_id", "at"),
                      Index("ix_flight_change_at", "at"), {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    flight_id: int = Field(foreign_key="flight.id", ondelete="CASCADE")
    field: str = Field(max_length=32)
    old: str | None = Field(default=None, sa_column=Column(Text))  # JSON-encoded value
    new: str | None = Field(default=None, sa_column=Column(Text))  # JSON-encoded value
    source: str | None = Field(default=None, max_length=32)
    rule: str | None = Field(default=None, max_length=32)
    run_id: str | None = Field(default=None, max_length=64)
    version: int = 1  # the flight's version this change produced
    at: datetime | None = _utc(nullable=False)


# The one key of ``source_observation.values`` that is not a field: the values the plausibility
# checks dropped from this observation, as a list of {"field", "value" (JSON), "reason",
# "detail"}. Kept inside the JSON column so the rejections need no schema change; the leading
# underscore keeps it apart from models.OBSERVED_FIELDS, and readers take fields by name.
REJECTED_KEY = "_rejected"


class SourceObservation(SQLModel, table=True):
    """What one provider reported for one leg (``values``: field name -> JSON value, plus
    ``REJECTED_KEY`` when some values were dropped as implausible): stored when it differs
    from that provider's previous observation of the leg (``observed_at``), and confirmed by
    every later identical answer (``confirmed_at``, the last time the provider said it).
    ``raw_zlib``: the provider's raw answer, zlib-compressed UTF-8, until retention drops it."""

    __tablename__ = "source_observation"
    __table_args__ = (Index("ix_source_observation_flight", "flight_id", "observed_at"),
                      Index("ix_source_observation_observed_at", "observed_at"))

    id: int | None = Field(default=None, primary_key=True)
    flight_id: int = Field(foreign_key="flight.id", ondelete="CASCADE")
    source: str = Field(max_length=32)
    values: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    provider_updated_at: datetime | None = _utc()
    observed_at: datetime | None = _utc(nullable=False)
    run_id: str | None = Field(default=None, max_length=64)
    confirmed_at: datetime | None = _utc(nullable=False)
    raw_zlib: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class Conflict(SQLModel, table=True):
    __tablename__ = "conflict"
    __table_args__ = (Index("ix_conflict_status", "status", "flight_id"),)

    id: int | None = Field(default=None, primary_key=True)
    flight_id: int = Field(foreign_key="flight.id", ondelete="CASCADE")
    field: str = Field(max_length=32)
    candidates: dict[str, object] = Field(default_factory=dict,
                                          sa_column=Column(JSON, nullable=False))
    status: str = Field(default="open", max_length=16)  # open | resolved
    rule: str | None = Field(default=None, max_length=32)
    resolution: str | None = Field(default=None, sa_column=Column(Text))  # JSON-encoded value
    resolved_source: str | None = Field(default=None, max_length=32)
    resolved_by: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = _utc(nullable=False)
    resolved_at: datetime | None = _utc()


class SyncRun(SQLModel, table=True):
    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_started", "kind", "started_at"),
                      Index("ix_sync_run_started_at", "started_at"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)  # sync | batch | batch_due | webhook
    host: str | None = Field(default=None, max_length=128)
    started_at: datetime | None = _utc(nullable=False)
    finished_at: datetime | None = _utc()
    requested: int = 0
    synced: int = 0
    from_cache: int = 0
    failed: int = 0
    conflicts: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    outcome: str | None = Field(default=None, max_length=16)  # ok | partial | failed | running


class WebhookEvent(SQLModel, table=True):
    __tablename__ = "webhook_event"
    __table_args__ = (Index("ix_webhook_event_received_at", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=128, unique=True)
    source: str = Field(max_length=32)
    received_at: datetime | None = _utc(nullable=False)
    payload_hash: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    flight_id: int | None = Field(default=None, foreign_key="flight.id", ondelete="SET NULL")


class NotificationDelivery(SQLModel, table=True):
    """One outbound change notification to one subscriber, with its attempts and outcome."""

    __tablename__ = "notification_delivery"
    __table_args__ = (Index("ix_notification_delivery_status", "status", "created_at"),
                      Index("ix_notification_delivery_created_at", "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=64)          # webhook-id sent to the subscriber
    url: str = Field(max_length=500)
    run_id: str | None = Field(default=None, max_length=64)
    flight_id: int | None = Field(default=None, foreign_key="flight.id", ondelete="SET NULL")
    payload_hash: str = Field(max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime | None = _utc(nullable=False)
    delivered_at: datetime | None = _utc()


class SourceScore(SQLModel, table=True):
    """A provider's learned accuracy for one field (policy rule ``accuracy``)."""

    __tablename__ = "source_score"
    __table_args__ = (UniqueConstraint("source", "field", name="uq_source_score_source_field"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    field: str = Field(max_length=32)
    accuracy: float
    coverage: float = 0.0        # share of resolved items this source reported on
    observations: int = 0        # how many observations the figure rests on
    computed_at: datetime | None = _utc(nullable=False)


class SourceDependence(SQLModel, table=True):
    """The learned probability that two providers copy each other (policy rule ``accuracy``);
    one row per pair, ``source`` before ``other`` by name."""

    __tablename__ = "source_dependence"
    __table_args__ = (UniqueConstraint("source", "other",
                                       name="uq_source_dependence_source_other"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    other: str = Field(max_length=32)
    dependence: float
    computed_at: datetime | None = _utc(nullable=False)


class FlightAwareAlert(SQLModel, table=True):
    """An AeroAPI alert flightsync registered for a tracked flight (README, "FlightAware
    alerts"). Keyed by the flight's identity, not a row id: ``flights delete`` leaves it, and
    ``batch --due`` removes it once the flight is no longer tracked. The delivery URL is
    never stored (it holds a secret token); ``endpoint`` is its masked form."""

    __tablename__ = "fa_alert"
    __table_args__ = (
        UniqueConstraint("alert_id", name="uq_fa_alert_alert_id"),
        Index("ix_fa_alert_flight", "carrier", "flight_number", "suffix", "departure_date",
              "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int                                      # AeroAPI's id
    carrier: str = Field(max_length=3)
    flight_number: int
    suffix: str = Field(default="", max_length=1)
    departure_date: date
    ident: str = Field(max_length=16)                  # the ident AeroAPI was given
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    endpoint: str = Field(max_length=500)              # the delivery URL, token masked
    status: str = Field(default="active", max_length=16)  # active | removed | finished
    created_at: datetime | None = _utc(nullable=False)
    removed_at: datetime | None = _utc()


class PruneMark(SQLModel, table=True):
    """Retention's progress per horizon (store/_prune.py), written in each chunk's own
    transaction: the pass in progress (its ``horizon``, what it removed so far) survives a
    killed process and the next prune carries on; ``done_through`` is the horizon of the last
    pass that completed (everything before it is gone: the next pass starts there)."""

    __tablename__ = "prune_mark"

    name: str = Field(sa_column=Column(String(32), primary_key=True))
    horizon: datetime | None = _utc()
    done_through: datetime | None = _utc()
    removed: int = 0
    started_at: datetime | None = _utc()
    finished_at: datetime | None = _utc()


ALL_TABLES = (Flight, FlightChange, SourceObservation, Conflict, SyncRun, WebhookEvent,
              NotificationDelivery, SourceScore, SourceDependence, FlightAwareAlert, PruneMark)
