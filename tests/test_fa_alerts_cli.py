"""`flightsync alerts register|list|remove` through the real CLI against the sandbox's AeroAPI
alert endpoints, the token kept out of every output, and due selection that polls a flight
with a live alert only every `flightaware_alerts.poll_every_seconds`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightsync.sandbox import SandboxConfig
from flightsync.store import Database
from flightsync.store import repository as repo
from tests._sandbox_cli import CliResult, SandboxCli, sandbox_cli

TODAY = datetime.now(UTC).date()
SOON = (TODAY + timedelta(days=2)).isoformat()
TOKEN = "tok_cli_secret_0123456789"
PUBLIC = "https://flights.example.com"
URL = f"{PUBLIC}/webhooks/flightaware/{TOKEN}"
MASKED = f"{PUBLIC}/webhooks/flightaware/***"


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(), extra_env={
            "FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN": TOKEN}) as running:
        yield running


@pytest.fixture
def config(cli: SandboxCli) -> Path:
    return cli.write_config("alerts", {"flightaware_alerts": {
        "public_url": PUBLIC, "events": ["arrival", "departure", "cancelled"]}})


def _sandbox_alerts(cli: SandboxCli) -> list[dict[str, Any]]:
    answer = httpx.get(f"{cli.sandbox.base_url}/aeroapi/alerts", headers={"x-apikey": "sandbox"})
    return list(answer.json()["alerts"])


def _no_token(*results: CliResult) -> None:
    for result in results:
        assert TOKEN not in result.stdout and TOKEN not in result.stderr


def test_register_creates_one_alert_per_tracked_flight_and_is_idempotent(
        cli: SandboxCli, config: Path) -> None:
    """`alerts register` creates an alert for each tracked flight, pointing at
    <public_url>/webhooks/flightaware/<token> with the configured events; run again it creates
    nothing and counts them as existing. The token never appears in the output."""
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.sync("BA117", SOON).exit_code == 0
    first = cli.run("-vv", "alerts", "register", "--json", config=config)
    assert first.exit_code == 0, first.stderr
    assert sorted(a["flight"] for a in first.data["created"]) == ["BA117", "LH400"]
    assert all(a["endpoint"] == MASKED and a["date"] == SOON and a["status"] == "active"
               for a in first.data["created"])
    remote = _sandbox_alerts(cli)
    assert sorted(a["ident"] for a in remote) == ["BA117", "LH400"]
    assert {a["target_url"] for a in remote} == {URL}
    assert {a["start"] for a in remote} == {a["end"] for a in remote} == {SOON}
    assert {name for name, on in remote[0]["events"].items() if on} == {
        "arrival", "departure", "cancelled"}
    again = cli.run("alerts", "register", "--json", config=config)
    assert again.exit_code == 0
    assert again.data == {"created": [], "existing": 2, "failed": []}
    assert len(_sandbox_alerts(cli)) == 2
    _no_token(first, again)


def test_register_one_flight_and_refusals(cli: SandboxCli, config: Path) -> None:
    """--flight F --date D registers that flight only; a flight not stored or not tracked is
    exit 2 with nothing created; --date without --flight is a usage error."""
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.sync("BA117", SOON).exit_code == 0
    one = cli.run("alerts", "register", "--flight", "LH400", "--date", SOON, "--json",
                  config=config)
    assert one.exit_code == 0
    assert [a["flight"] for a in one.data["created"]] == ["LH400"]
    missing = cli.run("alerts", "register", "--flight", "AF9", "--date", SOON, config=config)
    assert missing.exit_code == 2 and "not stored" in missing.error_lines()[0]
    assert cli.run("flights", "untrack", "BA117", "--date", SOON).exit_code == 0
    untracked = cli.run("alerts", "register", "--flight", "BA117", "--date", SOON,
                        config=config)
    assert untracked.exit_code == 2 and "not tracked" in untracked.error_lines()[0]
    assert cli.run("alerts", "register", "--date", SOON, config=config).exit_code == 2
    assert [a["ident"] for a in _sandbox_alerts(cli)] == ["LH400"]


def test_list_masks_the_token_and_remove_deletes_at_aeroapi(
        cli: SandboxCli, config: Path) -> None:
    """`alerts list` shows id, flight, date, events, status and the URL with the token as
    ***; `remove ID` deletes that alert at AeroAPI and marks it removed (`--all` lists it);
    `remove --all` deletes the rest; an unknown id is exit 2."""
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.sync("BA117", SOON).exit_code == 0
    assert cli.run("alerts", "register", config=config).exit_code == 0
    listed = cli.run("alerts", "list", "--json", config=config)
    assert listed.exit_code == 0 and listed.data["live"] == 2
    first = listed.data["alerts"][0]
    assert set(first) == {"alert_id", "flight", "date", "events", "endpoint", "status",
                          "created_at", "removed_at"}
    assert first["endpoint"] == MASKED
    table = cli.run("alerts", "list", config=config, env={"COLUMNS": "200"})
    removed = cli.run("alerts", "remove", str(first["alert_id"]), "--json", config=config)
    assert removed.exit_code == 0 and removed.data == {"removed": [first["alert_id"]]}
    assert first["alert_id"] not in {a["id"] for a in _sandbox_alerts(cli)}
    every = cli.run("alerts", "list", "--all", "--json", config=config).data["alerts"]
    assert {(a["alert_id"], a["status"]) for a in every} == {
        (first["alert_id"], "removed"), (listed.data["alerts"][1]["alert_id"], "active")}
    again = cli.run("alerts", "remove", str(first["alert_id"]), config=config)
    assert again.exit_code == 2 and "no live alert" in again.error_lines()[0]
    rest = cli.run("alerts", "remove", "--all", "--json", config=config)
    assert rest.exit_code == 0 and len(rest.data["removed"]) == 1
    assert _sandbox_alerts(cli) == []
    assert cli.run("alerts", "remove", config=config).exit_code == 2  # neither id nor --all
    _no_token(listed, table, removed, again, rest)


def test_configuration_errors_are_exit_2(cli: SandboxCli, config: Path) -> None:
    """No public URL, no token, or an API key AeroAPI refuses (401): exit 2, one line naming
    what to fix, no alert created."""
    assert cli.sync("LH400", SOON).exit_code == 0
    no_url = cli.run("alerts", "register")
    assert no_url.exit_code == 2 and "public_url" in no_url.error_lines()[0]
    no_token = cli.run("alerts", "register", config=config,
                       env={"FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN": ""})
    assert no_token.exit_code == 2
    assert "FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN" in no_token.error_lines()[0]
    bad_key = cli.run("alerts", "register", config=config,
                      env={"FLIGHTAWARE_API_KEY": "wrong-key"})
    assert bad_key.exit_code == 2
    assert "authorization refused (401)" in bad_key.error_lines()[0]
    assert _sandbox_alerts(cli) == []


def test_aeroapi_400_and_429_fail_with_exit_1(cli: SandboxCli, config: Path) -> None:
    """A 429 from AeroAPI is exit 1 (provider_rate_limited); a 400 for one flight (its start
    before AeroAPI's current day) lists it under `failed` with AeroAPI's detail, exit 1."""
    assert cli.sync("LH400", SOON).exit_code == 0
    cli.scenario(faults=[{"provider": "flightaware", "kind": "rate_limit", "retry_after": 2,
                          "times": 1}])
    limited = cli.run("alerts", "register", "--json", config=config)
    assert limited.exit_code == 1
    assert limited.data["error"]["code"] == "provider_rate_limited"
    cli.scenario(faults=[], now=(TODAY + timedelta(days=5)).isoformat() + "T12:00:00Z")
    refused = cli.run("alerts", "register", "--json", config=config)
    assert refused.exit_code == 1
    (failed,) = refused.data["failed"]
    assert failed["flight"] == "LH400"
    assert failed["error"]["code"] == "provider_rejected_request"
    assert "start cannot be before current day" in failed["error"]["message"]
    assert _sandbox_alerts(cli) == []


def test_register_adopts_an_alert_aeroapi_has_but_the_database_lost(
        cli: SandboxCli, config: Path) -> None:
    """An alert AeroAPI already has for the flight, date and URL (a run killed after creating
    it) is recorded, not created twice."""
    assert cli.sync("LH400", SOON).exit_code == 0
    made = httpx.post(f"{cli.sandbox.base_url}/aeroapi/alerts", headers={"x-apikey": "sandbox"},
                      json={"ident": "LH400", "start": SOON, "end": SOON, "target_url": URL})
    alert_id = int(made.headers["location"].split("/")[-1])
    adopted = cli.run("alerts", "register", "--json", config=config)
    assert adopted.exit_code == 0
    assert [(a["alert_id"], a["adopted"]) for a in adopted.data["created"]] == [(alert_id, True)]
    assert len(_sandbox_alerts(cli)) == 1


def test_batch_due_retires_the_alerts_of_flights_it_no_longer_refreshes(
        cli: SandboxCli, config: Path) -> None:
    """Once a flight is untracked, the next `batch --due` deletes its alert at AeroAPI and
    marks it finished; when AeroAPI fails that, the run still succeeds and a later run
    retires it."""
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.run("alerts", "register", config=config).exit_code == 0
    assert cli.run("flights", "untrack", "LH400", "--date", SOON).exit_code == 0
    cli.scenario(faults=[{"provider": "flightaware", "kind": "status_5xx", "times": 1}])
    assert cli.run("batch", "--due", "--json", config=config).exit_code == 0
    assert len(_sandbox_alerts(cli)) == 1
    assert cli.run("alerts", "list", "--json", config=config).data["live"] == 1
    assert cli.run("batch", "--due", "--json", config=config).exit_code == 0
    assert _sandbox_alerts(cli) == []
    (alert,) = cli.run("alerts", "list", "--all", "--json", config=config).data["alerts"]
    assert alert["status"] == "finished" and alert["removed_at"] is not None


def test_a_flight_with_a_live_alert_is_due_only_after_the_interval(cli: SandboxCli) -> None:
    """Due selection: a tracked flight whose refresh is due is claimed at once without an
    alert; with a live alert only once its last attempt is `alerted_every` seconds old."""
    _due_only_after_the_interval(cli)


def test_due_selection_with_alerts_on_postgresql(state_dir: Path, pg_url: str) -> None:
    """The same due selection on PostgreSQL (SKIP LOCKED claims included)."""
    with sandbox_cli(state_dir, SandboxConfig(), database_url=pg_url) as running:
        assert running.run("migrate").exit_code == 0
        _due_only_after_the_interval(running, postgres=True)


def _due_only_after_the_interval(cli: SandboxCli, *, postgres: bool = False) -> None:
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.sync("BA117", SOON).exit_code == 0
    database = Database.open(cli.database_url)
    try:
        with database.session() as session:
            attempts = {r["flight_number"]: r["last_attempt_at"] for r in cli.rows(
                "SELECT flight_number, last_attempt_at FROM flight WHERE leg_index = 0")}
            key = ("LH", 400, "", datetime.fromisoformat(SOON).date())
            repo.add_alert(session, key, alert_id=1, ident="LH400", events=["arrival"],
                           endpoint="x", now=datetime.now(UTC))
        last = datetime.fromisoformat(str(attempts[400])).replace(tzinfo=UTC)

        def due(now: datetime) -> list[str]:
            with database.session() as session:
                return [q.designator for q in repo.due_flights(
                    session, now=now, limit=10, alerted_every=7200)]

        # Both are past their TTL two hours minus a second after LH400's last attempt...
        assert due(last + timedelta(seconds=7199)) == ["BA117"]
        # ...and the alerted one becomes due at two hours.
        assert sorted(due(last + timedelta(seconds=7201))) == ["BA117", "LH400"]
        with database.session() as session:
            claimed = repo.claim_due(session, now=last + timedelta(seconds=7199), limit=10,
                                     owner="t", lease_seconds=60, postgres=postgres,
                                     alerted_every=7200)
        assert [q.designator for q in claimed] == ["BA117"]
    finally:
        database.close()


def test_set_account_endpoint_puts_the_url_and_config_show_masks_the_token(
        cli: SandboxCli) -> None:
    """With set_account_endpoint, register also sets AeroAPI's account-wide URL (PUT
    /alerts/endpoint); `config show` lists the token as *** and the settings in effect."""
    config = cli.write_config("endpoint", {"flightaware_alerts": {
        "public_url": PUBLIC, "set_account_endpoint": True, "poll_every_seconds": 3600}})
    assert cli.sync("LH400", SOON).exit_code == 0
    assert cli.run("alerts", "register", config=config).exit_code == 0
    endpoint = httpx.get(f"{cli.sandbox.base_url}/aeroapi/alerts/endpoint",
                         headers={"x-apikey": "sandbox"}).json()
    assert endpoint == {"url": URL}
    shown = cli.run("config", "show", "--json", config=config)
    settings = {row["key"]: row["value"] for row in shown.data["settings"]}
    assert settings["flightaware_alert_token"] == "***"
    assert settings["flightaware_alerts.poll_every_seconds"] == 3600
    _no_token(shown)


def test_a_secret_in_the_config_file_or_a_bad_url_is_refused(cli: SandboxCli) -> None:
    """The token in the YAML file, or a public_url with a query, is refused with exit 2."""
    secret = cli.write_config("secret", {"flightaware_alert_token": TOKEN})
    refused = cli.run("alerts", "list", config=secret)
    assert refused.exit_code == 2 and "flightaware_alert_token" in refused.error_lines()[0]
    query = cli.write_config("query", {"flightaware_alerts": {
        "public_url": "https://flights.example.com/?t=1"}})
    bad = cli.run("alerts", "list", config=query)
    assert bad.exit_code == 2 and "public_url" in bad.error_lines()[0]
