"""Terminal output at 80 and 120 columns (rich's ``Console(width=…, record=True)``): the
renderers the commands use, fed the longest realistic values (long URLs, airport names, ISO
times with offsets, provider names), never split a token across lines: each shows whole or
ends in an ellipsis. Also: lists as lists, codeshares without JSON, batch summaries above a
handful of flights, `batch --dry-run` as a table, one line per alert."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

import pytest
from rich.console import Console

from flightsync.cli import _flights, _render, _status
from flightsync.cli._config import _table as config_table

WIDTHS = (80, 120)
LONG_URL = ("https://api.flightstats.com/flex/flightstatus/rest/v2/json/flight/status/"
            "LH/400/dep/2026/12/06")
AIRPORT = "Aeropuerto Internacional Adolfo Suárez Madrid-Barajas"
TIMES = ("2026-12-06T07:00:00Z", "2026-12-06T23:59:59+14:00", "2026-12-05T08:58:02Z")


CELL_EDGE = " │┃\n…"


def render(width: int, draw: Any, data: Any) -> str:
    console = Console(width=width, record=True, highlight=False)
    draw(console, data)
    return console.export_text()


def assert_not_split(text: str, token: str) -> None:
    """``token`` shows whole, or cut with an ellipsis; and never folded: no line holds the
    start of it at a cell's end with its rest beneath, in the same column, on the next line
    (which is what rich's ``overflow="fold"`` draws)."""
    if token not in text:
        assert any(token[:k] + "…" in text for k in range(1, len(token))), token
    lines = text.splitlines()
    for above, below in pairwise(lines):
        for k in range(1, len(token)):
            head, tail = token[:k], token[k:]
            for found in re.finditer(re.escape(head), above):
                before = above[found.start() - 1] if found.start() else "\n"
                after = above[found.end():found.end() + 1] or "\n"
                if before in CELL_EDGE and after in CELL_EDGE \
                        and below[found.start():].startswith(tail):
                    raise AssertionError(f"{token!r} folded after {head!r}:\n{text}")


def assert_fits(text: str, width: int) -> None:
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("width", WIDTHS)
def test_status(width: int) -> None:
    """`status`: breakers with ISO times, cache, database URL, last run; no token split."""
    data = {
        "breakers": {"british_airways": {"state": "half_open", "failures": 12,
                                         "opened_at": TIMES[0], "open_since": TIMES[1],
                                         "next_probe_at": TIMES[2]},
                     "airfrance_klm": {"state": "closed", "failures": 0, "opened_at": None,
                                       "open_since": None, "next_probe_at": None}},
        "tokens": {"lufthansa": {"valid": True, "expires_at": TIMES[1]}},
        "cache": {"entries": 123456, "hits": 9876543, "misses": 12345, "hit_rate": 0.9987,
                  "size_bytes": 987654321},
        "database": {"url": "postgresql+psycopg://flightsync:***@db-primary.internal.example"
                            ".com:5432/flightsync_production", "revision": "0011_source_dep",
                     "flights": 120000, "stale": 3, "open_conflicts": 12},
        "last_run": {"run_id": "17f7c86082524599", "kind": "batch_due", "started_at": TIMES[0],
                     "finished_at": TIMES[2], "outcome": "partial"},
        "alerts": ["breaker_open: british_airways open since 2026-12-06T07:00:00Z"],
    }
    text = render(width, _render.status, data)
    assert_fits(text, width)
    for token in (*TIMES, "british_airways", "airfrance_klm", "half_open", "17f7c86082524599",
                  "postgresql+psycopg://flightsync:***@db-primary.internal.example.com:5432/"
                  "flightsync_production"):
        assert_not_split(text, token)
    assert text.count("alert:") == 1
    quiet = render(width, lambda c, d: _render.status(c, d, alerts=False), data)
    assert "alert:" not in quiet  # status --check prints them on stderr instead


@pytest.mark.parametrize("width", WIDTHS)
def test_explain(width: int) -> None:
    """`explain`: codeshares as a list (no JSON), every provider's ISO time whole."""
    data = {"flight": "LH400", "date": "2026-12-06", "legs": [{
        "leg_index": 0, "origin": "FRA", "version": 7, "open_conflicts": [],
        "fields": [
            {"field": "codeshares", "value": ["UA9051", "AC9099", "NH5405", "SQ7452"],
             "source": "lufthansa", "rule": "agree",
             "observations": {"lufthansa": ["UA9051", "AC9099"], "flightaware": ["UA9051"]}},
            {"field": "estimated_departure", "value": TIMES[0], "source": "british_airways",
             "rule": "most_recent", "observations": {"british_airways": TIMES[0],
                                                     "airfrance_klm": TIMES[1]}},
        ],
        "rejected": [{"source": "flightaware", "field": "actual_arrival", "value": TIMES[1],
                      "reason": "arrival_not_after_departure",
                      "detail": f"{TIMES[1]} is not after {TIMES[0]}",
                      "observed_at": TIMES[2]}]}]}
    text = render(width, _status._explain_table, data)
    assert_fits(text, width)
    assert "[" not in text and '"' not in text
    for token in (*TIMES[:2], "UA9051", "NH5405", "british_airways", "most_recent",
                  "arrival_not_after_departure"):
        assert_not_split(text, token)


@pytest.mark.parametrize("width", WIDTHS)
def test_conflicts_list(width: int) -> None:
    """`conflicts list`: each provider's value on its own line, times whole."""
    rows = [{"id": 123456, "flight": "LH2472A", "date": "2026-12-06", "leg_index": 2,
             "field": "estimated_arrival", "values": {"british_airways": TIMES[1],
                                                      "airfrance_klm": TIMES[0]},
             "status": "open"}]
    text = render(width, lambda c, d: _render.records(
        c, d, "conflicts", ["id", "flight", "date", "leg_index", "field", "values", "status"]),
        rows)
    assert_fits(text, width)
    for token in ("british_airways:", "airfrance_klm:", *TIMES[:2], "estimated_arrival"):
        assert_not_split(text, token)


@pytest.mark.parametrize("width", WIDTHS)
def test_providers_with_long_urls(width: int) -> None:
    """`providers`: carriers as a list, a long base URL and reason never folded."""
    rows = [{"name": "cirium", "configured": True, "priority": 60, "carriers": "all",
             "base_url": LONG_URL, "reason": None},
            {"name": "airfrance_klm", "configured": False, "priority": 20,
             "carriers": ["AF", "KL", "HV", "TO", "A5"], "base_url":
             "https://api.airfranceklm.com", "reason":
             "missing credentials: AFKLM_API_KEY (see README, Configuration)"}]
    text = render(width, lambda c, d: _render.records(
        c, d, "providers", ["name", "configured", "priority", "carriers", "base_url",
                            "reason"]), rows)
    assert_fits(text, width)
    for token in (LONG_URL, "https://api.airfranceklm.com", "airfrance_klm", "AFKLM_API_KEY"):
        assert_not_split(text, token)


@pytest.mark.parametrize("width", WIDTHS)
def test_batch_summary_above_a_handful(width: int) -> None:
    """`batch`: up to BATCH_ROWS_MAX flights a row each; above it counts per outcome, the
    failures listed (at most BATCH_ROWS_MAX) and the summary line."""
    def ok(number: int, status: str) -> dict[str, Any]:
        return {"flight": {"carrier": "LH", "flight_number": number}, "sync_status": status,
                "from_cache": False}
    failed = [{"flight": f"BA{n}", "date": "2026-12-06", "error": {
        "code": "all_providers_failed", "message": f"no provider answered: british_airways: "
        f"provider_timeout ({LONG_URL})"}} for n in range(12)]
    many = {"run_id": "17f7c86082524599", "successful": [ok(n, "synced") for n in range(30)]
            + [ok(n, "conflict") for n in range(3)], "failed": failed,
            "summary": {"synced": 33, "from_cache": 0, "failed": 12, "conflicts": 3,
                        "elapsed_ms": 123456}}
    text = render(width, _render.batch_result, many)
    assert_fits(text, width)
    assert "synced: 3 conflict, 30 synced" in text
    assert "LH29" not in text  # no row per synced flight
    assert "... and 2 more failed" in text
    assert "run_id=17f7c86082524599" in text
    few = render(width, _render.batch_result, {**many, "successful": many["successful"][:3],
                                               "failed": []})
    assert "LH1" in few and "synced:" not in few


@pytest.mark.parametrize("width", WIDTHS)
def test_dry_run_is_a_table(width: int) -> None:
    """`batch --dry-run`: the flights as rows, not a JSON list in a cell."""
    data = {"dry_run": True, "requested": 3, "duplicates": 1,
            "flights": [{"flight": "LH400", "date": "2026-12-06"},
                        {"flight": "BA117", "date": "2026-12-07"}],
            "failed": [{"line": 4, "error": {"code": "invalid_flight",
                                             "message": "invalid flight designator 'X'"}}]}
    text = render(width, _render.dry_run, data)
    assert "{" not in text and "[" not in text
    assert "LH400" in text and "BA117" in text and "2026-12-07" in text
    assert "requested=3 duplicates=1 failed=1" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_flights_list(width: int) -> None:
    """`flights list`: designator, route, times whole; an untracked flight says so."""
    data = {"flights": [
        {"flight": "LH2472A", "date": "2026-12-06", "origin": "MAD", "destination": "FRA",
         "legs": 3, "status": "cancelled", "scheduled_departure": TIMES[1], "tracked": True,
         "next_sync_due_at": TIMES[2]},
        {"flight": "BA117", "date": "2026-12-06", "origin": "LHR", "destination": "JFK",
         "legs": 1, "status": "scheduled", "scheduled_departure": TIMES[0], "tracked": False,
         "next_sync_due_at": None}], "total": 2, "limit": 100}
    text = render(width, _flights._list_table, data)
    assert_fits(text, width)
    for token in (*TIMES, "LH2472A", "untracked", "cancelled"):
        assert_not_split(text, token)


@pytest.mark.parametrize("width", WIDTHS)
def test_config_show_with_an_airport_name_and_url(width: int) -> None:
    """`config show`: long values (a URL, a name with spaces) whole or wrapped at spaces."""
    data = {"config_file": "/etc/flightsync/flightsync.yaml", "settings": [
        {"key": "providers.cirium.base_url", "value": LONG_URL,
         "origin": "environment CIRIUM_BASE_URL"},
        {"key": "notify", "value": [f"https://hooks.example.com/{AIRPORT.replace(' ', '-')}"],
         "origin": "file /etc/flightsync/flightsync.yaml"},
        {"key": "metrics.textfile", "value": AIRPORT, "origin": "default"}]}
    text = render(width, config_table, data)
    assert_fits(text, width)
    for token in (LONG_URL, "providers.cirium.base_url", "CIRIUM_BASE_URL", "Madrid-Barajas",
                  "/etc/flightsync/flightsync.yaml"):
        assert_not_split(text, token)


def test_the_check_catches_a_folded_token() -> None:
    """The check above fails on what rich's fold draws, so the tests above can fail."""
    from rich.table import Table  # noqa: PLC0415

    console = Console(width=16, record=True)
    table = Table()
    table.add_column("time", overflow="fold")
    table.add_row(f"at {TIMES[0]}")
    console.print(table)
    with pytest.raises(AssertionError):
        assert_not_split(console.export_text(), TIMES[0])
