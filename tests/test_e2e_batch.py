"""`flightsync batch` end to end: files and stdin, a provider failing under a sandbox fault, its
breaker across runs, and the input rules of docs/CONTRACTS.md section 1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flightsync.sandbox import Fault, SandboxConfig
from tests._sandbox_cli import CliResult, SandboxCli, batch_csv, batch_jsonl, sandbox_cli

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
# 30 Lufthansa flights (Lufthansa's adapter covers them) and 20 Air France ones (it does not).
LH_FLIGHTS = [(f"LH{400 + 2 * i}", DAY) for i in range(30)]
AF_FLIGHTS = [(f"AF{1000 + 2 * i}", DAY) for i in range(20)]
FLIGHTS = LH_FLIGHTS + AF_FLIGHTS
LUFTHANSA_DOWN = Fault(provider="lufthansa", kind="status_5xx", status=503)
LONG = {"breaker": {"failure_threshold": 2, "reset_timeout_seconds": 3600}}
TINY = {"breaker": {"failure_threshold": 2, "reset_timeout_seconds": 0.001}}


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


@pytest.fixture
def failing(state_dir: Path) -> Iterator[SandboxCli]:
    """The sandbox with Lufthansa answering every data call with 503."""
    with sandbox_cli(state_dir, SandboxConfig(now=NOW, faults=(LUFTHANSA_DOWN,))) as running:
        yield running


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def by_flight(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['flight']['carrier']}{r['flight']['flight_number']}": r
            for r in data["successful"]}


def stored_flights(cli: SandboxCli) -> set[str]:
    rows = cli.rows("SELECT DISTINCT carrier, flight_number FROM flight")
    return {f"{r['carrier']}{r['flight_number']}" for r in rows}


def breaker_states(cli: SandboxCli, config: Path) -> dict[str, str]:
    """Each provider's breaker state as `flightsync status` reports it."""
    status = cli.run("status", config=config)
    assert status.exit_code == 0, status.stderr
    return {name: view["state"] for name, view in status.data["breakers"].items()}


def assert_partial_where_lufthansa_covers(data: dict[str, Any]) -> None:
    results = by_flight(data)
    assert set(results) == {f for f, _ in FLIGHTS}
    for name, result in results.items():
        sources = {s["name"]: s for s in result["sources"]}
        if name.startswith("LH"):
            assert result["sync_status"] == "partial", name
            assert sources["lufthansa"]["ok"] is False
            assert any(s["ok"] for s in sources.values())
        else:
            assert result["sync_status"] == "synced", name
            assert "lufthansa" not in sources


@pytest.mark.parametrize("form", ["csv", "jsonl", "stdin"])
def test_batch_of_50_with_one_provider_failing(failing: SandboxCli, tmp_path: Path,
                                               form: str) -> None:
    """50 flights from a CSV file, a JSON Lines file or stdin while Lufthansa fails: every
    flight is stored, those Lufthansa covers are `partial`, its breaker opens, exit 0."""
    config = failing.write_config("long", LONG)
    if form == "stdin":
        result = failing.run("batch", "-", stdin=batch_csv(FLIGHTS), config=config)
    else:
        text = batch_csv(FLIGHTS) if form == "csv" else batch_jsonl(FLIGHTS)
        result = failing.run("batch", str(write(tmp_path, f"in.{form}", text)), config=config)

    assert result.exit_code == 0, result.stderr
    data = result.data
    assert data["requested"] == 50 and data["failed"] == []
    assert data["summary"]["synced"] == 50 and data["summary"]["failed"] == 0
    assert_partial_where_lufthansa_covers(data)
    assert stored_flights(failing) == {f for f, _ in FLIGHTS}
    states = breaker_states(failing, config)
    assert states["lufthansa"] == "open"
    assert states["flightaware"] == states["amadeus"] == "closed"
    [run] = failing.rows("SELECT kind, requested, failed FROM sync_run WHERE kind = 'batch'")
    assert (run["requested"], run["failed"]) == (50, 0)


def test_open_breaker_skips_the_provider_until_the_reset_timeout(failing: SandboxCli,
                                                                 tmp_path: Path) -> None:
    """A provider that failed in one run is not called by the next while its breaker is open;
    once the reset timeout has passed, a later run probes it and, answered, closes it."""
    long_config = failing.write_config("long", LONG)
    tiny_config = failing.write_config("tiny", TINY)
    path = write(tmp_path, "in.csv", batch_csv(FLIGHTS))
    assert failing.run("batch", str(path), config=long_config).exit_code == 0
    calls = failing.requests("lufthansa")
    assert calls > 0

    skipped = failing.run("batch", str(path), config=long_config)

    assert skipped.exit_code == 0
    assert failing.requests("lufthansa") == calls
    assert_partial_where_lufthansa_covers(skipped.data)
    lufthansa = [s for r in skipped.data["successful"] for s in r["sources"]
                 if s["name"] == "lufthansa"]
    assert len(lufthansa) == len(LH_FLIGHTS)
    assert all(s["error"] == "circuit_open" for s in lufthansa)

    failing.scenario(faults=[])
    probed = failing.run("batch", str(path), config=tiny_config)

    assert probed.exit_code == 0
    assert failing.requests("lufthansa") > calls
    assert breaker_states(failing, tiny_config)["lufthansa"] == "closed"
    answered = [r for r in by_flight(probed.data).values()
                if any(s["name"] == "lufthansa" and s["ok"] for s in r["sources"])]
    assert answered and all(r["sync_status"] == "synced" for r in answered)


def test_breaker_reset_closes_it_for_the_next_run(failing: SandboxCli, tmp_path: Path) -> None:
    """`breaker reset NAME` closes an open breaker: the next sync calls the provider again."""
    config = failing.write_config("long", LONG)
    failing.run("batch", str(write(tmp_path, "in.csv", batch_csv(LH_FLIGHTS[:5]))),
                config=config)
    assert breaker_states(failing, config)["lufthansa"] == "open"
    failing.scenario(faults=[])
    calls = failing.requests("lufthansa")

    reset = failing.run("breaker", "reset", "lufthansa", config=config)

    assert reset.exit_code == 0 and reset.data["reset"] == ["lufthansa"]
    assert breaker_states(failing, config)["lufthansa"] == "closed"
    synced = failing.sync(*LH_FLIGHTS[0], config=config)
    assert synced.data["sync_status"] == "synced"
    assert failing.requests("lufthansa") == calls + 1


@pytest.mark.parametrize("name", ["ryanair", "LUFTHANSA"])
def test_breaker_reset_of_an_unknown_provider_is_exit_2(cli: SandboxCli, name: str) -> None:
    """A misspelt provider name is refused, listing the known ones, and resets nothing."""
    refused = cli.run("breaker", "reset", name)

    assert refused.exit_code == 2
    assert refused.error_lines() and "unknown provider" in refused.error_lines()[0]
    assert "lufthansa" in refused.error_lines()[0]


def test_bad_lines_are_reported_and_the_rest_run(cli: SandboxCli, tmp_path: Path) -> None:
    """Bad lines are reported with their line numbers, the good ones are synced, exit 1."""
    text = ("flight,date\nLH400,2026-02-25\nL-H1,2026-02-25\nLH402,2026-02-25\n"
            "LH404,2026-13-01\nLH406,2026-02-25,extra\n")
    result = cli.run("batch", str(write(tmp_path, "in.csv", text)))

    assert result.exit_code == 1
    data = result.data
    assert sorted(by_flight(data)) == ["LH400", "LH402"]
    assert sorted(f["line"] for f in data["failed"]) == [3, 5, 6]
    for failure in data["failed"]:
        assert f"line {failure['line']}" in failure["error"]["message"]
    assert data["requested"] == 5 and data["summary"]["failed"] == 3
    assert stored_flights(cli) == {"LH400", "LH402"}


def test_strict_refuses_the_whole_input(cli: SandboxCli, tmp_path: Path) -> None:
    """--strict with one bad line: exit 2, no provider called, nothing written."""
    text = batch_jsonl([("LH400", DAY), ("LH402", DAY)]) + '{"flight": "LH", "date": "x"}\n'
    result = cli.run("batch", "--strict", str(write(tmp_path, "in.jsonl", text)))

    assert result.exit_code == 2
    assert len(result.error_lines()) == 1 and "line 3" in result.error_lines()[0]
    assert cli.requests() == 0
    assert cli.counts() == dict.fromkeys(cli.counts(), 0)


@pytest.mark.parametrize("content", [
    b"flight,date\n\x00\x01\x02binary\n", b"LH400,2026-02-25\nLH402,2026-02-25\n", b"",
    b"flight,date\n\xff\xfe not utf-8\n",
], ids=["binary", "no-header", "empty", "not-utf8"])
def test_unreadable_input_is_exit_2(cli: SandboxCli, tmp_path: Path, content: bytes) -> None:
    """Input that cannot be read at all is exit 2 with one error line; nothing is written."""
    result = cli.run("batch", str(write(tmp_path, "in.csv", content)))

    assert result.exit_code == 2
    assert len(result.error_lines()) == 1
    assert result.data["error"]["code"] == "invalid_batch_file"
    assert cli.requests() == 0
    assert cli.counts() == dict.fromkeys(cli.counts(), 0)


def test_missing_file_is_exit_2(cli: SandboxCli, tmp_path: Path) -> None:
    """A batch file that does not exist is exit 2, naming it."""
    result = cli.run("batch", str(tmp_path / "nope.csv"))

    assert result.exit_code == 2
    assert "nope.csv" in result.error_lines()[0]
    assert cli.requests() == 0


def test_duplicates_are_synced_once(cli: SandboxCli, tmp_path: Path) -> None:
    """LH400, LH0400 and 'lh 400' on one date are one flight: one result, one call each."""
    text = "flight,date\nLH400,2026-02-25\nLH0400,2026-02-25\nlh 400,2026-02-25\n"
    result = cli.run("batch", str(write(tmp_path, "in.csv", text)))

    assert result.exit_code == 0
    assert list(by_flight(result.data)) == ["LH400"]
    assert cli.requests("lufthansa") == 1
    assert cli.count("flight") == 1


def test_limit_caps_the_flights(cli: SandboxCli, tmp_path: Path) -> None:
    """More distinct flights than --limit is refused (exit 2, nothing written); at the limit
    they all run."""
    path = write(tmp_path, "in.csv", batch_csv(LH_FLIGHTS[:3]))

    refused = cli.run("batch", "--limit", "2", str(path))
    assert refused.exit_code == 2
    assert cli.requests() == 0

    allowed = cli.run("batch", "--limit", "3", str(path))
    assert allowed.exit_code == 0
    assert len(allowed.data["successful"]) == 3


def test_dry_run_writes_nothing(cli: SandboxCli, tmp_path: Path) -> None:
    """--dry-run lists the flights it would sync and calls no provider, writes no row."""
    path = write(tmp_path, "in.csv", batch_csv([*LH_FLIGHTS[:3], LH_FLIGHTS[0]]))
    cli.sync("AF1000", DAY)
    counts = cli.counts()
    calls = cli.requests()

    result = cli.run("batch", "--dry-run", str(path))

    assert result.exit_code == 0
    assert result.data["dry_run"] is True
    assert [f["flight"] for f in result.data["flights"]] == [f for f, _ in LH_FLIGHTS[:3]]
    assert result.data["duplicates"] == 1
    assert cli.requests() == calls
    assert cli.counts() == counts


def test_due_dry_run_lists_due_flights_without_claiming(cli: SandboxCli) -> None:
    """`batch --due --dry-run` lists the tracked flights whose refresh is due, earliest
    departure first, and neither calls a provider nor leases or writes anything."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # still tracked
    for flight, _ in LH_FLIGHTS[:3]:
        assert cli.sync(flight, tomorrow).exit_code == 0
    with sa.create_engine(cli.database_url).begin() as conn:  # make two of them due
        conn.execute(sa.text("UPDATE flight SET next_sync_due_at = :past "
                             "WHERE flight_number IN (402, 404)"),
                     {"past": "2000-01-01 00:00:00.000000"})  # the store's UTC text form
    counts = cli.counts()
    calls = cli.requests()

    result = cli.run("batch", "--due", "--dry-run")

    assert result.exit_code == 0
    assert result.data["dry_run"] is True
    assert {f["flight"] for f in result.data["flights"]} == {"LH402", "LH404"}
    assert cli.requests() == calls
    assert cli.counts() == counts
    assert cli.rows("SELECT count(*) AS n FROM flight WHERE lease_owner IS NOT NULL")[0]["n"] == 0


def test_due_rounds_overlap_within_the_limit_and_sync_each_flight_once(
        cli: SandboxCli) -> None:
    """`batch --due --limit 5` in rounds of 2 (each claimed while the one before is still
    at work): the 5 first in the due order synced once each, the other 2 still due and no
    lease left; the next run takes exactly those 2."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()  # still tracked
    flights = [f"LH{400 + 2 * n}" for n in range(7)]
    for flight in flights:
        assert cli.sync(flight, tomorrow).exit_code == 0
    with sa.create_engine(cli.database_url).begin() as conn:  # all due
        conn.execute(sa.text("UPDATE flight SET next_sync_due_at = :past"),
                     {"past": "2000-01-01 00:00:00.000000"})  # the store's UTC text form
    order = [f["flight"] for f in cli.run("batch", "--due", "--dry-run").data["flights"]]
    config = cli.write_config("rounds", {"batch": {"size": 2}})

    first = cli.run("batch", "--due", "--limit", "5", config=config)

    assert first.exit_code == 0, first.stderr
    assert first.data["summary"]["synced"] == 5
    synced = [f"LH{r['flight']['flight_number']}" for r in first.data["successful"]]
    assert sorted(synced) == sorted(order[:5])
    attempts = {f"LH{r['flight_number']}": r["sync_attempts"] for r in cli.rows(
        "SELECT flight_number, sync_attempts FROM flight WHERE leg_index = 0")}
    assert attempts == {f: 2 if f in synced else 1 for f in flights}
    assert cli.rows("SELECT count(*) AS n FROM flight WHERE lease_owner IS NOT NULL")[0]["n"] == 0
    second = cli.run("batch", "--due", config=config)
    assert sorted(f"LH{r['flight']['flight_number']}" for r in second.data["successful"]) == (
        sorted(set(flights) - set(synced)))


def test_a_provider_without_credentials_is_warned_about_by_fetching_runs_only(
        cli: SandboxCli, tmp_path: Path) -> None:
    """FlightAware without its key: a batch that fetches logs one provider.skipped warning
    naming the variable (not one per flight); `status` and `providers`, which call no
    provider, log none."""
    no_key = {"FLIGHTAWARE_API_KEY": ""}

    def skipped(result: CliResult) -> list[dict[str, Any]]:
        events = [json.loads(line) for line in result.stderr.splitlines()
                  if line.startswith("{")]
        return [e for e in events if e["event"] == "provider.skipped"]

    batch = cli.run("batch", str(write(tmp_path, "in.csv", batch_csv(LH_FLIGHTS[:3]))),
                    env=no_key)
    assert batch.exit_code == 0, batch.stderr
    [warning] = skipped(batch)
    assert (warning["provider"], warning["missing"]) == ("flightaware", ["FLIGHTAWARE_API_KEY"])
    for quiet in (cli.run("status", env=no_key), cli.run("providers", env=no_key)):
        assert quiet.exit_code == 0, quiet.stderr
        assert skipped(quiet) == []
