"""Alembic migrations: upgrade/downgrade on both backends, models and migrations agree, the
scripts are found from anywhere and ship with the package."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from flightsync.errors import InputError
from flightsync.store import ALL_TABLES, migrate
from flightsync.store._partitions import include_object

REPO = Path(__file__).resolve().parents[1]
TABLES = {table.__tablename__ for table in ALL_TABLES}


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'flightsync.db'}"
    return str(request.getfixturevalue("pg_url"))


def _table_names(url: str) -> set[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_to_head_then_downgrade_to_base(db_url: str) -> None:
    """Upgrading creates the six tables and records the head; downgrading to base removes
    them all again and leaves the database unversioned."""
    assert migrate.current(db_url) is None
    migrate.upgrade(db_url)
    assert _table_names(db_url) >= TABLES
    assert migrate.current(db_url) == migrate.heads()[0]

    migrate.downgrade(db_url, "base")
    assert _table_names(db_url).isdisjoint(TABLES)
    assert migrate.current(db_url) is None


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    """Running the upgrade again on a database at head changes nothing and does not fail."""
    migrate.upgrade(db_url)
    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.heads()[0]


def test_models_and_migrations_agree(db_url: str) -> None:
    """Autogenerate compares the migrated schema with the SQLModel tables and finds no
    difference: no missing column, index, constraint, type or nullability change."""
    migrate.upgrade(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True, "include_object": include_object})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_history_lists_every_revision_with_the_current_one_marked(tmp_path: Path) -> None:
    """history() names each revision newest first, flags the head, and with a URL says which
    revision the database is at."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    entries = migrate.history()
    assert [e["revision"] for e in entries if e["is_head"]] == migrate.heads()
    assert entries[-1]["down_revision"] is None
    assert all("is_current" not in e for e in entries)

    migrate.upgrade(url)
    marked = [e["revision"] for e in migrate.history(url) if e["is_current"]]
    assert marked == [migrate.current(url)]


def test_migrations_run_from_any_working_directory(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No alembic.ini is needed: the scripts are located from the package, whatever the
    current directory."""
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "alembic.ini").exists()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate.upgrade(url)
    assert migrate.current(url) == migrate.heads()[0]
    assert (migrate.script_location() / "env.py").is_file()


def test_unknown_revision_is_invalid_input(tmp_path: Path) -> None:
    """Asking for a revision that does not exist is a usage error (exit 2), not a crash."""
    with pytest.raises(InputError) as caught:
        migrate.upgrade(f"sqlite:///{tmp_path / 'y.db'}", "9999_nothing")
    assert caught.value.exit_code == 2
    assert "9999_nothing" in caught.value.message


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    """pyproject lists the packages by hand (migrations/ ships as flightsync.migrations);
    a package folder missing from that list would be left out of a non-editable install."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "flightsync").rglob("__init__.py")
    }
    listed = set(config["packages"])
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert config["package-dir"]["flightsync.migrations"] == "migrations"
    assert {"flightsync.migrations", "flightsync.migrations.versions"} <= listed


def _downgrade_at_a_terminal(url: str, tmp_path: Path, answer: bytes | None,
                             *extra: str) -> subprocess.CompletedProcess[bytes]:
    """`flightsync migrate downgrade base` with stdin a terminal answering ``answer``, or
    with no terminal at all (``answer`` None: how cron and scripts run it)."""
    env = {**os.environ, "FLIGHTSYNC_DATABASE_URL": url,
           "FLIGHTSYNC_STATE_DIR": str(tmp_path / "state")}
    command = [sys.executable, "-m", "flightsync", "migrate", "downgrade", "base", *extra]
    if answer is None:
        return subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=120, check=False)
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(command, env=env, stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        os.close(follower)
        os.write(leader, answer)
        out, err = process.communicate(timeout=120)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_downgrade_asks_at_a_terminal_and_runs_unasked_in_scripts(tmp_path: Path) -> None:
    """At a terminal a downgrade asks first and 'n' leaves the schema as it was (exit 1);
    `--yes` skips the question; without a terminal (cron, scripts) it runs as before."""
    url = f"sqlite:///{tmp_path / 'fs.db'}"
    migrate.upgrade(url)

    refused = _downgrade_at_a_terminal(url, tmp_path, b"n\n")
    assert refused.returncode == 1, refused.stderr
    assert b"Downgrade" in refused.stderr and b"nothing done" in refused.stderr
    assert migrate.current(url) == migrate.heads()[0]

    confirmed = _downgrade_at_a_terminal(url, tmp_path, b"", "--yes")
    assert confirmed.returncode == 0, confirmed.stderr
    assert migrate.current(url) is None

    migrate.upgrade(url)
    scripted = _downgrade_at_a_terminal(url, tmp_path, None)
    assert scripted.returncode == 0, scripted.stderr
    assert migrate.current(url) is None
