"""The claim's index on PostgreSQL

Revision ID: 0008_pg_claim_index
Revises: 0007_change_ids_never_reused
Create Date: 2026-12-06

``batch --due`` claims the earliest-departing due flights (store/_due.py). On PostgreSQL it
first takes a window of them from ``ix_flight_claim`` alone: the due time, with the
departure and the id included, for tracked first legs only (an index-only scan of the flights
due now instead of a heap read of each; benchmarks/RESULTS.md, issue 17). Partial and with
INCLUDE, it exists on PostgreSQL only (the models leave it out); SQLite is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0008_pg_claim_index"
down_revision: str | Sequence[str] | None = "0007_change_ids_never_reused"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text(
        "CREATE INDEX ix_flight_claim ON flight (next_sync_due_at) "
        "INCLUDE (scheduled_departure, id) WHERE tracked AND leg_index = 0"))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text("DROP INDEX IF EXISTS ix_flight_claim"))
