"""The sandbox speaks FlightStats Flex flight status v2 with its quirks, and the real CLI syncs
from it over loopback: the flight stored from ``--source cirium`` is the one stored from
``--source lufthansa`` (docs/PROVIDERS.md section 6.4, issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from flightsync.config import load_settings
from flightsync.errors import (
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery
from flightsync.providers import ProviderSet, build_providers, registry
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from flightsync.sandbox._truth import flight_truth
from tests._sandbox_cli import sandbox_cli

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = "2026-02-25"
PATH = "/flex/flightstatus/rest/v2/json/flight/status"
# Fields the stored flight must hold the same from either source.
SAME = ("origin", "destination", "scheduled_departure", "actual_departure",
        "scheduled_arrival", "actual_arrival", "departure_terminal", "departure_gate",
        "arrival_terminal", "arrival_gate", "aircraft_type", "aircraft_registration",
        "operating_carrier", "operating_flight_number", "diverted_to", "delay_minutes")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(now=NOW)) as running:
        yield running


@pytest.fixture
def providers(sandbox: Sandbox, state_dir: Path) -> Iterator[ProviderSet]:
    built = build_providers(load_settings(None, sandbox_environment(sandbox.base_url)),
                            state_dir)
    try:
        yield built
    finally:
        built.close()


def _stored(tmp_path: Path, source: str, flight: str = "LH400") -> dict[str, Any]:
    """The flight the real CLI stores from ``source`` alone, in its own state directory."""
    with sandbox_cli(tmp_path / source, SandboxConfig(now=NOW)) as cli:
        result = cli.sync(flight, DAY, "--source", source)
        assert result.exit_code == 0, result.stderr
        assert cli.requests(source) == 1
        assert cli.count("flight") == 1
        data: dict[str, Any] = result.data
        return data


def test_cli_sync_stores_the_same_flight_as_the_airline_adapter(tmp_path: Path) -> None:
    """`sync LH400 --date 2026-02-25 --source cirium` stores the route, times, gates,
    terminals, aircraft and registration that `--source lufthansa` stores. Where they differ
    Cirium says more: Lufthansa gives no estimate once an actual time is known, no baggage
    belt and no codeshares, and has no in-block state (LD is landed) where FlightStats' L
    with a gate arrival is arrived."""
    cirium, lufthansa = _stored(tmp_path, "cirium"), _stored(tmp_path, "lufthansa")
    assert cirium["success"] and lufthansa["success"]
    (ours,), (theirs,) = cirium["legs"], lufthansa["legs"]
    for field in SAME:
        assert ours[field] == theirs[field], field
    assert ours["actual_departure"] is not None and ours["departure_gate"] is not None
    truth = flight_truth("LH", 400, date.fromisoformat(DAY)).legs[0]
    assert (theirs["status"], ours["status"]) == ("landed", "arrived")
    assert theirs["estimated_departure"] is None
    assert ours["estimated_departure"] == ours["actual_departure"]
    assert ours["estimated_arrival"] == ours["actual_arrival"]
    assert (theirs["baggage_belt"], ours["baggage_belt"]) == (None, truth.baggage_belt)
    assert theirs["codeshares"] == []
    assert ours["codeshares"] == list(flight_truth("LH", 400, date.fromisoformat(DAY))
                                      .codeshares)


def test_cli_sync_of_a_marketing_number_answered_by_its_operator(tmp_path: Path) -> None:
    """FR111 is answered by Lauda's flight (fs LDM): the stored flight is FR111 with OE as
    operating carrier and FR111 among the codeshares."""
    stored = _stored(tmp_path, "cirium", "FR111")
    (leg,) = stored["legs"]
    assert (leg["carrier"], leg["flight_number"]) == ("FR", 111)
    assert (leg["operating_carrier"], leg["operating_flight_number"]) == ("OE", 111)
    assert "FR111" in leg["codeshares"]
    truth = flight_truth("OE", 111, date.fromisoformat(DAY)).legs[0]
    assert (leg["origin"], leg["destination"]) == (truth.origin, truth.destination)


def test_providers_command_lists_every_registered_provider(tmp_path: Path) -> None:
    """`providers` in the sandbox lists every built-in, cirium configured among them."""
    with sandbox_cli(tmp_path / "state") as cli:
        result = cli.run("providers")
    assert result.exit_code == 0, result.stderr
    listed = {row["name"]: row for row in result.data["providers"]}
    assert set(registry.BUILTINS) <= set(listed)
    assert listed["cirium"]["configured"] is True
    assert listed["cirium"]["carriers"] == "all"


def test_wire_format_quirks(sandbox: Sandbox) -> None:
    """The sandbox answers in FlightStats' shape: dateLocal without an offset beside
    dateUtc, one- or two-letter statuses, a string flightNumber and the fs code TOM for
    IATA BY, mapped back in appendix.airlines."""
    answer = httpx.get(f"{sandbox.base_url}{PATH}/BY/123/dep/2026/2/25",
                       params={"codeType": "IATA"},
                       headers={"appId": "sandbox", "appKey": "sandbox"})
    assert answer.status_code == 200
    body = answer.json()
    (status,) = body["flightStatuses"]
    assert status["carrierFsCode"] == "TOM" and status["flightNumber"] == "123"
    assert {"fs": "TOM", "iata": "BY"}.items() <= body["appendix"]["airlines"][0].items()
    departure = status["departureDate"]
    assert departure["dateUtc"].endswith("Z")
    assert datetime.fromisoformat(departure["dateLocal"]).tzinfo is None
    assert status["status"] in {"S", "A", "L", "C", "D", "R", "DN", "NO", "U"}


def test_errors_come_with_http_200_unless_use_http_errors(sandbox: Sandbox) -> None:
    """Wrong credentials: without extendedOptions=useHttpErrors the error body comes with
    HTTP 200; with it, with the status the body names. Query parameters are accepted as
    well as headers."""
    url = f"{sandbox.base_url}{PATH}/LH/400/dep/2026/2/25"
    quiet = httpx.get(url, params={"appId": "sandbox", "appKey": "wrong"})
    loud = httpx.get(url, params={"appId": "sandbox", "appKey": "wrong",
                                  "extendedOptions": "useHttpErrors"})
    assert quiet.status_code == 200 and loud.status_code == 403
    for answer in (quiet, loud):
        assert answer.json()["error"]["httpStatusCode"] == 403
        assert answer.json()["error"]["errorCode"] == "FORBIDDEN"
    good = httpx.get(url, params={"appId": "sandbox", "appKey": "sandbox", "codeType": "IATA"})
    assert good.status_code == 200 and good.json()["flightStatuses"]


def test_multi_leg_flight_is_every_leg_in_order(providers: ProviderSet) -> None:
    """KL419's three legs come back as three legs with the truth's route and UTC times."""
    day = date(2026, 3, 2)
    legs = providers.adapters["cirium"].fetch(FlightQuery.parse("KL419", day)).legs
    truth = flight_truth("KL", 419, day).legs
    assert [(leg.origin, leg.destination, leg.scheduled_departure) for leg in legs] == [
        (t.origin, t.destination, t.scheduled_departure.astimezone(UTC)) for t in truth]


_FAULTS: tuple[tuple[dict[str, Any], type[ProviderError]], ...] = (
    ({"kind": "status_5xx", "status": 502}, ProviderUnavailable),
    ({"kind": "rate_limit", "retry_after": 4}, ProviderRateLimited),
    ({"kind": "quota"}, ProviderQuotaExhausted),
    ({"kind": "not_found"}, FlightNotFound),
    ({"kind": "expired_token"}, ProviderAuthError),
    ({"kind": "malformed_json"}, ProviderBadResponse),
    ({"kind": "wrong_shape"}, ProviderBadResponse),
    ({"kind": "connection_close"}, ProviderUnavailable),
)


@pytest.mark.parametrize(("fault", "error"), _FAULTS,
                         ids=[fault["kind"] for fault, _ in _FAULTS])
def test_sandbox_faults_reach_the_adapter_as_their_class(
        providers: ProviderSet, sandbox: Sandbox, fault: dict[str, Any],
        error: type[ProviderError]) -> None:
    """Each scripted fault, answered the way FlightStats answers it, is the matching
    ProviderError (a spent quota is ProviderQuotaExhausted, not a rate limit)."""
    sandbox.set_scenario({"faults": [{"provider": "cirium", **fault}]})
    with pytest.raises(error) as caught:
        providers.adapters["cirium"].fetch(FlightQuery.parse("LH400", date(2026, 3, 2)))
    assert type(caught.value) is error
    if isinstance(caught.value, ProviderRateLimited):
        assert caught.value.retry_after == 4
