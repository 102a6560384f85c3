"""The database handle the engine holds for a run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Literal, Self, cast

import structlog
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlmodel import Session

from flightsync.errors import SchemaBehindError, StoreError
from flightsync.store._engine import (
    describe,
    display,
    ensure_sqlite_folder,
    make_engine,
    parse_url,
    sqlite_path,
    store_errors,
)
from flightsync.store._heads import script_heads

log = structlog.get_logger(__name__)

_VERSION_QUERY = text("SELECT version_num FROM alembic_version")

Dialect = Literal["sqlite", "postgresql"]


class Database:
    """An open database: SQLite (WAL, 30 s busy timeout, foreign keys) or PostgreSQL.

    ``open`` checks that the database can be reached; ``check_schema`` that it is at the
    migration head. Errors are StoreError (exit 5) or SchemaBehindError (exit 4), one line,
    the URL shown with its password hidden.
    """

    def __init__(self, engine: Engine, url: URL) -> None:
        self._engine = engine
        self._url = url

    @classmethod
    def open(cls, url: str, *, create_default: bool = False,
             lock_wait_seconds: float | None = None) -> Database:
        """Open ``url``. With ``create_default``, a SQLite file that does not exist yet is
        created and migrated to head, so a first run needs no ``flightsync migrate``."""
        parsed = parse_url(url)
        path = sqlite_path(parsed)
        fresh = path is not None and not path.exists()
        if fresh and not create_default:
            # A database named on purpose is made by `flightsync migrate`, not as a side
            # effect of a read (an empty file, or folders, left behind by a typo in the URL).
            raise SchemaBehindError(f"database {display(parsed)} does not exist: run "
                                    "`flightsync migrate` to create it", current=None,
                                    expected=None)
        ensure_sqlite_folder(parsed)
        engine = make_engine(parsed, lock_wait_seconds=lock_wait_seconds)
        database = cls(engine, parsed)
        try:
            with store_errors(parsed, "cannot open database"), engine.connect():
                pass
            if fresh and create_default:
                from flightsync.store import migrate  # noqa: PLC0415 - see revision()

                migrate.upgrade(url)
                log.info("store.created", url=database.url_display)
        except BaseException:
            engine.dispose()
            raise
        return database

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url_display(self) -> str:
        """The URL with its password replaced by ``***``."""
        return display(self._url)

    @property
    def dialect(self) -> Dialect:
        return cast(Dialect, self._engine.dialect.name)

    def revision(self) -> str | None:
        """The schema revision the database is at, None when never migrated."""
        # Read as Alembic's MigrationContext.get_current_heads does (its default version
        # table), without importing Alembic (~0.3 s): `status` shows this on every call.
        with store_errors(self._url, "cannot read database"), self._engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            revisions = sorted(row[0] for row in conn.execute(_VERSION_QUERY))
        return ",".join(revisions) if revisions else None

    def check_schema(self) -> None:
        """Raise SchemaBehindError unless the database is exactly at the migration head."""
        if self._at_head_without_alembic():
            return
        from flightsync.store import migrate  # noqa: PLC0415 - see revision()

        at = self.revision()
        expected = ",".join(migrate.heads())
        if at == expected:
            return
        if at is None:
            state = "has no flightsync schema yet"
        elif at in {entry["revision"] for entry in migrate.history()}:
            state = f"schema is at revision {at}, this flightsync needs {expected}"
        else:
            state = (f"schema is at revision {at}, unknown to this flightsync (made by a newer "
                     "version?)")
        raise SchemaBehindError(f"database {self.url_display} {state}: run `flightsync migrate`",
                                current=at, expected=expected)

    def _at_head_without_alembic(self) -> bool:
        """The every-command case, answered without importing Alembic (the largest part of a
        cached `flightsync sync`'s start; benchmarks/RESULTS.md). Any doubt answers False and
        check_schema asks Alembic, which also words the error."""
        expected = script_heads()
        if not expected:
            return False
        try:
            with self._engine.connect() as conn:
                found = sorted(row[0] for row in conn.execute(_VERSION_QUERY))
        except SQLAlchemyError:
            return False
        return found == expected

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back if it raises. Objects
        stay readable after the commit (``expire_on_commit=False``)."""
        session = Session(self._engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            # Locked past the busy timeout, connection lost: the store is unavailable.
            raise StoreError(f"database {self.url_display}: {describe(exc, self._url)}",
                             url=self.url_display) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
