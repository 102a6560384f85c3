"""A stored leg whose origin the providers no longer report (the route changed, or the
stored origin came from an answer since corrected): `batch --due` updates that leg with the
new origin and an audit row for it, on SQLite and PostgreSQL, instead of inserting a second
leg at the same index (which broke the flight's identity and ended the run with an internal
error)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from flightsync.sandbox import SandboxConfig
from flightsync.store import migrate
from tests._sandbox_cli import SandboxCli, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
STALE_ORIGIN = "ZRH"  # not where the sandbox says LH400 departs from


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[SandboxCli]:
    url = None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    if url is not None:
        migrate.upgrade(url)
    with sandbox_cli(state_dir, SandboxConfig(now=NOW), database_url=url) as running:
        yield running


def test_a_leg_reported_from_another_origin_is_updated_not_duplicated(
        cli: SandboxCli) -> None:
    first = cli.sync("LH400", DAY)
    assert first.exit_code == 0, first.stderr
    origin = first.data["flight"]["origin"]
    assert origin != STALE_ORIGIN
    assert cli.run("flights", "track", "LH400", "--date", DAY).exit_code == 0
    engine = sa.create_engine(cli.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE flight SET origin = :o, next_sync_due_at = '2000-01-01 00:00:00.000000'"),
                {"o": STALE_ORIGIN})
    finally:
        engine.dispose()

    result = cli.run("batch", "--due")

    assert result.exit_code == 0, result.stderr[-2000:]
    assert result.data["summary"]["synced"] == 1
    legs = cli.rows("SELECT id, leg_index, origin, version FROM flight")
    assert [(leg["leg_index"], leg["origin"]) for leg in legs] == [(0, origin)]
    moved = cli.rows("SELECT old, new, version FROM flight_change WHERE field = 'origin'")
    assert moved == [{"old": f'"{STALE_ORIGIN}"', "new": f'"{origin}"',
                      "version": legs[0]["version"]}]
