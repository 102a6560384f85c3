"""Credentials checked (README, `providers --check`, exit codes): one authenticated call per
configured provider says whose credentials work; refused credentials fail a run with exit 2
without opening the breaker; a changed secret never reuses the token of the old one.

The real CLI runs in process against the sandbox, whose published credentials are `sandbox`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock

from flightsync.config import load_settings
from flightsync.engine._check import check_one
from flightsync.providers import build_providers, registry
from tests._e2e import SECRET_VAR
from tests._sandbox_cli import SandboxCli, batch_csv, sandbox_cli

DAY = "2026-02-25"
BAD = "not-the-sandbox-secret-42"


@pytest.fixture
def cli(state_dir: Path) -> Iterator[SandboxCli]:
    with sandbox_cli(state_dir) as running:
        yield running


def _checks(data: dict[str, object]) -> dict[str, dict[str, object] | None]:
    rows = data["providers"]
    assert isinstance(rows, list)
    return {row["name"]: row["check"] for row in rows}


def test_providers_check_with_good_secrets_says_every_provider_works(cli: SandboxCli) -> None:
    """Every configured provider is called once and reported ok; exit 0; one `check:` line
    per provider on stderr."""
    result = cli.run("providers", "--check")
    assert result.exit_code == 0, result.stderr
    checks = _checks(result.data)
    configured = [row["name"] for row in result.data["providers"] if row["configured"]]
    assert configured
    for name in configured:
        check = checks[name]
        assert check is not None and check["ok"] is True and check["error"] is None, check
        assert f"check: {name}: ok" in result.stderr
    # One data call per provider: the cheap probe, not a sync.
    assert all(cli.requests(name) == 1 for name in configured), cli.sandbox.stats()


def test_providers_check_names_the_providers_whose_secret_is_refused(cli: SandboxCli) -> None:
    """With a wrong secret for one OAuth and one API-key provider, those two are reported
    `provider_auth` naming the variables to fix, the others ok; exit 3; the secret is never
    printed."""
    env = {"LUFTHANSA_CLIENT_SECRET": BAD, "AFKLM_API_KEY": BAD}
    result = cli.run("providers", "--check", env=env)
    assert result.exit_code == 3, result.stderr
    checks = _checks(result.data)
    for name, variable in (("lufthansa", "LUFTHANSA_CLIENT_SECRET"),
                           ("airfrance_klm", "AFKLM_API_KEY")):
        check = checks[name]
        assert check is not None and check["ok"] is False, check
        assert check["error"] == "provider_auth"
        assert variable in str(check["message"])
        assert f"check: {name}: failed (provider_auth)" in result.stderr
    others = [c for n, c in checks.items() if n not in ("lufthansa", "airfrance_klm") and c]
    assert others and all(c["ok"] for c in others)
    assert BAD not in result.stdout + result.stderr


def test_refused_credentials_exit_2_and_leave_the_breaker_closed(cli: SandboxCli) -> None:
    """A sync and a batch that no provider could answer because every one refused the
    credentials exit 2 (a configuration problem) with error `provider_auth`; after two such
    runs the provider's breaker is still closed, so the next run names the real cause."""
    env = {"LUFTHANSA_CLIENT_SECRET": BAD}
    first = cli.run("sync", "LH400", "--date", DAY, "--source", "lufthansa", env=env)
    assert first.exit_code == 2, first.stderr
    assert first.data["error"]["code"] == "provider_auth"
    assert "lufthansa" in first.error_lines()[0]
    # Every provider covering LH refuses: each built-in's secret variable is wrong.
    every_secret = {SECRET_VAR[name]: BAD for name in registry.BUILTINS}
    batch = cli.run("batch", "-", stdin=batch_csv([("LH400", DAY), ("LH401", DAY)]),
                    env={**env, **every_secret})
    assert batch.exit_code == 2, batch.stderr
    assert {f["error"]["code"] for f in batch.data["failed"]} == {"provider_auth"}
    status = cli.run("status")
    assert status.data["breakers"]["lufthansa"]["state"] == "closed"
    third = cli.run("sync", "LH400", "--date", DAY, "--source", "lufthansa", env=env)
    assert third.data["sources"][0]["error"] == "provider_auth"  # not circuit_open


def test_a_batch_with_other_failures_still_exits_1(cli: SandboxCli) -> None:
    """Exit 2 is only for runs whose failures are all refused credentials: a flight on which
    one provider refused the secret and the others did not know it failed for more than
    that (`all_providers_failed`) and keeps exit 1."""
    cli.scenario(faults=[{"provider": "*", "kind": "not_found", "flight": "LH401"}])
    env = {"LUFTHANSA_CLIENT_SECRET": BAD}
    batch = cli.run("batch", "-", stdin=batch_csv([("LH400", DAY), ("LH401", DAY)]), env=env)
    assert batch.exit_code == 1, batch.stderr
    assert [f["error"]["code"] for f in batch.data["failed"]] == ["all_providers_failed"]
    assert "lufthansa: provider_auth" in batch.data["failed"][0]["error"]["message"]


def test_a_changed_secret_does_not_reuse_the_old_token(cli: SandboxCli) -> None:
    """A token cached with the right secret is not used once the secret changes: a wrong
    new secret fails at once (exit 2) instead of "working" until the old token expires, and
    the right one works again without asking for a new token."""
    good = cli.run("sync", "LH400", "--date", DAY, "--source", "lufthansa", "--force")
    assert good.exit_code == 0, good.stderr
    tokens_before = cli.sandbox.stats()["lufthansa"]["token_requests"]
    assert tokens_before == 1

    wrong = cli.run("sync", "LH400", "--date", DAY, "--source", "lufthansa", "--force",
                    env={"LUFTHANSA_CLIENT_SECRET": BAD})
    assert wrong.exit_code == 2, wrong.stdout + wrong.stderr
    assert wrong.data["sources"][0]["error"] == "provider_auth"
    assert cli.sandbox.stats()["lufthansa"]["token_requests"] == tokens_before + 1

    again = cli.run("sync", "LH400", "--date", DAY, "--source", "lufthansa", "--force")
    assert again.exit_code == 0, again.stderr
    assert cli.sandbox.stats()["lufthansa"]["token_requests"] == tokens_before + 1


@pytest.mark.parametrize(("status", "ok", "error"), [
    (404, True, None), (400, True, None), (401, False, "provider_auth"),
    (403, False, "provider_auth"), (503, False, "provider_unavailable"),
])
def test_the_probe_counts_any_authenticated_answer_as_working(
        httpx_mock: HTTPXMock, state_dir: Path, status: int, ok: bool,
        error: str | None) -> None:
    """The probe is one GET: "no such flight" and a refused request prove the key, 401/403
    name the variable to fix, an outage is reported as such; never a retry."""
    base = "https://aeroapi.test/aeroapi"
    settings = load_settings(None, {"FLIGHTAWARE_API_KEY": "key-1",
                                    "FLIGHTAWARE_BASE_URL": base})
    httpx_mock.add_response(method="GET", url=re.compile(re.escape(base) + "/.*"),
                            status_code=status, json={"title": "x", "detail": "x"})
    with build_providers(settings, state_dir) as providers:
        outcome = check_one(providers, "flightaware")
    assert (outcome["ok"], outcome["error"]) == (ok, error), outcome
    assert len(httpx_mock.get_requests()) == 1
    if error == "provider_auth":
        assert "FLIGHTAWARE_API_KEY" in outcome["message"]
