"""How big the database is, for ``status``: its size on disk and the rows of each table.

SQLite: the file's pages (``page_count`` x ``page_size``; the free pages retention left are
counted until ``PRAGMA incremental_vacuum`` gives them back) and exact row counts.
PostgreSQL: ``pg_database_size`` and, for a table the planner's statistics put at
``ESTIMATE_ABOVE`` rows or more, ``pg_class.reltuples`` (an estimate, marked as one: a
count(*) of a big table is a scan); smaller or never-analysed tables are counted exactly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from flightsync.store.tables import ALL_TABLES

ESTIMATE_ABOVE = 100_000


def storage_figures(session: Session) -> dict[str, Any]:
    """``size_bytes``, ``free_bytes`` (SQLite: pages free inside the file) and ``rows``:
    table -> {``rows``, ``estimate``}, in the tables' declaration order."""
    conn = session.connection()
    tables = [model.__table__ for model in ALL_TABLES]  # type: ignore[union-attr]
    rows: dict[str, dict[str, Any]] = {}
    if conn.dialect.name == "postgresql":
        size = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
        estimates = {name: float(tuples) for name, tuples in conn.execute(text(
            "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
            "AND c.relkind IN ('r', 'p')"))}
        free = None
    else:
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        size = page * int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())
        free = page * int(conn.exec_driver_sql("PRAGMA freelist_count").scalar_one())
        estimates = {}
    for table in tables:
        guess = estimates.get(table.name, -1.0)
        if guess >= ESTIMATE_ABOVE:
            rows[table.name] = {"rows": int(guess), "estimate": True}
        else:
            count = conn.execute(select(func.count()).select_from(table)).scalar_one()
            rows[table.name] = {"rows": int(count), "estimate": False}
    return {"size_bytes": size, "free_bytes": free, "rows": rows}


__all__ = ["ESTIMATE_ABOVE", "storage_figures"]
