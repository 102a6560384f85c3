"""Storage that stays bounded: changed observations only, compressed raw answers, retention

Revision ID: 0005_storage_retention
Revises: 0004_fa_alerts
Create Date: 2026-12-06

Issue 16. ``source_observation`` keeps one row per provider claim: ``confirmed_at`` says when
the provider last repeated it (existing rows: their ``observed_at``), and ``flight.
observation_hashes`` recognises an unchanged answer. Raw answers move from ``raw`` (text) to
``raw_zlib`` (zlib-compressed UTF-8), converted row by row in both directions. Retention gets
an index on every time column it prunes by and ``prune_mark`` for its progress. SQLite's
switch to incremental auto-vacuum needs a VACUUM outside any transaction: flightsync.store.
migrate does it after this migration commits.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_storage_retention"
down_revision: str | Sequence[str] | None = "0004_fa_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000  # rows converted per round trip
_INDEXES = (
    ("ix_source_observation_observed_at", "source_observation", ["observed_at"]),
    ("ix_flight_change_at", "flight_change", ["at"]),
    ("ix_sync_run_started_at", "sync_run", ["started_at"]),
    ("ix_webhook_event_received_at", "webhook_event", ["received_at"]),
    ("ix_notification_delivery_created_at", "notification_delivery", ["created_at"]),
    ("ix_flight_departure_date", "flight", ["departure_date"]),
)


def _obs(*columns: sa.Column[object]) -> sa.Table:
    return sa.table("source_observation", sa.column("id", sa.Integer()), *columns)


def _convert(source: str, target: str, change: object) -> None:
    """Copy ``source`` into ``target`` through ``change`` for every row that has one, a chunk
    at a time by id (a big table never sits in memory at once)."""
    conn = op.get_bind()
    kinds = {"raw": sa.Text(), "raw_zlib": sa.LargeBinary()}
    table = _obs(sa.column(source, kinds[source]), sa.column(target, kinds[target]))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c[source]).where(
                table.c.id > last, table.c[source].isnot(None)).order_by(table.c.id)
            .limit(_CHUNK)).all()
        if not rows:
            return
        conn.execute(table.update().where(table.c.id == sa.bindparam("b_id")).values(
            {target: sa.bindparam("b_value")}),
            [{"b_id": row[0], "b_value": change(row[1])} for row in rows])  # type: ignore[operator]
        last = rows[-1][0]


def _compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6)


def _decompress(blob: bytes) -> str:
    return zlib.decompress(blob).decode("utf-8")


def upgrade() -> None:
    with op.batch_alter_table("source_observation") as batch:
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("raw_zlib", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    obs = _obs(sa.column("observed_at"), sa.column("confirmed_at"))
    conn.execute(obs.update().values(confirmed_at=obs.c.observed_at))
    _convert("raw", "raw_zlib", _compress)
    with op.batch_alter_table("source_observation") as batch:
        batch.alter_column("confirmed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_column("raw")
    with op.batch_alter_table("flight") as batch:
        batch.add_column(sa.Column("observation_hashes", sa.JSON(), nullable=True))
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)
    op.create_table(
        "prune_mark",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("horizon", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_through", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_prune_mark"),
    )


def downgrade() -> None:
    op.drop_table("prune_mark")
    for name, table, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("flight") as batch:
        batch.drop_column("observation_hashes")
    with op.batch_alter_table("source_observation") as batch:
        batch.add_column(sa.Column("raw", sa.Text(), nullable=True))
    _convert("raw_zlib", "raw", _decompress)
    with op.batch_alter_table("source_observation") as batch:
        batch.drop_column("raw_zlib")
        batch.drop_column("confirmed_at")
