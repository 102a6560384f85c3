"""`flightsync flights` and the dates a flight command takes, through the real CLI against the
sandbox: list (JSON and table), show, track, untrack, delete (one transaction, with what hangs
off the flight), errors; the far-future guard on `sync`; `today` and `tomorrow`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.console import Console

from flightsync.cli import _flights
from flightsync.engine._flights import local_today
from flightsync.sandbox import SandboxConfig
from tests._sandbox_cli import SandboxCli, sandbox_cli

TODAY = datetime.now(UTC).date()
SOON = (TODAY + timedelta(days=2)).isoformat()


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig()) as running:
        yield running


def test_list_shows_synced_flights_earliest_first_with_a_total(cli: SandboxCli) -> None:
    """`flights list --json` lists every stored flight once, earliest departure first, with
    its route, tracking state and the total; --limit bounds it."""
    assert cli.sync("BA117", SOON).exit_code == 0
    assert cli.sync("LH400", SOON).exit_code == 0
    listed = cli.run("flights", "list", "--json")
    assert listed.exit_code == 0
    flights = listed.data["flights"]
    assert {f["flight"] for f in flights} == {"BA117", "LH400"}
    departures = [f["scheduled_departure"] for f in flights]
    assert departures == sorted(departures)
    assert all(f["tracked"] and f["date"] == SOON and f["origin"] for f in flights)
    assert listed.data["total"] == 2
    limited = cli.run("flights", "list", "--limit", "1", "--json")
    assert len(limited.data["flights"]) == 1 and limited.data["total"] == 2


def test_untrack_track_and_the_tracked_and_due_filters(cli: SandboxCli) -> None:
    """untrack takes a flight out of `--tracked` and `--due`; track puts it back, due now."""
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.run("flights", "list", "--due", "--json").data["flights"] == []
    untracked = cli.run("flights", "untrack", "LH400", "--date", SOON, "--json")
    assert untracked.exit_code == 0 and untracked.data["tracked"] is False
    assert cli.run("flights", "list", "--tracked", "--json").data["flights"] == []
    assert cli.run("flights", "list", "--json").data["total"] == 1
    tracked = cli.run("flights", "track", "LH400", "--date", SOON, "--json")
    assert tracked.exit_code == 0 and tracked.data["tracked"] is True
    due = cli.run("flights", "list", "--due", "--json").data["flights"]
    assert [f["flight"] for f in due] == ["LH400"]
    ran = cli.run("batch", "--due", "--json")
    assert ran.exit_code == 0 and ran.data["summary"]["synced"] == 1


def test_show_gives_legs_and_bookkeeping(cli: SandboxCli) -> None:
    """`flights show` returns every stored leg and the sync bookkeeping of the flight."""
    assert cli.sync("LH400", SOON).exit_code == 0
    shown = cli.run("flights", "show", "LH400", "--date", SOON, "--json")
    assert shown.exit_code == 0
    assert shown.data["flight"] == "LH400" and shown.data["tracked"] is True
    assert shown.data["legs"][0]["origin"] and shown.data["next_sync_due_at"]
    assert "leased_by" in shown.data and shown.data["consecutive_failures"] == 0


def test_delete_removes_the_flight_and_what_hangs_off_it(cli: SandboxCli) -> None:
    """`flights delete --yes` removes the legs, audit rows and observations in one go, and the
    cache: the next sync asks the providers again."""
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.count("flight_change") > 0 and cli.count("source_observation") > 0
    deleted = cli.run("flights", "delete", "LH400", "--date", SOON, "--yes", "--json")
    assert deleted.exit_code == 0, deleted.stderr
    assert deleted.data["deleted"]["legs"] >= 1
    assert (cli.count("flight"), cli.count("flight_change"),
            cli.count("source_observation")) == (0, 0, 0)
    before = cli.requests()
    again = cli.sync("LH400", SOON)
    assert again.exit_code == 0 and again.data["from_cache"] is False
    assert cli.requests() > before


@pytest.mark.parametrize("command", ["show", "track", "untrack", "delete"])
def test_a_flight_not_stored_is_exit_2_with_one_line(cli: SandboxCli, command: str) -> None:
    """Each single-flight command names a flight that is not stored in one line, exit 2."""
    extra = ["--yes"] if command == "delete" else []
    done = cli.run("flights", command, "LH401", "--date", SOON, *extra)
    assert done.exit_code == 2
    assert done.error_lines() == [
        f"error: LH401 on {SOON} is not stored (see `flightsync flights list`)"]


def test_a_bad_date_is_exit_2(cli: SandboxCli) -> None:
    """A date that is neither YYYY-MM-DD nor today/tomorrow is refused, exit 2."""
    done = cli.run("flights", "show", "LH400", "--date", "yesterday")
    assert done.exit_code == 2 and done.error_lines()[0].startswith("error: invalid date")


def test_far_future_sync_wants_track(cli: SandboxCli) -> None:
    """A sync beyond sync.max_days_ahead writes nothing and says, in one line, to pass
    --track (exit 2); with --track it syncs."""
    far = (TODAY + timedelta(days=40)).isoformat()
    refused = cli.sync("LH400", far)
    assert refused.exit_code == 2
    assert len(refused.error_lines()) == 1 and "pass --track" in refused.error_lines()[0]
    assert cli.counts()["flight"] == 0 and cli.requests() == 0
    assert cli.sync("LH400", far, "--track").exit_code == 0
    assert cli.count("flight") >= 1


def test_max_days_ahead_comes_from_the_config(cli: SandboxCli, tmp_path: Path) -> None:
    """sync.max_days_ahead in the config file moves the limit."""
    config = cli.write_config("near.yaml", {"sync": {"max_days_ahead": 1}})
    assert cli.sync("LH400", SOON, config=config).exit_code == 2
    assert cli.sync("LH400", TODAY.isoformat(), config=config).exit_code == 0


def test_today_and_tomorrow_and_the_default(cli: SandboxCli) -> None:
    """--date accepts today and tomorrow, and defaults to today (UTC for a flight never
    stored; after a sync stored it, its departure airport's today, which is within a day)."""
    tomorrow = cli.run("sync", "LH400", "--date", "tomorrow", "--json")
    assert tomorrow.exit_code == 0
    day = date.fromisoformat(tomorrow.data["flight"]["departure_date"])
    assert day == TODAY + timedelta(days=1) or abs((day - TODAY).days) <= 2
    plain = cli.run("sync", "BA117", "--json")
    assert plain.exit_code == 0
    assert plain.data["flight"]["departure_date"] == datetime.now(UTC).date().isoformat()
    shown = cli.run("flights", "show", "LH400", "--date", "TOMORROW", "--json")
    assert shown.exit_code == 0 and shown.data["date"] == day.isoformat()


def test_local_today_uses_the_departure_airport() -> None:
    """Just before midnight UTC it is already tomorrow in Tokyo: the airport's date counts,
    and without a known airport UTC's."""
    now = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert local_today(None, "NH", 1, "", now=now) == (date(2026, 3, 1), None)
    tokyo = now.astimezone(ZoneInfo("Asia/Tokyo")).date()
    assert tokyo == date(2026, 3, 2)


def test_delete_asks_at_a_terminal(cli: SandboxCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a terminal, delete asks first; answering no deletes nothing (exit 1)."""
    assert cli.sync("LH400", SOON).exit_code == 0
    monkeypatch.setattr(_flights, "_at_terminal", lambda: True)
    done = cli.run("flights", "delete", "LH400", "--date", SOON, stdin="n\n")
    assert done.exit_code == 1
    assert "Delete LH400" in done.stderr + done.stdout
    assert cli.count("flight") >= 1


def test_list_table_fits_80_columns() -> None:
    """The table of `flights list` at 80 columns shows every time and designator whole."""
    data = {"flights": [{
        "flight": "LH2472A", "date": "2026-12-06", "origin": "MUC", "destination": "HEL",
        "legs": 3, "status": "scheduled", "scheduled_departure": "2026-12-06T07:00:00Z",
        "tracked": True, "next_sync_due_at": "2026-12-05T08:58:02Z"}], "total": 7, "limit": 1}
    console = Console(width=80, record=True)
    _flights._list_table(console, data)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for token in ("LH2472A", "2026-12-06T07:00:00Z", "2026-12-05T08:58:02Z", "2026-12-06"):
        assert token in text
    assert "1 of 7 flights shown" in text
