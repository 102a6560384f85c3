"""A provider that misbehaves cannot stall a run (issue 19 items 1, 5, 6, 8).

A real loopback server (tests/_misbehaving.py) trickles answers, streams chunked bodies that
never end, trickles OAuth token answers, announces 40 MB, nests JSON thousands deep,
redirects, answers HTML or compressed JSON. `flightsync sync` runs as a subprocess of the real
CLI with that server as the provider's base URL and small limits in its config: each call ends
by its deadline and reports `provider_timeout` (counted by the breaker) or
`provider_bad_response`, and the run's wall time stays within `retry.budget_seconds` plus a
generous margin for starting the process. Also: non-finite or absurd time limits in the config
are refused, and a base URL's password never reaches the output or the logs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from flightsync.config import ProviderSettings, RetrySettings, Settings
from flightsync.engine._fetch import GRACE_SECONDS
from flightsync.errors import ProviderBadResponse, ProviderTimeout
from flightsync.models import FlightQuery, Observation
from flightsync.providers import TokenSource, build_providers, provider_deadline, registry
from flightsync.resilience import call_with_retry
from tests._e2e import (
    DAY,
    Outcome,
    invoke,
    migrated_template,
    run,
    seed_database,
    write_config,
)
from tests._misbehaving import Misbehaving, misbehaving_server

DEADLINE = 1.0            # http.deadline_seconds in these tests
BUDGET = 2.0              # retry.budget_seconds
MARGIN = 15.0             # process start-up and the database write on a loaded machine
MAX_BYTES = 65536         # http.max_response_bytes
# What each provider needs: credentials, its base URL variable, a flight, its data path.
AFKLM = {"AFKLM_API_KEY": "misbehaving-key-0123"}
OAUTH = {
    "lufthansa": ({"LUFTHANSA_CLIENT_ID": "id-0123456", "LUFTHANSA_CLIENT_SECRET": "s3cret-lh"},
                  "LUFTHANSA_BASE_URL", "/v1/oauth/token", "/v1/operations/"),
    "amadeus": ({"AMADEUS_CLIENT_ID": "id-0123456", "AMADEUS_CLIENT_SECRET": "s3cret-am"},
                "AMADEUS_BASE_URL", "/v1/security/oauth2/token", "/v2/schedule/"),
}
AFKLM_PATH = "/opendata/flightstatus"


@pytest.fixture
def server() -> Iterator[Misbehaving]:
    with misbehaving_server() as state:
        yield state


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("template"))


@pytest.fixture
def config(tmp_path: Path, template: Path, state_dir: Path) -> Path:
    """Small limits: a read timeout far above the servers' gaps, so only the deadline can end
    a trickle; three attempts without backoff, so a retry would show."""
    seed_database(template, state_dir)
    return write_config(
        tmp_path / "flightsync.yaml",
        http={"timeout_seconds": 5, "deadline_seconds": DEADLINE,
              "max_response_bytes": MAX_BYTES},
        retry={"attempts": 3, "backoff_initial_seconds": 0, "backoff_max_seconds": 0,
               "budget_seconds": BUDGET},
        breaker={"failure_threshold": 2, "reset_timeout_seconds": 600})


def _sync(config: Path, env: dict[str, str], flight: str, *,
          process: bool = True) -> tuple[Outcome, float]:
    """`flightsync sync FLIGHT` as a subprocess (or in this process, which saves the start-up
    where the wall time is not the point), and its wall time."""
    args = ["sync", flight, "--date", DAY, "--force"]
    env = {**env, "FLIGHTSYNC_CONFIG": str(config)}
    started = time.monotonic()
    outcome = run(args, env, timeout=60) if process else invoke(args, env)
    return outcome, time.monotonic() - started


def _only_source(outcome: Outcome) -> dict[str, Any]:
    outcome.assert_clean()
    assert outcome.exit_code == 1, outcome.stdout + outcome.stderr[-2000:]
    sources = outcome.json["sources"]
    assert len(sources) == 1, sources
    source: dict[str, Any] = sources[0]
    return source


def _breaker(config: Path, env: dict[str, str], provider: str) -> dict[str, Any]:
    status = invoke(["status"], {**env, "FLIGHTSYNC_CONFIG": str(config)})
    assert status.exit_code == 0, status.stderr
    view: dict[str, Any] = status.json["breakers"][provider]
    return view


# --- timeouts: the deadline ends the exchange, the breaker counts it ------------------------

@pytest.mark.parametrize("behaviour", ["trickle", "endless"])
def test_slow_answer_ends_at_the_deadline_and_counts_for_the_breaker(
        behaviour: str, server: Misbehaving, config: Path) -> None:
    """An answer trickled a byte every 50 ms, or a chunked body that never ends, is cut at
    the call's deadline: `provider_timeout`, no retry started after the deadline, the run
    within the budget plus a margin, and two such runs open the provider's breaker."""
    server.answer(AFKLM_PATH, behaviour)
    env = {**AFKLM, "AFKLM_BASE_URL": server.base_url}
    for run_number in (1, 2):
        outcome, wall = _sync(config, env, "AF1006", process=run_number == 1)
        source = _only_source(outcome)
        assert source["error"] == "provider_timeout", source
        assert source["ms"] < (DEADLINE + 3.0) * 1000, source  # + building the client
        assert wall < BUDGET + MARGIN, wall
        assert len(server.paths()) == run_number  # one attempt a run: no time left to retry
    breaker = _breaker(config, env, "airfrance_klm")
    assert breaker["failures"] == 2, breaker
    assert breaker["state"] == "open", breaker


@pytest.mark.parametrize("provider", sorted(OAUTH))
def test_trickled_token_answer_ends_at_the_deadline(
        provider: str, server: Misbehaving, config: Path) -> None:
    """A token endpoint that trickles its answer is cut at the call's deadline too: the sync
    reports `provider_timeout` within the budget, the data endpoint is never asked, and the
    breaker counts the failure."""
    credentials, base_var, token_path, data_path = OAUTH[provider]
    server.answer(token_path, "trickle")
    server.answer(data_path, "html")
    env = {**credentials, base_var: server.base_url}
    outcome, wall = _sync(config, env, "LH400", process=False)
    source = _only_source(outcome)
    assert source["name"] == provider
    assert source["error"] == "provider_timeout", source
    assert wall < BUDGET + MARGIN, wall
    assert server.paths() == [token_path]
    assert _breaker(config, env, provider)["failures"] == 1


# --- bad answers: refused as provider_bad_response, never read whole ------------------------

@pytest.mark.parametrize("behaviour", ["huge", "deep", "redirect", "html", "gzip"])
def test_bad_answer_is_a_bad_response(behaviour: str, server: Misbehaving,
                                      config: Path) -> None:
    """A 40 MB answer (refused past http.max_response_bytes while it streams), JSON nested
    5,000 deep, a redirect (not followed), an HTML page and a compressed answer nobody asked
    for each end as `provider_bad_response` (not `internal_error`), not retried, within the
    budget."""
    server.answer(AFKLM_PATH, behaviour)
    env = {**AFKLM, "AFKLM_BASE_URL": server.base_url}
    outcome, wall = _sync(config, env, "AF1006", process=False)
    source = _only_source(outcome)
    assert source["error"] == "provider_bad_response", source
    assert wall < BUDGET + MARGIN, wall
    # One request: not retried, and a redirect not followed.
    assert [path.split("?")[0] for path in server.paths()] == [AFKLM_PATH]
    if behaviour == "huge":
        # Refused as it streamed: far less than the 40 MB announced ever left the server
        # (the cap plus what the loopback socket buffers hold).
        assert server.sent[0] < 20 * 1024 * 1024, server.sent


# --- the engine's guard: a worker stuck outside any socket operation -------------------------

class StuckAdapter:
    """A plugin adapter that blocks on something that is not its HTTP client (as a DNS lookup
    or a lock would), until the test releases it."""

    name: ClassVar[str] = "stuck"
    default_base_url: ClassVar[str] = "http://127.0.0.1:9"
    default_priority: ClassVar[int] = 5
    default_carriers: ClassVar[frozenset[str] | None] = frozenset({"ZZ"})
    credential_env: ClassVar[tuple[str, ...]] = ()
    uses_oauth: ClassVar[bool] = False
    release: ClassVar[threading.Event] = threading.Event()

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        self.client = client

    def fetch(self, query: FlightQuery) -> Observation:
        self.release.wait(60)
        raise ProviderTimeout("released", provider="stuck")


@pytest.fixture
def stuck() -> Iterator[type[StuckAdapter]]:
    StuckAdapter.release.clear()
    registry.register("stuck", StuckAdapter)
    try:
        yield StuckAdapter
    finally:
        StuckAdapter.release.set()
        registry.unregister("stuck")


def test_engine_gives_up_on_a_worker_stuck_past_the_deadline(
        stuck: type[StuckAdapter], config: Path) -> None:
    """A call whose worker is still blocked a grace period after the deadline is reported as
    `provider_timeout` by the engine itself and counted by the breaker once; the run ends
    (its pool does not wait for the stuck worker) while the worker is still blocked."""
    env = {"FLIGHTSYNC_CONFIG": str(config)}
    started = time.monotonic()
    outcome = invoke(["sync", "ZZ100", "--date", DAY, "--force"], env)
    wall = time.monotonic() - started
    source = _only_source(outcome)
    assert source["name"] == "stuck"
    assert source["error"] == "provider_timeout", source
    assert wall < DEADLINE + GRACE_SECONDS + MARGIN, wall
    assert not stuck.release.is_set()  # the worker was still blocked when the run ended
    assert [e["provider"] for e in outcome.events("provider.fetch.abandoned")] == ["stuck"]
    stuck.release.set()
    assert _breaker(config, env, "stuck")["failures"] == 1


def test_a_stuck_worker_does_not_hold_the_process_at_exit(config: Path) -> None:
    """The real CLI in its own process, with the stuck plugin registered: the process ends
    (exit 1, `provider_timeout`) a grace period after the deadline, although the stuck
    worker would block for another minute (Python joins ordinary pool threads at exit)."""
    script = textwrap.dedent(f"""
        from flightsync.cli import app
        from flightsync.providers import registry
        from tests.test_deadline import StuckAdapter
        registry.register("stuck", StuckAdapter)
        app(["sync", "ZZ100", "--date", "{DAY}", "--force"])
    """)
    env = {**os.environ, "FLIGHTSYNC_CONFIG": str(config)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=50, check=False, cwd=Path(__file__).parents[1])
    wall = time.monotonic() - started
    outcome = Outcome(done.returncode, done.stdout.decode(), done.stderr.decode())
    source = _only_source(outcome)
    assert source["error"] == "provider_timeout", source
    assert wall < DEADLINE + GRACE_SECONDS + MARGIN, wall


class DeepAdapter(StuckAdapter):
    """A plugin adapter with its own recursive parser, handed an answer nested 100,000 deep."""

    name: ClassVar[str] = "deep"
    default_carriers: ClassVar[frozenset[str] | None] = frozenset({"ZY"})

    def fetch(self, query: FlightQuery) -> Observation:
        def depth(value: Any) -> int:
            return 1 + max((depth(v) for v in value), default=0) if isinstance(value, list) \
                else 0
        nested: Any = []
        for _ in range(100_000):
            nested = [nested]
        depth(nested)
        raise AssertionError("unreachable: the parser recursed past the limit")


def test_any_adapter_recursing_on_a_deep_answer_reports_a_bad_response(config: Path) -> None:
    """A RecursionError out of any adapter (a plugin's own parser here) is the provider's
    deeply nested answer at fault: `provider_bad_response`, not `internal_error`."""
    registry.register("deep", DeepAdapter)
    try:
        outcome = invoke(["sync", "ZY100", "--date", DAY, "--force"],
                         {"FLIGHTSYNC_CONFIG": str(config)})
    finally:
        registry.unregister("deep")
    source = _only_source(outcome)
    assert source["name"] == "deep"
    assert source["error"] == "provider_bad_response", source


# --- the transport on its own: every caller gets the deadline -------------------------------

def _airfrance(server: Misbehaving, state_dir: Path, **http: Any) -> Any:
    settings = Settings.model_validate({
        "http": {"timeout_seconds": 5, "deadline_seconds": DEADLINE, **http},
        "providers": {"airfrance_klm": {"base_url": server.base_url,
                                        "credentials": {"api_key": "misbehaving-key"}}}})
    providers = build_providers(settings, state_dir)
    return providers, providers.adapters["airfrance_klm"]


def test_a_request_outside_any_call_gets_its_own_deadline(
        server: Misbehaving, state_dir: Path) -> None:
    """A request made outside the engine's per-call deadline (a plugin's extra call, an
    operator view) is bounded by http.deadline_seconds all the same."""
    server.answer(AFKLM_PATH, "endless")
    providers, adapter = _airfrance(server, state_dir)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderTimeout):
            adapter.fetch(FlightQuery.parse("AF1006", DAY))
    finally:
        providers.close()
    assert time.monotonic() - started < DEADLINE + 2.0


def test_an_outer_deadline_sooner_than_the_requests_wins(
        server: Misbehaving, state_dir: Path) -> None:
    """Inside a call whose deadline is sooner than http.deadline_seconds, the exchange ends
    by the call's deadline; once it has passed, no new exchange even starts."""
    server.answer(AFKLM_PATH, "trickle")
    providers, adapter = _airfrance(server, state_dir, deadline_seconds=60)
    query = FlightQuery.parse("AF1006", DAY)
    try:
        started = time.monotonic()
        with provider_deadline(started + 0.5), pytest.raises(ProviderTimeout):
            adapter.fetch(query)
        assert time.monotonic() - started < 2.5
        with provider_deadline(time.monotonic() - 1), pytest.raises(ProviderTimeout):
            adapter.fetch(query)
    finally:
        providers.close()
    assert len(server.paths()) == 1  # the second exchange never reached the server


def test_answer_size_cap_is_configurable(server: Misbehaving, state_dir: Path) -> None:
    """http.max_response_bytes is the cap: the same 40 MB answer names the configured
    number when it is refused."""
    server.answer(AFKLM_PATH, "huge")
    providers, adapter = _airfrance(server, state_dir, max_response_bytes=2048)
    try:
        with pytest.raises(ProviderBadResponse, match="2048 bytes"):
            adapter.fetch(FlightQuery.parse("AF1006", DAY))
    finally:
        providers.close()


def test_no_retry_starts_after_the_deadline() -> None:
    """call_with_retry stops retrying a timeout once the call's deadline leaves no time for
    the next attempt, whatever budget_seconds would still allow."""
    calls = []
    clock = [100.0]

    def attempt() -> None:
        calls.append(clock[0])
        clock[0] += 1.0
        raise ProviderTimeout("slow", provider="p")

    settings = RetrySettings(attempts=10, backoff_initial_seconds=0.5,
                             backoff_max_seconds=0.5, budget_seconds=1000)
    with pytest.raises(ProviderTimeout):
        call_with_retry(attempt, settings, provider="p", clock=lambda: clock[0],
                        deadline=102.2)
    assert calls == [100.0, 101.0]  # the third would have to wait past 102.2


# --- configuration: no way to switch a limit off ---------------------------------------------

@pytest.mark.parametrize(("section", "key", "value"), [
    ("http", "timeout_seconds", ".inf"),
    ("http", "timeout_seconds", "1e400"),
    ("http", "timeout_seconds", ".nan"),
    ("http", "deadline_seconds", ".inf"),
    ("http", "deadline_seconds", "1e9"),
    ("retry", "budget_seconds", "1e400"),
    ("retry", "backoff_max_seconds", ".inf"),
    ("http", "max_response_bytes", "1e12"),
])
def test_unbounded_time_or_size_in_config_is_refused(
        section: str, key: str, value: str, tmp_path: Path) -> None:
    """A non-finite or absurd timeout, deadline, budget or size is refused with one line
    naming the key, exit 2, before anything runs."""
    path = tmp_path / "flightsync.yaml"
    path.write_text(f"{section}:\n  {key}: {value}\n", encoding="utf-8")
    outcome = invoke(["--config", str(path), "status"])
    outcome.assert_clean()
    assert outcome.exit_code == 2
    assert len(outcome.error_lines()) == 1
    assert f"{section}.{key}" in outcome.error_lines()[0]


# --- a password in a base URL is never shown -------------------------------------------------

def test_base_url_password_is_masked_in_output_and_logs(server: Misbehaving,
                                                        config: Path) -> None:
    """`providers` shows a base URL with its password as `***` (as the database URL's), and
    a verbose sync against it leaves the password in neither stdout nor stderr."""
    secret = "hunter2-url-password"
    host = server.base_url.removeprefix("http://")
    env = {**AFKLM, "AFKLM_BASE_URL": f"http://operator:{secret}@{host}",
           "FLIGHTSYNC_CONFIG": str(config)}
    listing = invoke(["providers"], env)
    assert listing.exit_code == 0, listing.stderr
    rows = {row["name"]: row for row in listing.json["providers"]}
    assert rows["airfrance_klm"]["base_url"] == f"http://operator:***@{host}"
    assert secret not in listing.stdout + listing.stderr
    server.answer(AFKLM_PATH, "html")
    synced = run(["-vv", "sync", "AF1006", "--date", DAY, "--force"], env, timeout=60)
    assert synced.exit_code == 1, synced.stderr[-2000:]
    assert synced.events(), "the verbose run logged nothing to check"
    assert secret not in synced.stdout + synced.stderr
