"""flight_change ids never reused on SQLite (AUTOINCREMENT)

Revision ID: 0007_change_ids_never_reused
Revises: 0006_pg_partitions
Create Date: 2026-12-06

The change feed's cursor is a ``flight_change`` id (README, "Change feed"). A plain SQLite
INTEGER PRIMARY KEY hands out max(id) + 1, so once the newest rows go (``flights delete``, or
retention reaching them) the next change takes an id a consumer has already passed, and that
consumer never sees it. AUTOINCREMENT keeps the highest id ever given in ``sqlite_sequence``
and never goes below it. The table is rebuilt with its rows (the copy seeds the sequence);
PostgreSQL's sequences never go back, so nothing changes there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_change_ids_never_reused"
down_revision: str | Sequence[str] | None = "0006_pg_partitions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("flight_change", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
