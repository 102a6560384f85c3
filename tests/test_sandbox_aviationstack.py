"""Aviationstack against the sandbox over loopback: the real CLI stores the same flight as the
airline's own adapter, the free plan's refusal of ``flight_date`` is survived, the quota and
the other knobs answer the way Aviationstack does, and the access key is never printed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightsync.config import load_settings
from flightsync.errors import ConfigError
from flightsync.models import FlightQuery
from flightsync.policy._aircraft import aircraft_key
from flightsync.providers import aviationstack, build_providers
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import SandboxCli, sandbox_cli

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = "2026-02-25"
AVS = "aviationstack"


@pytest.fixture(autouse=True)
def _fresh_plan_memory() -> Iterator[None]:
    # The plan refusal is remembered per process (base URL and key); a later sandbox may get
    # the same port, so no test leaves it behind.
    aviationstack._DATE_REFUSED.clear()
    yield
    aviationstack._DATE_REFUSED.clear()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(tmp_path / "state", SandboxConfig(now=NOW)) as running:
        yield running


def stored(cli: SandboxCli, source: str) -> dict[str, Any]:
    result = cli.sync("LH400", DAY, "--source", source)
    assert result.exit_code == 0, result.stderr
    assert [s["name"] for s in result.data["sources"] if s["ok"]] == [source]
    flight: dict[str, Any] = result.data["flight"]
    return flight


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_sync_stores_the_same_flight_as_the_airline(tmp_path: Path) -> None:
    """`sync LH400 --date 2026-02-25 --source aviationstack` and `--source lufthansa`, each
    into its own database, store the same route, times, gates, terminals, status,
    registration and operator. Where they differ, it is what Lufthansa cannot give (no
    estimates once a flight has flown, no belt, no codeshares in its sandbox format) or the
    code system of the aircraft type (ICAO E190 for IATA E90, one type): those fields are
    checked against the sandbox's truth instead."""
    flights = {}
    for source in (AVS, "lufthansa"):
        with sandbox_cli(tmp_path / source, SandboxConfig(now=NOW)) as running:
            flights[source] = stored(running, source)
    ours, theirs = flights[AVS], flights["lufthansa"]
    explained = {"estimated_departure", "estimated_arrival", "baggage_belt", "aircraft_type",
                 "codeshares", "last_synced_at"}
    for field in sorted(set(ours) - explained):
        assert ours[field] == theirs[field], field
    assert ours["status"] == "landed"

    leg = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0]
    truth = flight_truth("LH", 400, date.fromisoformat(DAY))
    assert (theirs["estimated_departure"], theirs["estimated_arrival"]) == (None, None)
    assert ours["estimated_departure"] == iso(leg.estimated_departure)
    assert ours["estimated_arrival"] == iso(leg.estimated_arrival)
    assert (theirs["baggage_belt"], ours["baggage_belt"]) == (None, leg.baggage_belt)
    assert aircraft_key(ours["aircraft_type"]) == aircraft_key(theirs["aircraft_type"])
    assert ours["aircraft_type"] == leg.aircraft.icao
    assert theirs["codeshares"] == []
    assert ours["codeshares"] == list(truth.codeshares)


def test_multi_leg_flight_is_stored_leg_by_leg(cli: SandboxCli) -> None:
    """KL419's three legs (one record each, plus codeshare copies) are three stored legs in
    flying order at the truth's UTC times."""
    result = cli.sync("KL419", DAY, "--source", AVS)
    assert result.exit_code == 0, result.stderr
    truth = flight_truth("KL", 419, date.fromisoformat(DAY)).legs
    assert [(leg["origin"], leg["scheduled_departure"], leg["scheduled_arrival"])
            for leg in result.data["legs"]] == [
        (leg.origin, iso(leg.scheduled_departure), iso(leg.scheduled_arrival))
        for leg in truth]


def test_free_plan_asks_without_flight_date_once_per_process(tmp_path: Path) -> None:
    """On a free plan the sandbox refuses flight_date (403 function_access_restricted). The
    first lookup asks twice (dated, then undated and filtered), later ones of the same run
    once; both flights come out whole, from the answer of yesterday-today-tomorrow."""
    config = SandboxConfig.from_mapping({"now": "2026-02-25T20:00:00Z",
                                         "plans": {AVS: "free"}})
    with Sandbox(config) as sandbox:
        settings = load_settings(None, sandbox_environment(sandbox.base_url))
        with build_providers(settings, tmp_path / "state") as providers:
            adapter = providers.adapters[AVS]
            first = adapter.fetch(FlightQuery.parse("LH400", DAY))
            assert sandbox.stats()[AVS]["requests"] == 2
            second = adapter.fetch(FlightQuery.parse("LH401", DAY))
            assert sandbox.stats()[AVS]["requests"] == 3
    for observation, number in ((first, 400), (second, 401)):
        truth = flight_truth("LH", number, date.fromisoformat(DAY)).legs[0]
        (leg,) = observation.legs
        assert leg.scheduled_departure == truth.scheduled_departure


def test_free_plan_cannot_see_an_old_date(tmp_path: Path) -> None:
    """A free plan sees recent flights only: a date weeks before the sandbox's clock is not
    found (exit 1). Neither the plan's refusal nor the miss is held against the provider:
    its breaker counts no failure."""
    config = SandboxConfig(now=NOW, plans={AVS: "free"})
    with sandbox_cli(tmp_path / "state", config) as running:
        result = running.sync("LH400", "2026-02-01", "--source", AVS)
        assert result.exit_code == 1
        assert result.data["sources"][0]["error"] == "flight_not_found"
        assert running.requests(AVS) == 2
        breaker = running.run("status").data["breakers"][AVS]
        assert (breaker["state"], breaker["failures"]) == ("closed", 0), breaker


def test_quota_fault_is_final_and_named(cli: SandboxCli) -> None:
    """The sandbox's quota fault is 429 usage_limit_reached: the sync fails with
    provider_quota_exhausted after one call (a quota is not retried)."""
    cli.scenario(faults=[{"provider": AVS, "kind": "quota"}])
    result = cli.sync("LH400", DAY, "--source", AVS)
    assert result.exit_code == 1
    assert result.data["sources"][0]["error"] == "provider_quota_exhausted"
    assert cli.requests(AVS) == 1


def test_a_wrong_key_is_auth_and_never_printed(tmp_path: Path) -> None:
    """A key the sandbox does not know is 401 invalid_access_key (provider_auth, exit 2 as
    refused credentials are); at debug level neither stdout nor stderr holds the key, though
    it was in every request URL."""
    secret = "avs-secret-5e0c2b91"
    with sandbox_cli(tmp_path / "state", SandboxConfig(now=NOW),
                     extra_env={"AVIATIONSTACK_ACCESS_KEY": secret}) as running:
        result = running.run("-vv", "sync", "LH400", "--date", DAY, "--source", AVS)
    assert result.exit_code == 2
    assert result.data["sources"][0]["error"] == "provider_auth"
    assert secret not in result.stdout + result.stderr


# --- the sandbox's own answers ----------------------------------------------------------------

def _get(sandbox: Sandbox, **params: str) -> httpx.Response:
    query = {"access_key": "sandbox", **params}
    return httpx.get(f"{sandbox.base_url}/aviationstack/v1/flights", params=query, timeout=10)


def test_sandbox_speaks_the_quirks() -> None:
    """Local wall clock labelled +00:00, marketing copies before the operating record (their
    codeshared naming it), one flight_date for the flight, documented pagination; a missing
    key, an unknown flight and a too large limit answered as Aviationstack answers them."""
    with Sandbox(SandboxConfig(now=NOW)) as sandbox:
        body = _get(sandbox, flight_iata="LH400", flight_date=DAY).json()
        truth = flight_truth("LH", 400, date.fromisoformat(DAY))
        *copies, operating = body["data"]
        assert [c["flight"]["iata"] for c in copies] == list(truth.codeshares)
        assert {c["flight"]["codeshared"]["flight_iata"] for c in copies} <= {"lh400"}
        assert operating["flight"]["codeshared"] is None
        local = truth.legs[0].scheduled_departure.strftime("%Y-%m-%dT%H:%M:%S")
        assert operating["departure"]["scheduled"] == f"{local}+00:00"
        assert body["pagination"] == {"limit": 100, "offset": 0, "count": len(body["data"]),
                                      "total": len(body["data"])}

        missing = httpx.get(f"{sandbox.base_url}/aviationstack/v1/flights", timeout=10)
        assert (missing.status_code, missing.json()["error"]["code"]) == (
            401, "missing_access_key")
        unknown = _get(sandbox, flight_iata="ZZ", flight_date=DAY)
        assert (unknown.status_code, unknown.json()["data"]) == (200, [])
        too_many = _get(sandbox, flight_iata="LH400", limit="1000")
        assert (too_many.status_code, too_many.json()["error"]["code"]) == (
            422, "validation_error")


def test_free_plan_knob_refuses_flight_date_only() -> None:
    """``plans: {aviationstack: free}`` makes flight_date a 403 function_access_restricted;
    the undated request still answers."""
    with Sandbox(SandboxConfig(now=NOW, plans={AVS: "free"})) as sandbox:
        refused = _get(sandbox, flight_iata="LH400", flight_date=DAY)
        assert (refused.status_code, refused.json()["error"]["code"]) == (
            403, "function_access_restricted")
        assert _get(sandbox, flight_iata="LH400").status_code == 200


@pytest.mark.parametrize(("plans", "problem"), [
    ({AVS: "gold"}, "unknown plan 'gold'"),
    ({"nosuch": "free"}, "unknown provider 'nosuch'"),
])
def test_plan_knob_is_validated(plans: dict[str, str], problem: str) -> None:
    """A plan other than free/paid, or an unknown provider, is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=problem):
        SandboxConfig.from_mapping({"plans": plans})
