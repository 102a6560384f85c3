"""learned source dependence

Revision ID: 0003_source_dependence
Revises: 0002_deliveries_scores
Create Date: 2026-11-25

source_dependence holds, per pair of providers, the learned probability that one copies the
other (issue 9): the ``accuracy`` rule counts dependent sources once between them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_source_dependence"
down_revision: str | Sequence[str] | None = "0002_deliveries_scores"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_dependence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("other", sa.String(length=32), nullable=False),
        sa.Column("dependence", sa.Float(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_dependence"),
        sa.UniqueConstraint("source", "other", name="uq_source_dependence_source_other"),
    )


def downgrade() -> None:
    op.drop_table("source_dependence")
