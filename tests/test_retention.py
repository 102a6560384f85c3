"""Everything else stays bounded (issue 16): `batch --due` prunes a slice within its time
budget; the spool's done/ and failed/ folders, the state directory's cache and the tokens of
removed providers are bounded too; `status` shows the database's size and rows per table."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flightsync import config
from flightsync.engine import _prune
from flightsync.engine._clock import ManualClock, SystemClock
from flightsync.engine._spool import prune_spool
from flightsync.engine._wiring import open_engine
from flightsync.resilience import StateStore, open_state
from flightsync.store import Database, migrate
from flightsync.store.tables import SyncRun
from tests._e2e import invoke, write_config

_RUN = SyncRun.__table__  # type: ignore[attr-defined]


class TickingClock(SystemClock):
    """The real instant; ``monotonic`` moves one second per reading (the budget's clock)."""

    def __init__(self) -> None:
        self.readings = 0

    def monotonic(self) -> float:
        self.readings += 1
        return float(self.readings)


def _setup(tmp_path: Path, runs: int, **retention: object) -> tuple[dict[str, str], Database]:
    state = tmp_path / "state"
    url = f"sqlite:///{state / 'flightsync.db'}"
    migrate.upgrade(url)
    db = Database.open(url)
    old = datetime.now(UTC) - timedelta(days=100)
    with db.session() as session:
        session.execute(_RUN.insert(), [{"run_id": f"old-{i}", "kind": "batch",
                                         "started_at": old, "outcome": "ok"}
                                        for i in range(runs)])
    path = write_config(tmp_path / "flightsync.yaml", retention=retention)
    return {"FLIGHTSYNC_CONFIG": str(path), "FLIGHTSYNC_STATE_DIR": str(state)}, db


def _old_runs(db: Database) -> int:
    with db.session() as session:
        return int(session.execute(select(func.count()).select_from(_RUN).where(
            _RUN.c.run_id.like("old-%"))).scalar_one())


@pytest.fixture
def env_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[dict[str, str], Database]]:
    env, db = _setup(tmp_path, 10, chunk_rows=1, batch_budget_seconds=6)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env, db
    db.close()


def test_the_batch_slice_stops_at_its_budget(env_db: tuple[dict[str, str], Database]
                                             ) -> None:
    """A 6 s budget on a clock read once at the start and once before each chunk allows
    five chunks: one each for raw answers, observations and audit rows (nothing to remove),
    then two of the ten old runs (chunks of one row); the seventh reading finds the budget
    spent and the rest waits for the next run."""
    _, db = env_db
    settings = config.load_settings(Path(os.environ["FLIGHTSYNC_CONFIG"]), os.environ)
    with open_engine(settings, run_kind="batch_due") as engine:
        engine.clock = clock = TickingClock()
        report = _prune.after_batch(engine)
    assert report is not None and report["complete"] is False
    assert clock.readings == 7
    assert next(t for t in report["tables"] if t["name"] == "runs")["removed"] == 2
    assert _old_runs(db) == 8


def test_batch_due_prunes_after_its_work(env_db: tuple[dict[str, str], Database]) -> None:
    """The real `batch --due` (nothing due) runs the pruning slice: with a generous budget
    every old run goes, the run's own row stays."""
    env, db = env_db
    path = write_config(Path(env["FLIGHTSYNC_CONFIG"]), retention={"chunk_rows": 3,
                                                                   "batch_budget_seconds": 60})
    done = invoke(["--json", "batch", "--due"], {**env, "FLIGHTSYNC_CONFIG": str(path)})
    assert done.exit_code == 0, done.stderr
    assert _old_runs(db) == 0
    with db.session() as session:
        assert session.execute(select(func.count()).select_from(_RUN)).scalar_one() == 1


def test_a_zero_budget_turns_the_slice_off(env_db: tuple[dict[str, str], Database]) -> None:
    """retention.batch_budget_seconds 0: `batch --due` prunes nothing."""
    env, db = env_db
    path = write_config(Path(env["FLIGHTSYNC_CONFIG"]), retention={"batch_budget_seconds": 0})
    assert invoke(["--json", "batch", "--due"],
                  {**env, "FLIGHTSYNC_CONFIG": str(path)}).exit_code == 0
    assert _old_runs(db) == 10


def test_status_shows_the_database_size_and_rows_per_table(
        env_db: tuple[dict[str, str], Database]) -> None:
    """`status --json` gives the file's size in bytes and every table's exact row count on
    SQLite (no estimate)."""
    env, _ = env_db
    status = invoke(["--json", "status"], env)
    assert status.exit_code == 0, status.stderr
    database = json.loads(status.stdout)["database"]
    db_file = Path(env["FLIGHTSYNC_STATE_DIR"]) / "flightsync.db"
    assert 0 < database["size_bytes"] <= db_file.stat().st_size
    assert database["rows"]["sync_run"] == {"rows": 10, "estimate": False}
    assert database["rows"]["flight"] == {"rows": 0, "estimate": False}
    assert set(database["rows"]) >= {"source_observation", "flight_change", "prune_mark"}


def test_status_on_postgresql_counts_small_tables_exactly(pg_url: str, tmp_path: Path
                                                          ) -> None:
    """On PostgreSQL the size comes from pg_database_size; tables under the estimate
    threshold are counted exactly."""
    migrate.upgrade(pg_url)
    path = write_config(tmp_path / "flightsync.yaml", database_url=pg_url)
    status = invoke(["--json", "status"], {"FLIGHTSYNC_CONFIG": str(path),
                                           "FLIGHTSYNC_STATE_DIR": str(tmp_path / "s")})
    assert status.exit_code == 0, status.stderr
    database = json.loads(status.stdout)["database"]
    assert database["size_bytes"] > 0
    assert database["rows"]["flight"] == {"rows": 0, "estimate": False}


def test_the_spool_keeps_its_done_and_failed_files_for_spool_days(tmp_path: Path) -> None:
    """Files of done/ and failed/ that arrived before the cutoff go (each event with its
    .headers and .reason); newer ones, and anything still in the spool itself, stay."""
    spool = tmp_path / "spool"
    old = time.time() - 31 * 86400
    files = {}
    for folder, name in (("done", "a.json"), ("done", "a.headers"), ("failed", "b.json"),
                         ("failed", "b.reason"), ("done", "new.json"), (".", "waiting.json")):
        path = spool / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}", encoding="utf-8")
        files[name] = path
        if name[0] in "ab" or name == "waiting.json":
            os.utime(path, (old, old))
    removed = prune_spool(spool, datetime.now(UTC) - timedelta(days=30))
    assert removed == 4
    assert sorted(p.name for p in files.values() if p.exists()) == ["new.json", "waiting.json"]


def test_the_cache_folder_has_a_size_limit_culled_oldest_first(tmp_path: Path) -> None:
    """cache.size_limit_mb reaches diskcache: writing three times the limit keeps the folder
    near it, and the entries stored last are the ones kept."""
    settings = config.load_settings(None, {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "s")})
    settings = settings.model_copy(update={"cache": settings.cache.model_copy(
        update={"size_limit_mb": 1})})
    with open_state(settings) as state:
        raw = state.cache.raw  # type: ignore[attr-defined]
        assert raw.size_limit == 1024 * 1024
        assert raw.eviction_policy == "least-recently-stored"
        for i in range(300):
            state.cache.set(f"k{i}", os.urandom(10_000))
        assert raw.volume() < 2 * 1024 * 1024
        assert state.cache.get("k299") is not None and state.cache.get("k0") is None


def test_tokens_of_removed_providers_are_dropped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An OAuth token cached for a provider no longer configured is deleted by a prune; a
    configured provider's token and the lock entries stay."""
    state_dir = tmp_path / "state"
    migrate.upgrade(f"sqlite:///{state_dir / 'flightsync.db'}")
    monkeypatch.setenv("FLIGHTSYNC_STATE_DIR", str(state_dir))
    settings = config.load_settings(None, dict(os.environ))
    with open_engine(settings, run_kind="prune") as engine:
        configured = next(iter(engine.provider_set.adapters), None)
    with StateStore(state_dir) as store:
        store.tokens.set("oauth:gone_provider:https://x:abc", {"access_token": "t"})
        store.tokens.set("lock:gone_provider", "x")
        if configured is not None:
            store.tokens.set(f"oauth:{configured}:https://y:abc", {"access_token": "t"})
    outcome = invoke(["--json", "prune"], {"FLIGHTSYNC_STATE_DIR": str(state_dir)})
    assert outcome.exit_code == 0, outcome.stderr
    assert json.loads(outcome.stdout)["tokens_dropped"] == 1
    with StateStore(state_dir) as store:
        keys = set(store.tokens.keys())
    assert "oauth:gone_provider:https://x:abc" not in keys
    assert "lock:gone_provider" in keys
    if configured is not None:
        assert f"oauth:{configured}:https://y:abc" in keys


def test_the_engine_clock_stamps_what_a_run_writes(
        env_db: tuple[dict[str, str], Database]) -> None:
    """With a ManualClock on the engine (as the storage benchmark drives it), the run's
    sync_run row carries the clock's instant, not the wall clock's, and the pruning slice
    measures its horizons from it: a run 'ten days ago' is not past the 90-day horizon."""
    _, db = env_db
    settings = config.load_settings(Path(os.environ["FLIGHTSYNC_CONFIG"]), os.environ)
    then = datetime.now(UTC) - timedelta(days=95)
    with open_engine(settings, run_kind="batch_due") as engine:
        engine.clock = ManualClock(then)
        engine.batch_due(limit=10, notify=False)
        run_id = engine.run_id
    with db.session() as session:
        started = session.execute(select(_RUN.c.started_at).where(
            _RUN.c.run_id == run_id)).scalar_one()
    assert started == then
    assert _old_runs(db) == 10  # 100 days old, only 5 days before the clock's "now"
