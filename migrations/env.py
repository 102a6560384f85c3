"""Alembic environment for flightsync. Driven by flightsync.store.migrate, which hands over
an open connection in ``config.attributes["connection"]``; a ``url`` attribute (or the
``sqlalchemy.url`` option) serves the offline ``--sql`` mode and plain ``alembic`` runs."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import flightsync.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from flightsync.store._engine import make_engine, parse_url
from flightsync.store._partitions import include_object

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: set config.attributes['connection'] or ['url']")
    return str(url)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,  # monthly partitions are not tables of the models
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = parse_url(_url())
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(parse_url(_url()), foreign_keys=False)
    try:
        with engine.begin() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
