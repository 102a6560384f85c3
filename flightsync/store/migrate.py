"""Alembic, driven from code: no alembic.ini, any working directory (docs/CONTRACTS.md section 1,
``flightsync migrate``). The scripts ship inside the package as ``flightsync.migrations``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from flightsync.errors import InputError, StoreError
from flightsync.store._engine import (
    display,
    ensure_sqlite_folder,
    make_engine,
    parse_url,
    sqlite_path,
    store_errors,
)
from flightsync.store._partitions import ensure_partitions

log = structlog.get_logger(__name__)


def script_location() -> Path:
    """The folder holding env.py and versions/, wherever flightsync is installed."""
    try:
        path = Path(str(resources.files("flightsync.migrations")))
    except ModuleNotFoundError:
        # A source checkout used without installing: the folder beside the package.
        path = Path(__file__).resolve().parents[2] / "migrations"
    if not (path / "env.py").is_file():
        raise StoreError(f"the migration scripts are missing (looked in {path}): "
                         "reinstall flightsync")
    return path


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def heads() -> list[str]:
    """The head revision(s) the code expects (one, unless branches were merged badly)."""
    return sorted(_scripts().get_heads())


def current(url: str) -> str | None:
    """The database's revision, None for an empty (never migrated) database."""
    revisions = _current_heads(url)
    return ",".join(sorted(revisions)) if revisions else None


def history(url: str | None = None) -> list[dict[str, Any]]:
    """Every revision, newest first: ``revision``, ``down_revision``, ``description``,
    ``is_head`` and, when ``url`` is given, ``is_current``."""
    applied = set(_current_heads(url)) if url is not None else set()
    entries = []
    for script in _scripts().walk_revisions():
        down = script.down_revision
        entry: dict[str, Any] = {
            "revision": script.revision,
            "down_revision": ",".join(down) if isinstance(down, tuple) else down,
            "description": script.doc,
            "is_head": script.is_head,
        }
        if url is not None:
            entry["is_current"] = script.revision in applied
        entries.append(entry)
    return entries


def upgrade(url: str, rev: str = "head") -> None:
    """Migrate the database at ``url`` up to ``rev`` (creating a SQLite file if needed)."""
    _run(url, "upgrade", rev)


def downgrade(url: str, rev: str) -> None:
    """Migrate the database at ``url`` down to ``rev`` (``base`` empties it)."""
    _run(url, "downgrade", rev)


def _run(url: str, direction: str, rev: str) -> None:
    parsed = parse_url(url)
    ensure_sqlite_folder(parsed)
    before = _current_heads(url)
    # Foreign keys off: SQLite's batch mode rebuilds a table by copy, drop and rename, and a
    # drop with enforcement on would cascade into the child tables.
    engine = make_engine(parsed, foreign_keys=False)
    try:
        with _mapped(url, f"cannot migrate database {display(parsed)}"), engine.begin() as conn:
            step = command.upgrade if direction == "upgrade" else command.downgrade
            step(_config(conn), rev)
            if direction == "upgrade":
                # The months ahead of the partitioned tables (none on SQLite).
                ensure_partitions(conn, now=datetime.now(UTC))
    finally:
        engine.dispose()
    if direction == "upgrade":
        _incremental_vacuum(url)
    log.info(f"store.migrate.{direction}", url=display(parsed), target=rev,
             before=",".join(before) or None, after=current(url))


def _incremental_vacuum(url: str) -> None:
    """Put a SQLite file in incremental auto-vacuum (issue 16), so that the pages retention
    frees go back to the file system (``PRAGMA incremental_vacuum``, store/_prune.py). The
    mode of an existing file changes only with a VACUUM, which cannot run inside a
    transaction: done here, after the migration committed, once per file (a no-op after)."""
    parsed = parse_url(url)
    if sqlite_path(parsed) is None:
        return
    engine = make_engine(parsed)
    try:
        with store_errors(parsed, f"cannot vacuum database {display(parsed)}"):
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()  # the driver in autocommit: no BEGIN before VACUUM
                if cursor.execute("PRAGMA auto_vacuum").fetchone()[0] != _INCREMENTAL:
                    cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
                    cursor.execute("VACUUM")
                    log.info("store.migrate.vacuum", url=display(parsed), auto_vacuum="incremental")
                cursor.close()
            finally:
                raw.close()
    finally:
        engine.dispose()


_INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental


def _current_heads(url: str) -> tuple[str, ...]:
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None and not path.exists():
        return ()  # do not create the file just to find it empty
    engine = make_engine(parsed)
    try:
        with store_errors(parsed, "cannot read database"), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_heads()
    finally:
        engine.dispose()


@contextmanager
def _mapped(url: str, action: str) -> Iterator[None]:
    with store_errors(parse_url(url), action):
        try:
            yield
        except CommandError as exc:
            # Alembic's CommandError is about the revision asked for, i.e. user input.
            raise InputError(f"migrate: {exc}", code="invalid_revision") from exc
