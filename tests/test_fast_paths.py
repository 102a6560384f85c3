"""Whole-process speed without losing anything (issue 7): a `sync` answered from the cache
records its run in the state directory instead of the database, and the next command that
opens the database writes it into sync_run; read-only commands never build the HTTP stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from flightsync.config import load_settings
from flightsync.engine import _pending
from flightsync.providers import build_providers
from flightsync.sandbox import SandboxConfig
from flightsync.store import Database, migrate
from tests._sandbox_cli import SandboxCli, loaded_heavy_modules, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


def pending_files(state_dir: Path) -> list[Path]:
    folder = state_dir / _pending.FOLDER
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def test_cached_sync_is_journaled_then_recorded_by_status(cli: SandboxCli) -> None:
    """A cached sync leaves sync_run untouched and one pending file; `status` then writes that
    run into sync_run (kind sync, from the cache, every provider a hit) and removes the file."""
    first = cli.sync("LH400", DAY)
    assert first.exit_code == 0, first.stderr
    runs_before = cli.count("sync_run")

    again = cli.sync("LH400", DAY)

    assert again.exit_code == 0 and again.data["from_cache"] is True
    assert cli.count("sync_run") == runs_before
    assert len(pending_files(cli.state_dir)) == 1

    status = cli.run("status")

    assert status.exit_code == 0, status.stderr
    assert pending_files(cli.state_dir) == []
    rows = cli.rows("SELECT kind, from_cache, synced, cache_hits, cache_misses, outcome, "
                    "requested, finished_at FROM sync_run ORDER BY id")
    assert len(rows) == runs_before + 1
    last = rows[-1]
    assert (last["kind"], last["from_cache"], last["synced"], last["outcome"]) == (
        "sync", 1, 0, "ok")
    assert last["cache_hits"] == len(again.data["sources"]) and last["cache_misses"] == 0
    assert last["requested"] == 1 and last["finished_at"] is not None
    assert status.data["last_run"]["from_cache"] == 1


def test_a_broken_policy_file_is_refused_even_when_the_cache_answers(cli: SandboxCli) -> None:
    """DESIGN 8: an invalid policy is exit 2 naming the file and line, also for a sync the
    cache could answer; nothing is recorded for it."""
    assert cli.sync("LH400", DAY).exit_code == 0
    config = cli.write_config("broken", {}, policy={"mode": "automagic"})

    refused = cli.sync("LH400", DAY, config=config)

    assert refused.exit_code == 2
    assert refused.error_lines() and "invalid policy" in refused.error_lines()[0]
    assert pending_files(cli.state_dir) == []


def test_cache_hit_rate_alert_counts_journaled_runs(cli: SandboxCli) -> None:
    """The hour's cache hit rate includes cached syncs recorded without the database: after
    one fetching sync the alert holds (0 %), after three cached ones it no longer does."""
    config = cli.write_config("alerts", {"alerts": {"cache_hit_rate_min": 0.7,
                                                       "cache_hit_min_sample": 1}})
    assert cli.sync("LH400", DAY, config=config).exit_code == 0
    alerts = cli.run("status", "--check", config=config).data["alerts"]
    assert any(a.startswith("cache_hit_rate") for a in alerts)

    for _ in range(3):
        assert cli.sync("LH400", DAY, config=config).data["from_cache"] is True
    after = cli.run("status", "--check", config=config).data["alerts"]

    assert not any(a.startswith("cache_hit_rate") for a in after)


def test_a_database_behind_is_refused_and_keeps_the_pending_run(cli: SandboxCli) -> None:
    """When the schema is behind, the command that opens the database exits 4 and the
    journaled run stays pending; after `migrate` the next command records it."""
    cli.sync("LH400", DAY)
    cli.sync("LH400", DAY)
    runs = cli.count("sync_run")
    history = migrate.history(cli.database_url)
    previous = next(e["down_revision"] for e in history if e["revision"] == migrate.heads()[0])
    migrate.downgrade(cli.database_url, str(previous))

    refused = cli.run("status")

    assert refused.exit_code == 4
    assert len(pending_files(cli.state_dir)) == 1
    assert cli.run("migrate").exit_code == 0
    assert cli.run("status").exit_code == 0
    assert cli.count("sync_run") == runs + 1 and pending_files(cli.state_dir) == []


def test_metrics_file_or_unknown_source_take_the_engine_path(cli: SandboxCli,
                                                             tmp_path: Path) -> None:
    """With a metrics file configured a cached sync records its run at once (the file is
    rebuilt from sync_run); an unusable --source is still refused with exit 2."""
    textfile = tmp_path / "flightsync.prom"
    config = cli.write_config("metrics", {"metrics": {"textfile": str(textfile)}})
    cli.sync("LH400", DAY, config=config)
    runs = cli.count("sync_run")

    cached = cli.sync("LH400", DAY, config=config)

    assert cached.data["from_cache"] is True
    assert cli.count("sync_run") == runs + 1 and pending_files(cli.state_dir) == []
    assert "flightsync_syncs_total 2.0" in textfile.read_text(encoding="utf-8")
    bad = cli.sync("LH400", DAY, "--source", "nosuch", config=config)
    assert bad.exit_code == 2


def test_token_status_needs_no_client(cli: SandboxCli) -> None:
    """`status` reports the OAuth tokens a sync fetched as valid, and building the provider
    set for it creates no HTTP client."""
    cli.sync("LH400", DAY)
    tokens = cli.run("status").data["tokens"]
    assert tokens["amadeus"]["valid"] is True and tokens["lufthansa"]["valid"] is True
    settings = load_settings(None, cli.env)
    with build_providers(settings, cli.state_dir) as providers:
        assert providers.token_status()["lufthansa"]["valid"] is True
        assert "lufthansa" in providers.adapters and len(providers._clients) == 0


def test_cached_sync_and_status_leave_the_heavy_stacks_unloaded(cli: SandboxCli) -> None:
    """In JSON mode a cached `sync` imports none of the heavy packages (no database, HTTP,
    numpy, rich, retry or metrics stack); `status` imports SQLAlchemy for the database and
    nothing else of them (numpy only for the accuracy rule, stamina only to retry)."""
    cli.sync("LH400", DAY)

    code, loaded = loaded_heavy_modules(cli, "sync", "LH400", "--date", DAY, "--json")
    assert code == 0 and loaded == set()

    code, loaded = loaded_heavy_modules(cli, "status", "--json")
    assert code == 0 and loaded == {"sqlalchemy"}


def test_fresh_process_logs_json_lines_and_can_still_draw_tables(cli: SandboxCli) -> None:
    """structlog is imported without rich in a fresh process, yet a cached `sync -v` still
    logs JSON lines carrying the run id, and rich still loads afterwards for the tables drawn
    at a terminal."""
    cli.sync("LH400", DAY)
    probe = ("import runpy, sys\n"
             "sys.argv = ['flightsync', '-v', *sys.argv[1:]]\n"
             "try:\n"
             "    runpy.run_module('flightsync', run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             "from rich.console import Console\n"
             "from rich.table import Table\n"
             "console = Console(record=True, width=40)\n"
             "table = Table('field')\n"
             "table.add_row('drawn')\n"
             "console.print(table)\n"
             "sys.stderr.write('TABLE ' + str('drawn' in console.export_text()) + '\\n')\n")
    done = subprocess.run([sys.executable, "-c", probe, "sync", "LH400", "--date", DAY],
                          env={**os.environ, **cli.env}, capture_output=True, text=True,
                          timeout=120, check=False)

    lines = done.stderr.splitlines()
    events = [json.loads(line) for line in lines if line.startswith("{")]
    finished = [e for e in events if e["event"] == "run.finished"]
    assert json.loads(done.stdout.splitlines()[0])["from_cache"] is True
    assert len(finished) == 1 and finished[0]["pending"] is True
    assert len(finished[0]["run_id"]) == 16
    assert all(e["run_id"] == finished[0]["run_id"] for e in events)
    assert "TABLE True" in lines


def _run(run_id: str) -> _pending.PendingRun:
    now = datetime.now(UTC)
    return _pending.PendingRun(
        run_id=run_id, kind="sync", host="h", started_at=now, finished_at=now, requested=1,
        counts={"synced": 0, "from_cache": 1, "failed": 0, "conflicts": 0, "cache_hits": 4,
                "cache_misses": 0, "requested": 1}, outcome="ok")


def test_flush_records_each_run_once_and_only_into_its_database(state_dir: Path) -> None:
    """A run is written once even when a stale claim of it had already committed; runs of
    another database stay pending."""
    url = f"sqlite:///{state_dir / 'a.db'}"
    other = f"sqlite:///{state_dir / 'b.db'}"
    database = Database.open(url, create_default=True)
    try:
        _pending.record(state_dir, url, _run("run-a"))
        _pending.record(state_dir, other, _run("run-b"))
        assert _pending.flush(database, state_dir, url) == 1
        # A claim left by a process that died after committing: taken over, not doubled.
        stale = _pending.record(state_dir, url, _run("run-a"))
        claimed = stale.with_name(stale.name + ".dead.claimed")
        stale.rename(claimed)
        old = time.time() - _pending.STALE_CLAIM_SECONDS - 5
        os.utime(claimed, (old, old))
        _pending.record(state_dir, url, _run("run-c"))

        assert _pending.flush(database, state_dir, url) == 2

        with database.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(text("SELECT run_id FROM sync_run ORDER BY id"))]
    finally:
        database.close()
    assert ids == ["run-a", "run-c"]
    left = [p.name for p in pending_files(state_dir)]
    assert left == [f"{_pending.database_tag(other)}.run-b.json"]
    assert json.loads((state_dir / _pending.FOLDER / left[0]).read_text())["run_id"] == "run-b"
    mode = (state_dir / _pending.FOLDER / left[0]).stat().st_mode & 0o777
    assert mode == 0o600
