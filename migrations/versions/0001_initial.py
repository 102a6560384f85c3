"""initial schema: the six tables of docs/CONTRACTS.md section 5

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25

Written by hand so that it stays a frozen snapshot: plain SQLAlchemy types, nothing imported
from flightsync. ``UTCDateTime`` is ``DateTime(timezone=True)`` underneath. Revision ids are
``NNNN_words`` and must stay within 32 characters (alembic_version.version_num).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sa.String:
    return sa.String(length=length)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _flight_fk(table: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["flight_id"], ["flight.id"], ondelete=ondelete,
                                   name=f"fk_{table}_flight_id_flight")


def upgrade() -> None:
    op.create_table(
        "flight",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier", _text(3), nullable=False),
        sa.Column("flight_number", sa.Integer(), nullable=False),
        sa.Column("suffix", _text(1), nullable=False),
        sa.Column("departure_date", sa.Date(), nullable=False),
        sa.Column("leg_index", sa.Integer(), nullable=False),
        sa.Column("origin", _text(3), nullable=False),
        sa.Column("destination", _text(3), nullable=True),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("scheduled_departure", _utc(), nullable=True),
        sa.Column("estimated_departure", _utc(), nullable=True),
        sa.Column("actual_departure", _utc(), nullable=True),
        sa.Column("scheduled_arrival", _utc(), nullable=True),
        sa.Column("estimated_arrival", _utc(), nullable=True),
        sa.Column("actual_arrival", _utc(), nullable=True),
        sa.Column("departure_terminal", _text(16), nullable=True),
        sa.Column("departure_gate", _text(16), nullable=True),
        sa.Column("arrival_terminal", _text(16), nullable=True),
        sa.Column("arrival_gate", _text(16), nullable=True),
        sa.Column("baggage_belt", _text(16), nullable=True),
        sa.Column("aircraft_type", _text(8), nullable=True),
        sa.Column("aircraft_registration", _text(16), nullable=True),
        sa.Column("codeshares", sa.JSON(), nullable=False),
        sa.Column("operating_carrier", _text(3), nullable=True),
        sa.Column("operating_flight_number", sa.Integer(), nullable=True),
        sa.Column("diverted_to", _text(3), nullable=True),
        sa.Column("sync_status", _text(16), nullable=False),
        sa.Column("tracked", sa.Boolean(), nullable=False),
        sa.Column("last_synced_at", _utc(), nullable=True),
        sa.Column("last_attempt_at", _utc(), nullable=True),
        sa.Column("next_sync_due_at", _utc(), nullable=True),
        sa.Column("lease_owner", _text(64), nullable=True),
        sa.Column("lease_expires_at", _utc(), nullable=True),
        sa.Column("sync_attempts", sa.Integer(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("source_of_truth", _text(32), nullable=True),
        sa.Column("content_hash", _text(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("has_open_conflict", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flight"),
        sa.UniqueConstraint("carrier", "flight_number", "suffix", "departure_date", "leg_index",
                            name="uq_flight_identity"),
    )
    op.create_index("ix_flight_departure", "flight", ["scheduled_departure"])
    op.create_index("ix_flight_due", "flight", ["tracked", "next_sync_due_at"])
    op.create_index("ix_flight_open_conflict", "flight", ["has_open_conflict"])

    op.create_table(
        "flight_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flight_id", sa.Integer(), nullable=False),
        sa.Column("field", _text(32), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("source", _text(32), nullable=True),
        sa.Column("rule", _text(32), nullable=True),
        sa.Column("run_id", _text(64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        _flight_fk("flight_change", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_flight_change"),
    )
    op.create_index("ix_flight_change_flight", "flight_change", ["flight_id", "at"])

    op.create_table(
        "source_observation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flight_id", sa.Integer(), nullable=False),
        sa.Column("source", _text(32), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("provider_updated_at", _utc(), nullable=True),
        sa.Column("observed_at", _utc(), nullable=False),
        sa.Column("run_id", _text(64), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        _flight_fk("source_observation", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_source_observation"),
    )
    op.create_index("ix_source_observation_flight", "source_observation",
                    ["flight_id", "observed_at"])

    op.create_table(
        "conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flight_id", sa.Integer(), nullable=False),
        sa.Column("field", _text(32), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("rule", _text(32), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_source", _text(32), nullable=True),
        sa.Column("resolved_by", _text(64), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=True),
        _flight_fk("conflict", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_conflict"),
    )
    op.create_index("ix_conflict_status", "conflict", ["status", "flight_id"])

    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", _text(64), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("host", _text(128), nullable=True),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("synced", sa.Integer(), nullable=False),
        sa.Column("from_cache", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("cache_misses", sa.Integer(), nullable=False),
        sa.Column("outcome", _text(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sync_run"),
        sa.UniqueConstraint("run_id", name="uq_sync_run_run_id"),
    )
    op.create_index("ix_sync_run_started", "sync_run", ["kind", "started_at"])

    op.create_table(
        "webhook_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", _text(128), nullable=False),
        sa.Column("source", _text(32), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("payload_hash", _text(64), nullable=False),
        sa.Column("outcome", _text(32), nullable=False),
        sa.Column("flight_id", sa.Integer(), nullable=True),
        _flight_fk("webhook_event", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_event"),
        sa.UniqueConstraint("event_id", name="uq_webhook_event_event_id"),
    )


def downgrade() -> None:
    # Children first; their indexes go with them.
    for table in ("webhook_event", "sync_run", "conflict", "source_observation",
                  "flight_change", "flight"):
        op.drop_table(table)
