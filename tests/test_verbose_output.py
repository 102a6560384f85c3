"""What `-vv` and the retry warnings say: one `http.request` line per provider request
(method, URL without secrets, status, time), cache and policy decisions, and a retry named by
its provider, attempt and wait instead of stamina's anonymous `retry_scheduled`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import stamina
from structlog.testing import capture_logs

from flightsync.config import RetrySettings
from flightsync.errors import ProviderTimeout
from flightsync.providers._trace import public_url
from flightsync.resilience.retry import call_with_retry
from flightsync.sandbox import Override, SandboxConfig
from tests._sandbox_cli import SandboxCli, sandbox_cli

SOON = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
SECRET = "afklm-secret-key-0123456789"


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    # FlightAware disagrees on KL641's gate, so the policy has a field to decide.
    gate = Override(fields={"departure_gate": "Z99"}, provider="flightaware", flight="KL641")
    with sandbox_cli(state_dir, SandboxConfig(overrides=(gate,))) as running:
        yield running


def events(stderr: str) -> list[dict[str, object]]:
    """The JSON log lines of a run (stderr is not a terminal under the runner)."""
    found = []
    for line in stderr.splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


def test_vv_shows_each_request_without_secrets(cli: SandboxCli) -> None:
    """`-vv sync` logs every provider request with method, URL, status and time, a cache
    decision for the flight and the policy's decisions; a credential never shows, even one
    the provider refuses."""
    done = cli.run("-vv", "sync", "KL641", "--date", SOON, env={"AFKLM_API_KEY": SECRET})
    assert done.exit_code in (0, 2), done.stderr
    logged = events(done.stderr)
    requests = [e for e in logged if e["event"] == "http.request"]
    assert {e["provider"] for e in requests} >= {"airfrance_klm", "flightaware"}
    for line in requests:
        assert line["method"] == "GET" or line["method"] == "POST"
        assert str(line["url"]).startswith("http://127.0.0.1:")
        assert isinstance(line["status"], int) and isinstance(line["ms"], int)
    assert any(e["provider"] == "airfrance_klm" and e["status"] == 401 for e in requests)
    assert SECRET not in done.stderr and SECRET not in done.stdout
    assert [e for e in logged if e["event"] == "cache.decision"]
    decided = [e for e in logged if e["event"] == "policy.decision"]
    assert any(e["field"] == "departure_gate" and e["rule"] for e in decided), decided
    plain = cli.run("-v", "sync", "BA117", "--date", SOON, "--force")
    assert not [e for e in events(plain.stderr) if e["event"] == "http.request"]


def test_public_url_masks_secret_parameters_and_user_info() -> None:
    """A secret-looking query parameter shows *** and user info is dropped."""
    url = httpx.URL("https://user:pw@api.aviationstack.com/v1/flights?access_key=abc123&"
                    "flight_iata=LH400")
    shown = public_url(url)
    assert "abc123" not in shown and "pw" not in shown and "user" not in shown
    assert shown == ("https://api.aviationstack.com/v1/flights?access_key=***&"
                     "flight_iata=LH400")


def test_a_retry_is_one_warning_naming_provider_attempt_and_wait() -> None:
    """A scheduled retry logs provider.retry.scheduled with the provider, the attempt, the
    wait and the error, and stamina's own `stamina.retry_scheduled` no more."""
    calls = iter([ProviderTimeout("t", provider="cirium"), None])

    def flaky() -> str:
        error = next(calls)
        if error is not None:
            raise error
        return "answer"

    with stamina.set_testing(True, attempts=3), capture_logs() as logs:
        assert call_with_retry(flaky, RetrySettings(attempts=3), provider="cirium") == "answer"
    scheduled = [e for e in logs if e["event"] == "provider.retry.scheduled"]
    assert len(scheduled) == 1
    assert scheduled[0]["provider"] == "cirium" and scheduled[0]["attempt"] == 2
    assert scheduled[0]["of"] == 3 and scheduled[0]["error"] == "provider_timeout"
    assert 0 <= float(scheduled[0]["wait_seconds"]) <= RetrySettings().backoff_max_seconds
    assert not [e for e in logs if "stamina" in str(e["event"])]
    assert stamina.instrumentation.get_on_retry_hooks() == ()
