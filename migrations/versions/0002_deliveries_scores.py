"""outbound deliveries and learned source scores

Revision ID: 0002_deliveries_scores
Revises: 0001_initial
Create Date: 2026-11-25

notification_delivery records each signed change notification sent to a subscriber (issue 5);
source_score holds each provider's learned accuracy per field (issue 9).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_deliveries_scores"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("flight_id", sa.Integer(), nullable=True),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["flight_id"], ["flight.id"], ondelete="SET NULL",
                                name="fk_notification_delivery_flight_id_flight"),
        sa.PrimaryKeyConstraint("id", name="pk_notification_delivery"),
    )
    op.create_index("ix_notification_delivery_status", "notification_delivery",
                    ["status", "created_at"])
    op.create_table(
        "source_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_score"),
        sa.UniqueConstraint("source", "field", name="uq_source_score_source_field"),
    )


def downgrade() -> None:
    op.drop_table("source_score")
    op.drop_index("ix_notification_delivery_status", table_name="notification_delivery")
    op.drop_table("notification_delivery")
