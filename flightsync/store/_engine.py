"""Engines for the two supported backends, and the one place SQLAlchemy's connection
errors become StoreError."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from flightsync.errors import ConfigError, StoreError

BUSY_TIMEOUT_MS = 30_000
_MEMORY = ("", ":memory:")


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL for ``url``, bare ``postgresql://`` meaning psycopg 3 (the only
    PostgreSQL driver we ship)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The parser's message repeats the URL, password included: say less.
        raise ConfigError("invalid database URL: expected sqlite:///PATH or "
                          "postgresql+psycopg://USER@HOST/NAME") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"unsupported database {display(parsed)}: use sqlite:/// or "
                          "postgresql+psycopg://")
    if parsed.get_backend_name() == "postgresql":
        require_postgres_driver()
    return parsed


POSTGRES_INSTALL = "pip install 'flightsync[postgres]'"


def require_postgres_driver() -> None:
    """ConfigError (exit 2) naming the install command when psycopg is missing: it is the
    ``[postgres]`` extra, not a default dependency (README, "Run it in production"), and
    SQLAlchemy would otherwise fail deep inside its dialect with a long traceback."""
    try:
        import psycopg  # noqa: F401, PLC0415 - the check is the import
    except ImportError:
        raise ConfigError("PostgreSQL needs the psycopg driver, which is not installed: "
                          f"{POSTGRES_INSTALL}") from None


def display(url: URL | str) -> str:
    """``url`` with the password replaced by ``***``: the only form logs and errors use."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, None for an in-memory database."""
    if url.get_backend_name() != "sqlite" or (url.database or "") in _MEMORY:
        return None
    return Path(url.database or "")


def ensure_sqlite_folder(url: URL) -> None:
    """Create the folder of a SQLite database file (private, 0700) if it is missing, and the
    file itself, empty and private (0600): it holds provider payloads, and SQLite gives its
    -wal and -shm files the mode of the database file. An existing file keeps its mode."""
    path = sqlite_path(url)
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create database folder {path.parent}: "
                         f"{exc.strerror or type(exc).__name__}", url=display(url)) from exc
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create database file {path}: "
                         f"{exc.strerror or type(exc).__name__}", url=display(url)) from exc


def make_engine(url: URL, *, foreign_keys: bool = True,
                lock_wait_seconds: float | None = None) -> Engine:
    """An engine for ``url``. On SQLite every connection gets WAL, a 30 s busy timeout,
    ``synchronous=NORMAL`` and (unless ``foreign_keys`` is False, as migrations need while
    batch mode copies tables) enforced foreign keys, and transactions begin IMMEDIATE.

    ``lock_wait_seconds`` replaces the 30 s (SQLite's busy timeout; PostgreSQL's connect and
    lock timeouts): `flightsync serve` waits briefly, then spools the event instead."""
    if url.get_backend_name() != "sqlite":
        args: dict[str, Any] = {}
        if lock_wait_seconds is not None:
            wait_ms = max(1, int(lock_wait_seconds * 1000))
            args = {"connect_timeout": max(1, round(lock_wait_seconds)),
                    "options": f"-c lock_timeout={wait_ms}"}
        return _guard(lambda: create_engine(url, pool_pre_ping=True, connect_args=args), url)
    busy_ms = BUSY_TIMEOUT_MS if lock_wait_seconds is None else max(
        1, int(lock_wait_seconds * 1000))
    if sqlite_path(url) is None:
        engine = _guard(lambda: create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}), url)
    else:
        engine = _guard(lambda: create_engine(
            url, connect_args={"timeout": busy_ms / 1000}), url)
    _configure_sqlite(engine, foreign_keys=foreign_keys, busy_ms=busy_ms)
    return engine


def _configure_sqlite(engine: Engine, *, foreign_keys: bool,
                      busy_ms: int = BUSY_TIMEOUT_MS) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3's own transaction handling skips BEGIN before SELECT, DDL and SAVEPOINT;
        # taking it over makes DDL transactional and savepoints real (SQLAlchemy's recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, waiting up to busy_timeout for it; a
        # deferred transaction that reads and then writes fails at once with "database is
        # locked" when another writer got in between, whatever the timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def store_errors(url: URL, action: str) -> Iterator[None]:
    """Turn a failure to reach or open the database into a one-line StoreError."""
    try:
        yield
    except (DBAPIError, NoSuchModuleError, OSError) as exc:
        raise StoreError(f"{action} {display(url)}: {describe(exc, url)}",
                         url=display(url)) from exc


def describe(exc: BaseException, url: URL) -> str:
    """One line about ``exc``, never carrying the URL's password."""
    orig = getattr(exc, "orig", None)
    text = _first_line(orig if isinstance(orig, BaseException) else exc)
    if url.password:
        text = text.replace(str(url.password), "***")
    return text


def _guard(build: Callable[[], Engine], url: URL) -> Engine:
    with store_errors(url, "cannot open database"):
        return build()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
