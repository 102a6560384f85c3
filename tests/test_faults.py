"""Provider fault matrix (issue 8): every provider, every way a provider call goes wrong,
through the real CLI against the sandbox running as its own process.

Each case runs `sync` twice: with every covering provider (the faulty one fails, the others
answer: the flight is still written, `partial`, exit 0), then limited to the faulty provider
with `--source` (nothing answers: `failed`, exit 1). Between and after, the sandbox's request
counters say whether the call was retried, and `flightsync status` whether the breaker counted
it (docs/CONTRACTS.md section 7: threshold 2, so two counted failures open it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._e2e import (
    BASE_URL_VAR,
    DAY,
    FLIGHT_OF,
    OAUTH_PROVIDERS,
    PROVIDERS,
    SECRET_VAR,
    Outcome,
    SandboxProcess,
    closed_port,
    invoke,
    migrated_template,
    row_counts,
    sandbox_process,
    seed_database,
    sqlite_file,
    write_config,
)

ATTEMPTS = 3
RETRY_AFTER = 5


@dataclass(frozen=True)
class Case:
    """One fault: how to cause it and what the documented outcome is."""

    name: str
    faults: tuple[dict[str, Any], ...] = ()
    env: str | None = None             # "refused" or "bad_credentials"
    error: str = ""                    # the failed source's error code
    retried: bool = False
    breaker: bool = True               # counts as a breaker failure
    recovers: bool = False             # the sync still succeeds from this provider
    oauth_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CASES = (
    Case("5xx", ({"kind": "status_5xx", "status": 503},), error="provider_unavailable",
         retried=True),
    Case("hang", ({"kind": "hang"},), error="provider_timeout", retried=True),
    Case("refused", env="refused", error="provider_unavailable", retried=True),
    Case("429", ({"kind": "rate_limit", "retry_after": RETRY_AFTER},),
         error="provider_rate_limited", retried=True),
    Case("malformed_json", ({"kind": "malformed_json"},), error="provider_bad_response"),
    Case("wrong_shape", ({"kind": "wrong_shape"},), error="provider_bad_response"),
    Case("expired_token", ({"kind": "expired_token", "times": 1},), recovers=True,
         breaker=False, oauth_only=True),
    # Refused credentials are a configuration problem, not an outage: the breaker stays
    # closed (a later run would otherwise say circuit_open and hide the cause), and a sync
    # no provider could answer for that reason alone is exit 2.
    Case("bad_credentials", env="bad_credentials", error="provider_auth", breaker=False),
    Case("404", ({"kind": "not_found"},), error="flight_not_found", breaker=False),
)

MATRIX = [pytest.param(provider, case, id=f"{provider}-{case.name}")
          for provider in PROVIDERS for case in CASES
          if not case.oauth_only or provider in OAUTH_PROVIDERS]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with sandbox_process(tmp_path_factory.mktemp("sandbox")) as server:
        yield server


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("template"))


# Only the hang case waits for the timeout; the others keep a timeout no loaded machine reaches,
# so a healthy provider's slow answer is never mistaken for the fault under test.
HANG_TIMEOUT = 0.25
TIMEOUT = 5.0


@pytest.fixture
def env(request: pytest.FixtureRequest, tmp_path: Path, sandbox: SandboxProcess,
        template: Path, state_dir: Path) -> dict[str, str]:
    """The sandbox's environment plus a config with 3 attempts (a short timeout for the hang
    case), and a migrated database in the state directory."""
    seed_database(template, state_dir)
    case = getattr(request.node, "callspec", None)
    hang = case is not None and getattr(case.params.get("case"), "name", "") == "hang"
    config = write_config(tmp_path / "flightsync.yaml",
                          http={"timeout_seconds": HANG_TIMEOUT if hang else TIMEOUT},
                          retry={"attempts": ATTEMPTS, "backoff_initial_seconds": 0,
                                 "backoff_max_seconds": 0},
                          breaker={"failure_threshold": 2, "reset_timeout_seconds": 600})
    return {**sandbox.environment(), "FLIGHTSYNC_CONFIG": str(config)}


def _sources(outcome: Outcome) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in outcome.json["sources"]}


def _breaker(env: dict[str, str], provider: str) -> dict[str, Any]:
    status = invoke(["status"], env)
    status.assert_clean()
    assert status.exit_code == 0, status.stderr
    view: dict[str, Any] = status.json["breakers"][provider]
    return view


def _arrange(case: Case, provider: str, sandbox: SandboxProcess, env: dict[str, str]) -> None:
    faults = [{"provider": provider, **fault} for fault in case.faults]
    sandbox.scenario(faults=faults, hang_seconds=3)
    if case.env == "refused":
        env[BASE_URL_VAR[provider]] = f"http://127.0.0.1:{closed_port()}"
    elif case.env == "bad_credentials":
        env[SECRET_VAR[provider]] = "not-the-sandbox-credential"


def _data_calls(sandbox: SandboxProcess, provider: str, outcome: Outcome) -> int:
    """Data calls the provider received; for a refused connection, the attempts logged."""
    stats = sandbox.stats()[provider]
    if stats["requests"] or stats["token_requests"]:
        return stats["requests"] or stats["token_requests"]
    retries = [e for e in outcome.events("provider.retry") if e.get("provider") == provider]
    return len(retries) + 1


@pytest.mark.parametrize(("provider", "case"), MATRIX)
def test_fault_gives_documented_outcome(provider: str, case: Case, sandbox: SandboxProcess,
                                        env: dict[str, str], state_dir: Path) -> None:
    """The faulty provider fails alone (partial, exit 0, flight written), retried only when
    the fault is transient, counted by its breaker only when it is a provider failure (two runs:
    open); asked
    alone it fails the sync (exit 1); an expired token is refreshed and the sync succeeds."""
    _arrange(case, provider, sandbox, env)
    flight = FLIGHT_OF[provider]

    first = invoke(["-v", "sync", flight, "--date", DAY, "--force"], env)
    first.assert_clean()
    assert first.exit_code == 0, first.stdout + first.stderr
    assert first.json["success"] is True
    source = _sources(first)[provider]
    if case.recovers:
        assert source["ok"] is True
        assert first.json["sync_status"] == "synced"
        assert sandbox.stats()[provider]["token_requests"] == 2  # the first token, a new one
    else:
        assert source["ok"] is False
        assert source["error"] == case.error
        # A provider that does not know the flight is an answer, not a failure.
        expected = "synced" if case.error == "flight_not_found" else "partial"
        assert first.json["sync_status"] == expected
        calls = _data_calls(sandbox, provider, first)
        assert calls == (ATTEMPTS if case.retried else 1), sandbox.stats()
        others = [s for name, s in _sources(first).items() if name != provider]
        assert others and all(s["ok"] for s in others)
    assert row_counts(sqlite_file(state_dir))["flight"] >= 1
    if case.name == "429":
        waits = [e["waited"] for e in first.events("provider.retry")
                 if e.get("provider") == provider]
        assert len(waits) == ATTEMPTS - 1 and all(w >= RETRY_AFTER for w in waits), waits

    alone = invoke(["sync", flight, "--date", DAY, "--force", "--source", provider], env)
    alone.assert_clean()
    if case.recovers:
        assert alone.exit_code == 0, alone.stdout + alone.stderr
        assert alone.json["sync_status"] == "synced"
    else:
        expected_exit = 2 if case.error == "provider_auth" else 1
        assert alone.exit_code == expected_exit, alone.stdout + alone.stderr
        assert alone.json["success"] is False
        assert alone.json["sync_status"] == "failed"
        assert alone.json["sources"][0]["error"] == case.error
    # Two counted failures (one per run) reach the threshold of 2; uncounted ones leave none.
    breaker = _breaker(env, provider)
    assert breaker["state"] == ("open" if case.breaker else "closed"), breaker
    assert breaker["failures"] == (2 if case.breaker else 0), breaker


def test_open_breaker_skips_the_provider_in_the_next_run(
        sandbox: SandboxProcess, env: dict[str, str]) -> None:
    """Once two runs have failed on a provider, the next run does not call it at all: the
    sync is partial from the others and the provider reports `circuit_open`."""
    sandbox.scenario(faults=[{"provider": "lufthansa", "kind": "status_5xx"}])
    for _ in range(2):
        invoke(["sync", "LH400", "--date", DAY, "--force"], env).assert_clean()
    sandbox.scenario(faults=[])
    third = invoke(["sync", "LH400", "--date", DAY, "--force"], env)
    third.assert_clean()
    assert third.exit_code == 0
    assert _sources(third)["lufthansa"]["error"] == "circuit_open"
    assert sandbox.stats()["lufthansa"]["requests"] == 0
