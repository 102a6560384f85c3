"""FlightAware alerts registered for tracked flights

Revision ID: 0004_fa_alerts
Revises: 0003_source_dependence
Create Date: 2026-12-05

fa_alert records each AeroAPI alert flightsync registered (issue 15): the flight it watches,
the events asked for, where it delivers (token masked) and whether it is still live; a flight
with a live alert is polled less often by `batch --due`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_fa_alerts"
down_revision: str | Sequence[str] | None = "0003_source_dependence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fa_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=3), nullable=False),
        sa.Column("flight_number", sa.Integer(), nullable=False),
        sa.Column("suffix", sa.String(length=1), nullable=False),
        sa.Column("departure_date", sa.Date(), nullable=False),
        sa.Column("ident", sa.String(length=16), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_fa_alert"),
        sa.UniqueConstraint("alert_id", name="uq_fa_alert_alert_id"),
    )
    op.create_index("ix_fa_alert_flight", "fa_alert",
                    ["carrier", "flight_number", "suffix", "departure_date", "status"])


def downgrade() -> None:
    op.drop_index("ix_fa_alert_flight", table_name="fa_alert")
    op.drop_table("fa_alert")
