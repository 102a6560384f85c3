"""Requests a provider refuses, and flights a provider cannot be asked for.

A 4xx other than 401/403/404/429 is the provider refusing this request: it is reported as
``provider_rejected_request``, not retried, and not held against the provider's breaker
(docs/CONTRACTS.md section 7). A flight with an operational suffix (LH400A) is never sent to a
provider that cannot be asked for one (Lufthansa, FlightAware, British Airways); naming such a
provider with ``--source`` is an input error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from flightsync.config import ProviderSettings, Settings, load_settings
from flightsync.engine._choose import providers_for
from flightsync.errors import (
    FlightNotFound,
    InputError,
    NoProviderError,
    ProviderAuthError,
    ProviderRateLimited,
    ProviderRequestRejected,
)
from flightsync.models import FlightQuery
from flightsync.providers import OAuthTokenSource, build_providers, registry
from flightsync.providers._http import raise_for_status
from flightsync.sandbox import SandboxConfig
from tests._e2e import Outcome, invoke, write_config
from tests._sandbox_cli import SandboxCli, loaded_heavy_modules, sandbox_cli

FIXTURES = Path(__file__).parent / "fixtures"
DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
ATTEMPTS = 3


# --- the status mapping ----------------------------------------------------------------------

@pytest.mark.parametrize("status", [400, 405, 406, 409, 415, 422])
def test_a_refused_request_is_rejected_not_a_provider_failure(status: int) -> None:
    """Every 4xx but 401/403/404/429 is ProviderRequestRejected: its code, its status, not
    retryable, not counted by the breaker, the start of the body quoted."""
    response = httpx.Response(status, text='{"detail": "flight number format"}')
    with pytest.raises(ProviderRequestRejected) as caught:
        raise_for_status(response, "demo")
    error = caught.value
    assert (error.code, error.status, error.provider) == ("provider_rejected_request", status,
                                                          "demo")
    assert error.retryable is False and error.counts_for_breaker is False
    assert "flight number format" in error.message


@pytest.mark.parametrize(("status", "expected"), [
    (401, ProviderAuthError), (403, ProviderAuthError), (404, FlightNotFound),
    (429, ProviderRateLimited),
])
def test_auth_not_found_and_rate_limit_keep_their_meaning(status: int,
                                                          expected: type[Exception]) -> None:
    """401/403 stay authorization errors, 404 "no such flight", 429 rate limiting."""
    with pytest.raises(expected) as caught:
        raise_for_status(httpx.Response(status, text="{}"), "demo")
    assert not isinstance(caught.value, ProviderRequestRejected)


@pytest.fixture
def token_client() -> Iterator[httpx.Client]:
    with httpx.Client(base_url="https://api.lufthansa.com") as client:
        yield client


def _tokens(client: httpx.Client, state_dir: Path) -> OAuthTokenSource:
    return OAuthTokenSource(client, provider="lufthansa", token_path="/v1/oauth/token",
                            client_id="id", client_secret="secret", state_dir=state_dir)


@pytest.mark.parametrize(("status", "expected"), [
    (400, ProviderAuthError), (401, ProviderAuthError), (403, ProviderAuthError),
    (405, ProviderRequestRejected), (415, ProviderRequestRejected),
])
def test_token_endpoint_refusals(httpx_mock: HTTPXMock, token_client: httpx.Client,
                                 state_dir: Path, status: int,
                                 expected: type[Exception]) -> None:
    """At the token endpoint 400/401/403 still mean bad credentials; another 4xx (a wrong
    base URL, say) is a rejected request that points at the base URL."""
    httpx_mock.add_response(method="POST", status_code=status,
                            json={"error": "invalid_client"})
    tokens = _tokens(token_client, state_dir)
    try:
        with pytest.raises(expected) as caught:
            tokens.token()
    finally:
        tokens.close()
    if expected is ProviderRequestRejected:
        assert "check the base URL" in str(caught.value)


# --- through the CLI: not retried, breaker untouched ------------------------------------------

LH_BASE = "https://lh.example.test"
FA_BASE = "https://fa.example.test/aeroapi"
PROVIDER_ENV = {
    "lufthansa": {"LUFTHANSA_CLIENT_ID": "id", "LUFTHANSA_CLIENT_SECRET": "secret",
                  "LUFTHANSA_BASE_URL": LH_BASE},
    "flightaware": {"FLIGHTAWARE_API_KEY": "key", "FLIGHTAWARE_BASE_URL": FA_BASE},
}
# What each provider answers a request it refuses (Lufthansa: a ProcessingError body).
REFUSAL = {
    "lufthansa": (LH_BASE, (FIXTURES / "lufthansa" / "error_processing.json").read_bytes()),
    "flightaware": (FA_BASE, b'{"title": "Invalid argument", "reason": "INVALID_ARGUMENT"}'),
}


def _cli_env(provider: str, tmp_path: Path) -> dict[str, str]:
    config = write_config(tmp_path / "flightsync.yaml",
                          retry={"attempts": ATTEMPTS, "backoff_initial_seconds": 0,
                                 "backoff_max_seconds": 0},
                          breaker={"failure_threshold": 2, "reset_timeout_seconds": 600})
    return {**PROVIDER_ENV[provider], "FLIGHTSYNC_CONFIG": str(config)}


def _sync(env: dict[str, str], provider: str) -> Outcome:
    outcome = invoke(["sync", "LH400", "--date", DAY, "--force", "--source", provider], env)
    outcome.assert_clean()
    return outcome


@pytest.mark.parametrize("provider", ["lufthansa", "flightaware"])
def test_a_rejected_request_is_not_retried_and_leaves_the_breaker_closed(
        httpx_mock: HTTPXMock, tmp_path: Path, provider: str) -> None:
    """Two syncs the provider answers with 400 each fail with provider_rejected_request after
    exactly one call (3 attempts configured), and its breaker (threshold 2) stays closed with
    no failure counted, where before the second sync opened it."""
    base, body = REFUSAL[provider]
    env = _cli_env(provider, tmp_path)
    if provider == "lufthansa":
        token = json.loads((FIXTURES / "lufthansa" / "token.json").read_text())
        httpx_mock.add_response(method="POST", url=f"{LH_BASE}/v1/oauth/token", json=token)
    httpx_mock.add_response(method="GET", url=re.compile(re.escape(base) + "/.*"),
                            status_code=400, content=body, is_reusable=True,
                            headers={"Content-Type": "application/json"})
    assert invoke(["migrate"], env).exit_code == 0

    for run in (1, 2):
        outcome = _sync(env, provider)
        assert outcome.exit_code == 1, outcome.stdout + outcome.stderr
        [source] = outcome.json["sources"]
        assert (source["name"], source["ok"], source["error"]) == (
            provider, False, "provider_rejected_request")
        gets = [r for r in httpx_mock.get_requests() if r.method == "GET"]
        assert len(gets) == run  # one call per sync: never retried

    status = invoke(["status"], env)
    assert status.exit_code == 0, status.stderr
    breaker = status.json["breakers"][provider]
    assert (breaker["state"], breaker["failures"]) == ("closed", 0), breaker


def test_a_refusal_after_an_outage_counts_as_an_answer(httpx_mock: HTTPXMock,
                                                       tmp_path: Path) -> None:
    """A provider that failed (503 after its retries: one failure counted) and then refuses
    a request has answered: its consecutive failures start again from zero, as for any
    answer (a half-open probe answered this way closes the breaker)."""
    base, body = REFUSAL["flightaware"]
    env = _cli_env("flightaware", tmp_path)
    pattern = re.compile(re.escape(base) + "/.*")
    for _ in range(ATTEMPTS):
        httpx_mock.add_response(method="GET", url=pattern, status_code=503)
    httpx_mock.add_response(method="GET", url=pattern, status_code=400, content=body,
                            headers={"Content-Type": "application/json"})
    assert invoke(["migrate"], env).exit_code == 0

    failed = _sync(env, "flightaware")
    assert failed.json["sources"][0]["error"] == "provider_unavailable"
    assert invoke(["status"], env).json["breakers"]["flightaware"]["failures"] == 1

    refused = _sync(env, "flightaware")
    assert refused.json["sources"][0]["error"] == "provider_rejected_request"
    breaker = invoke(["status"], env).json["breakers"]["flightaware"]
    assert (breaker["state"], breaker["failures"]) == ("closed", 0), breaker


# --- operational suffixes ------------------------------------------------------------------

def test_adapters_declare_whether_they_serve_suffixes() -> None:
    """Lufthansa (flightNumber is airline + number), FlightAware (idents carry no suffix) and
    British Airways (flightNumber is airline + number) cannot be asked for LH400A; Amadeus
    (operationalSuffix parameter) and Air France-KLM (operationalSuffix in the answer) can."""
    declared = {name: registry.get(name).serves_operational_suffix
                for name in registry.BUILTINS}
    # Later adapters state theirs in their own tests.
    assert declared.items() >= {"amadeus": True, "lufthansa": False, "airfrance_klm": True,
                                "british_airways": False, "flightaware": False}.items()


def _every_provider() -> Settings:
    credentials = {"client_id": "i", "client_secret": "s", "api_key": "k", "app_id": "a",
                   "app_key": "b"}
    return Settings(providers={name: ProviderSettings(credentials=credentials)
                               for name in registry.BUILTINS})


def test_a_suffixed_flight_skips_providers_without_suffixes_and_builds_no_client(
        state_dir: Path) -> None:
    """LH001A goes to Amadeus only (Lufthansa and FlightAware cover LH but cannot be asked for
    a suffix); LH001 still goes to all three. Choosing builds no adapter and no client."""
    with build_providers(_every_provider(), state_dir) as providers:
        suffixed = providers_for(providers, FlightQuery.parse("LH001A", DAY), None)
        plain = providers_for(providers, FlightQuery.parse("LH001", DAY), None)
        assert suffixed == ["amadeus"]
        assert plain == [name for name in registry.BUILTINS if providers.covers(name, "LH")]
        assert plain[:3] == ["amadeus", "lufthansa", "flightaware"]
        assert len(providers._clients) == 0
        assert "built=[]" in repr(providers.adapters)


def test_naming_a_provider_without_suffixes_is_an_input_error(state_dir: Path) -> None:
    """--source lufthansa (alone or beside one that serves suffixes) for LH001A is an
    invalid_source InputError saying Lufthansa does not serve operational suffixes."""
    query = FlightQuery.parse("LH001A", DAY)
    with build_providers(_every_provider(), state_dir) as providers:
        for sources in (["lufthansa"], ["amadeus", "lufthansa"]):
            with pytest.raises(InputError) as caught:
                providers_for(providers, query, sources)
            assert caught.value.code == "invalid_source"
            assert "'lufthansa' does not serve operational suffixes" in caught.value.message
        assert providers_for(providers, query, ["amadeus"]) == ["amadeus"]


def test_no_provider_left_for_a_suffix_names_the_ones_that_cannot(state_dir: Path) -> None:
    """When every provider covering the carrier lacks suffixes, the answer is NoProviderError
    naming them, not a silent empty choice."""
    settings = load_settings(None, {"LUFTHANSA_CLIENT_ID": "i", "LUFTHANSA_CLIENT_SECRET": "s",
                                    "FLIGHTAWARE_API_KEY": "k"})
    with build_providers(settings, state_dir) as providers, \
            pytest.raises(NoProviderError) as caught:
        providers_for(providers, FlightQuery.parse("LH001A", DAY), None)
    assert "operational suffixes" in caught.value.message
    assert "lufthansa, flightaware" in caught.value.message


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir, SandboxConfig(now=NOW)) as running:
        yield running


def _error(result: Any) -> dict[str, Any]:
    error: dict[str, Any] = result.data["error"]
    return error


def test_suffixed_sync_never_calls_lufthansa_and_source_lufthansa_exits_2(
        cli: SandboxCli) -> None:
    """Against the sandbox, LH001A is asked of Amadeus only: Lufthansa (which answers LH1A
    with 400), FlightAware and BA get no call, so no breaker moves. `--source lufthansa` exits
    2 with one error line saying Lufthansa does not serve operational suffixes."""
    result = cli.sync("LH001A", DAY)
    assert result.exit_code == 0, result.stderr
    assert [s["name"] for s in result.data["sources"]] == ["amadeus"]
    assert result.data["flight"]["suffix"] == "A"
    stats = cli.sandbox.stats()
    # Every provider but Amadeus (the one serving suffixes) gets no call.
    assert {name: stats[name]["requests"] for name in stats} == {
        name: int(name == "amadeus") for name in stats}
    assert set(stats) == set(registry.BUILTINS)

    alone = cli.sync("LH001A", DAY, "--source", "lufthansa")
    assert alone.exit_code == 2
    assert _error(alone)["code"] == "invalid_source"
    [line] = alone.error_lines()
    assert "'lufthansa' does not serve operational suffixes" in line
    assert cli.requests("lufthansa") == 0


def test_cached_suffixed_sync_stays_free_of_the_http_stack(cli: SandboxCli) -> None:
    """Choosing providers for a suffixed flight reads adapter classes only: a cached sync of
    LH001A in a fresh process still imports no httpx (nor any other heavy package)."""
    assert cli.sync("LH001A", DAY).exit_code == 0
    code, loaded = loaded_heavy_modules(cli, "sync", "LH001A", "--date", DAY, "--json")
    assert code == 0 and loaded == set()
