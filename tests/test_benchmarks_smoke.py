"""The benchmark harness runs end to end in --quick mode with tiny sizes (no timing asserted),
and the schema check's Alembic-free shortcut agrees with Alembic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks._env import PROVIDERS
from flightsync.store import migrate
from flightsync.store._heads import script_heads

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = ("fresh_sync", "cached_sync", "cli_sync_cached", "cli_help", "cli_status",
             "batch_4", "batch_8", "batch_8_rss", "conflict_resolution", "db_writes_sqlite",
             "db_writes_sqlite_floor", "db_writes_postgres", "db_writes_postgres_floor",
             "state_redis_get_floor", "state_breaker_disk",
             "state_breaker_redis", "state_cache_hit_disk", "state_cache_hit_redis")


def test_quick_run_prints_every_scenario_and_valid_json(tmp_path: Path) -> None:
    """`python -m benchmarks --quick` with tiny sizes prints a table row for every scenario
    and saves JSON holding every scenario with a number (or a note saying why not)."""
    saved = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if k != "FLIGHTSYNC_STATE_DIR"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--runs", "1", "--latency-ms", "5",
         "--batch-flights", "4,8", "--db-flights", "70", "--save", str(saved)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    table_keys = [line.split()[0] for line in done.stdout.splitlines()
                  if line and not line.startswith(" ")]
    for key in SCENARIOS:
        assert key in table_keys, f"{key} missing from the table:\n{done.stdout}"
    result = json.loads(saved.read_text(encoding="utf-8"))
    rows = {row["scenario"]: row for row in result["scenarios"]}
    assert set(rows) == set(SCENARIOS)
    for key, row in rows.items():
        assert isinstance(row["value"], int | float) or row["note"], key
        assert row["met"] in (True, False, None), key
    assert result["latency_ms"] == 5
    # Every provider the benchmark asks, once per flight.
    assert rows["batch_8"]["detail"]["requests"] == 8 * len(PROVIDERS)
    assert rows["db_writes_sqlite"]["detail"]["flights"] == 70
    # The write rows' client CPU per group, which moves less than wall time with the load.
    assert rows["db_writes_sqlite"]["detail"]["cpu_ms_per_group"] > 0


def test_schema_heads_read_without_alembic_match_alembic() -> None:
    """The head revision(s) read from the scripts' source equal Alembic's, so the fast path
    of Database.check_schema accepts exactly the databases Alembic would."""
    assert script_heads() == migrate.heads()
    assert script_heads()  # never "could not tell" for the shipped scripts


def test_compare_shows_an_earlier_runs_values_and_the_change(tmp_path: Path) -> None:
    """`--compare FILE` reads a run saved with --save: the table gains that run's value and
    the change per scenario; a scenario it lacks shows none; a file that is not a saved
    result is refused (exit 2) before anything runs."""
    from benchmarks._report import Row, load_before, render  # noqa: PLC0415

    saved = tmp_path / "before.json"
    saved.write_text(json.dumps({"scenarios": [
        {"scenario": "cli_sync_cached", "value": 200.0},
        {"scenario": "db_writes_sqlite", "value": None, "note": "skipped"}]}))
    before = load_before(saved)
    assert before == {"cli_sync_cached": 200.0}
    rows = [Row("cli_sync_cached", "t", "f", "ms", 200, at_most=True, value=150.0),
            Row("cli_help", "t", "f", "ms", 150, at_most=True, value=40.0)]
    table = render(rows, {"run": 1}, before).splitlines()
    assert table[2].split()[-2:] == ["before", "change"]
    assert table[4].split()[-2:] == ["200", "-25%"]
    assert table[6].split()[-2:] == ["yes", "-"]

    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--compare", str(bad)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "not a saved benchmark result" in done.stderr
    assert "benchmarks:" not in done.stderr  # no step ran


def test_storage_run_reports_both_modes_per_day(tmp_path: Path) -> None:
    """`python -m benchmarks --storage` with a tiny scenario (one simulated day, two rounds,
    three flights) saves JSON with a before and an after run, each with a figure per day;
    the after run stores fewer observations than the before run for the same syncs."""
    saved = tmp_path / "storage.json"
    env = {k: v for k, v in os.environ.items() if k != "FLIGHTSYNC_STATE_DIR"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--storage", "--days", "1", "--before-days", "1",
         "--round-minutes", "720", "--new-per-day", "3", "--save", str(saved)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = {run["mode"]: run for run in json.loads(saved.read_text(encoding="utf-8"))["runs"]}
    assert set(runs) == {"before", "after"}
    before, after = runs["before"]["per_day"][0], runs["after"]["per_day"][0]
    assert before["syncs"] == after["syncs"] > 0
    assert after["rows"]["source_observation"] < before["rows"]["source_observation"]
    assert "before:" in done.stdout and "after:" in done.stdout
