"""Shared state through Redis (issue 14, README "Shared state"): breakers, OAuth tokens and
the cache of one host are those of every host pointed at the same ``state_url``; Redis
unreachable at start is exit 5 with one line, Redis lost mid-run fails the affected flights
cleanly.

"Hosts" are separate processes with separate state directories sharing one Redis database
(the shared server's test database under a prefix of the test's own, or a private server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from flightsync.config import BreakerSettings
from flightsync.engine._due import RETRY_DUE
from flightsync.errors import StoreError
from flightsync.resilience import Breakers, BreakerStatus, StateStore
from flightsync.sandbox import SandboxConfig
from tests._e2e import closed_port, integrity_problems, run
from tests._sandbox_cli import SandboxCli, batch_csv, only_providers, sandbox_cli
from tests.conftest import PrivateRedis, start_private_redis

DAY = "2026-02-25"
NOW = datetime(2026, 2, 25, 5, 0, tzinfo=UTC)
SETTINGS = BreakerSettings(failure_threshold=2, reset_timeout_seconds=30)
HOSTS = 4


def _run_hosts(script: str, hosts: Sequence[dict[str, str]], go: Path) -> list[str]:
    """Start one Python process per host running ``script`` (which waits for ``go`` to exist
    before its racing step), let them all race, and return each one's last stdout line."""
    processes = [subprocess.Popen([sys.executable, "-c", script], env={**os.environ, **host},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for host in hosts]
    try:
        ready = go.parent
        deadline = time.monotonic() + 60
        # Each process touches ready/<pid> once imported and set up, then polls for ``go``.
        while len(list(ready.glob("ready-*"))) < len(processes):
            assert time.monotonic() < deadline, "the host processes did not start"
            assert all(p.poll() is None for p in processes), [
                p.communicate()[1].decode()[-2000:] for p in processes if p.poll() is not None]
            time.sleep(0.01)
        go.touch()
        outputs = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err.decode()[-3000:]
            outputs.append(out.decode().strip().splitlines()[-1])
        return outputs
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


_WAIT_FOR_GO = """
import os, pathlib, time
go = pathlib.Path(os.environ["TEST_GO"])
(go.parent / f"ready-{os.getpid()}").touch()
deadline = time.monotonic() + 60
while not go.exists():
    assert time.monotonic() < deadline
    time.sleep(0.001)
"""


def _host(tmp_path: Path, index: int, url: str, prefix: str) -> dict[str, str]:
    return {"FLIGHTSYNC_STATE_DIR": str(tmp_path / f"host{index}"), "FLIGHTSYNC_STATE_URL": url,
            "FLIGHTSYNC_STATE_PREFIX": prefix, "TEST_GO": str(tmp_path / "race" / "go")}


def _store(state_dir: Path, url: str, prefix: str) -> StateStore:
    return StateStore(state_dir, url=url, prefix=prefix)


# --- breakers -----------------------------------------------------------------------------

def test_a_breaker_opened_on_one_host_is_open_on_another(
        tmp_path: Path, redis_state: tuple[str, str]) -> None:
    """Two failures recorded by a process with its own state directory open the breaker for
    a second process with another state directory on the same Redis: it skips the provider
    without calling it, and sees the same state and failure count."""
    url, prefix = redis_state
    opener = textwrap.dedent("""
        import sys
        from flightsync.config import BreakerSettings
        from flightsync.resilience import Breakers, StateStore
        url, prefix, state = sys.argv[1:4]
        with StateStore(state, url=url, prefix=prefix) as store:
            breakers = Breakers(store, BreakerSettings(failure_threshold=2,
                                                       reset_timeout_seconds=30))
            breakers.record_failure("lufthansa")
            breakers.record_failure("lufthansa")
        """)
    done = subprocess.run([sys.executable, "-c", opener, url, prefix, str(tmp_path / "a")],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]

    with _store(tmp_path / "b", url, prefix) as store:
        breakers = Breakers(store, SETTINGS)
        assert breakers.before_call("lufthansa") is False
        state = breakers.state("lufthansa")
        assert (state.state, state.failures) == (BreakerStatus.OPEN, 2)
        assert breakers.before_call("amadeus") is True  # other providers are untouched
    with _store(tmp_path / "c", None, prefix) as local:  # the state directory knows nothing
        assert Breakers(local, SETTINGS).before_call("lufthansa") is True


def test_half_open_admits_exactly_one_probe_across_hosts(
        tmp_path: Path, redis_state: tuple[str, str]) -> None:
    """With the breaker open past its reset timeout, four processes (separate state
    directories, one Redis) ask at the same moment: exactly one is granted the probe."""
    url, prefix = redis_state
    with _store(tmp_path / "setup", url, prefix) as store:
        long_ago = Breakers(store, SETTINGS, clock=lambda: time.time() - 3600)
        long_ago.record_failure("amadeus")
        long_ago.record_failure("amadeus")
        assert long_ago.state("amadeus").state is BreakerStatus.OPEN
    (tmp_path / "race").mkdir()
    script = textwrap.dedent("""
        import os
        from flightsync.config import BreakerSettings
        from flightsync.resilience import Breakers, StateStore
        store = StateStore(os.environ["FLIGHTSYNC_STATE_DIR"],
                           url=os.environ["FLIGHTSYNC_STATE_URL"],
                           prefix=os.environ["FLIGHTSYNC_STATE_PREFIX"])
        breakers = Breakers(store, BreakerSettings(failure_threshold=2,
                                                   reset_timeout_seconds=30))
        store.breakers.get("warm-up")  # connected before the race starts
        """) + _WAIT_FOR_GO + "print(breakers.before_call('amadeus'))\n"

    grants = _run_hosts(script, [_host(tmp_path, i, url, prefix) for i in range(HOSTS)],
                        tmp_path / "race" / "go")

    assert sorted(grants) == ["False"] * (HOSTS - 1) + ["True"]
    with _store(tmp_path / "after", url, prefix) as store:
        state = Breakers(store, SETTINGS).state("amadeus")
        assert state.state is BreakerStatus.HALF_OPEN and state.probe_started_at is not None


# --- tokens -------------------------------------------------------------------------------

def test_one_token_request_for_the_account_across_hosts(
        tmp_path: Path, redis_state: tuple[str, str]) -> None:
    """Four processes sharing Redis whose cached Amadeus token expired at once all need a
    token together: the sandbox's token endpoint is asked exactly once, and all four use the
    token it issued."""
    url, prefix = redis_state
    with sandbox_cli(tmp_path / "unused", SandboxConfig(now=NOW)) as cli:
        env = cli.env
        base_url = env["AMADEUS_BASE_URL"]
        client_id, secret = env["AMADEUS_CLIENT_ID"], env["AMADEUS_CLIENT_SECRET"]
        from flightsync.providers._oauth import token_key  # noqa: PLC0415

        with _store(tmp_path / "setup", url, prefix) as store:  # the fleet's expired token
            store.tokens.set(token_key("amadeus", base_url, client_id, secret),
                             {"access_token": "expired", "expires_at": time.time() - 5})
        before = cli.sandbox.stats()["amadeus"]["token_requests"]
        (tmp_path / "race").mkdir()
        script = textwrap.dedent(f"""
            import os
            import httpx
            from flightsync.providers import OAuthTokenSource
            from flightsync.resilience import StateStore
            store = StateStore(os.environ["FLIGHTSYNC_STATE_DIR"],
                               url=os.environ["FLIGHTSYNC_STATE_URL"],
                               prefix=os.environ["FLIGHTSYNC_STATE_PREFIX"])
            client = httpx.Client(base_url={base_url!r}, timeout=10)
            source = OAuthTokenSource(client, provider="amadeus",
                                      token_path="/v1/security/oauth2/token",
                                      client_id={client_id!r}, client_secret={secret!r},
                                      base_url={base_url!r},
                                      store=store.tokens)
            store.tokens.get("warm-up")
            """) + _WAIT_FOR_GO + "print(source.token())\n"

        tokens = _run_hosts(script, [_host(tmp_path, i, url, prefix) for i in range(HOSTS)],
                            tmp_path / "race" / "go")

        assert cli.sandbox.stats()["amadeus"]["token_requests"] - before == 1
    assert len(set(tokens)) == 1 and tokens[0] != "expired"


# --- the cache ----------------------------------------------------------------------------

def test_a_sync_on_one_host_is_a_cache_hit_on_another(
        tmp_path: Path, redis_state: tuple[str, str]) -> None:
    """Host A syncs LH400; host B (its own state directory, the same database and Redis)
    syncing it next is answered from the cache without a provider call."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    with sandbox_cli(tmp_path / "hostA", SandboxConfig(now=NOW),
                     database_url=database) as cli:
        assert cli.run("migrate").exit_code == 0
        first = cli.sync("LH400", DAY)
        assert first.exit_code == 0, first.stderr[-2000:]
        assert first.data["from_cache"] is False
        calls = cli.requests()
        assert calls > 0

        second = cli.run("sync", "LH400", "--date", DAY,
                         env={"FLIGHTSYNC_STATE_DIR": str(tmp_path / "hostB")})

        assert second.exit_code == 0, second.stderr[-2000:]
        assert second.data["from_cache"] is True
        assert cli.requests() == calls
        assert not (tmp_path / "hostB" / "cache").exists()  # it came from Redis

        status = cli.run("status", env={"FLIGHTSYNC_STATE_DIR": str(tmp_path / "hostB")})
        assert status.exit_code == 0, status.stderr[-2000:]
        assert status.data["state"] == {"backend": "redis", "location": redis_state[0]}
        assert status.data["cache"]["hits"] >= 1  # host B's hit, counted in Redis


# --- Redis unavailable --------------------------------------------------------------------

def test_redis_unreachable_at_start_is_exit_5_with_one_line(tmp_path: Path) -> None:
    """The real CLI with a state_url nothing answers on: exit 5, one `error:` line naming
    the state store, no traceback, the URL's password nowhere, nothing written."""
    port = closed_port()
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"),
           "FLIGHTSYNC_STATE_URL": f"redis://:hunter2secret@127.0.0.1:{port}/0"}

    done = run(["sync", "LH400", "--date", DAY], env)

    assert done.exit_code == 5, done.stderr[-2000:]
    done.assert_clean()
    lines = done.error_lines()
    assert len(lines) == 1 and "state store unavailable" in lines[0], done.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "hunter2secret" not in done.stdout + done.stderr
    assert not (tmp_path / "state" / "flightsync.db").exists()


def test_a_refused_password_is_exit_5_without_the_password(tmp_path: Path) -> None:
    """A state_url whose password the server refuses: exit 5, one line, the password masked
    in it and everywhere else."""
    with start_private_redis(tmp_path, "--requirepass", "the-right-one") as server:
        url = server.url.replace("redis://", "redis://:hunter2secret@")
        env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"), "FLIGHTSYNC_STATE_URL": url}

        done = run(["status"], env)

    assert done.exit_code == 5, done.stderr[-2000:]
    done.assert_clean()
    assert "redis://:***@" in done.error_lines()[0]
    assert "hunter2secret" not in done.stdout + done.stderr


def test_a_malformed_state_url_is_exit_2_without_its_password(tmp_path: Path) -> None:
    """A state_url that is no Redis URL is a configuration error (exit 2), one line, and the
    password in it is masked."""
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"),
           "FLIGHTSYNC_STATE_URL": "http://:hunter2secret@127.0.0.1/0"}

    done = run(["sync", "LH400", "--date", DAY], env)

    assert done.exit_code == 2
    done.assert_clean()
    assert "FLIGHTSYNC_STATE_URL" in done.error_lines()[0]
    assert "hunter2secret" not in done.stdout + done.stderr


def test_backend_failures_are_store_errors_naming_the_server(
        tmp_path: Path, private_redis: PrivateRedis) -> None:
    """Once the server is gone every bucket operation raises StoreError (exit 5) naming the
    server, never a redis-py exception."""
    with _store(tmp_path / "s", private_redis.url, "fs") as store:
        store.cache.set("k", 1)
        private_redis.kill()
        with pytest.raises(StoreError, match=f"127.0.0.1:{private_redis.port}"):
            store.cache.get("k")
        with pytest.raises(StoreError):
            Breakers(store, SETTINGS).before_call("amadeus")


def _due_flights(cli: SandboxCli, count: int) -> list[str]:
    """Track ``count`` Lufthansa flights departing tomorrow and make them all due."""
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    flights = [(f"LH{400 + 2 * i}", tomorrow) for i in range(count)]
    result = cli.run("batch", "-", stdin=batch_csv(flights))
    assert result.exit_code == 0, result.stderr[-2000:]
    with sa.create_engine(cli.database_url).begin() as conn:
        conn.execute(sa.text("UPDATE flight SET next_sync_due_at = :past"),
                     {"past": "2000-01-01 00:00:00.000000"})
    return [flight for flight, _ in flights]


@pytest.fixture
def slow_sandbox(tmp_path: Path, private_redis: PrivateRedis) -> Iterator[SandboxCli]:
    """The sandbox (Lufthansa alone, 50 ms a call) with the CLI's state in the private
    Redis."""
    extra = {**only_providers("lufthansa"), "FLIGHTSYNC_STATE_URL": private_redis.url,
             "FLIGHTSYNC_STATE_PREFIX": "fs"}
    with sandbox_cli(tmp_path / "state", SandboxConfig(now=NOW), extra_env=extra) as cli:
        yield cli


def test_redis_lost_mid_batch_fails_the_affected_flights_cleanly(
        slow_sandbox: SandboxCli, private_redis: PrivateRedis) -> None:
    """Redis killed while `batch --due` runs: the run ends (no hang, no traceback), the
    flights not synced fail naming the state store, they stay due for the next run, the
    database is consistent, and the exit code is 1 (flights failed)."""
    cli = slow_sandbox
    flights = _due_flights(cli, 12)
    cli.scenario(default_latency_ms=50)
    killer = threading.Thread(target=_kill_after_first_calls,
                              args=(cli, private_redis, cli.requests() + 2))
    killer.start()
    try:
        result = cli.run("batch", "--due", "--concurrency", "1")
    finally:
        killer.join()

    assert result.exit_code == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    data = result.data
    failed = data["failed"]
    assert failed and data["summary"]["failed"] == len(failed)
    assert all("store_unavailable" in f["error"]["message"] for f in failed), failed
    assert data["summary"]["synced"] + len(failed) == len(flights)
    failed_names = {f["flight"] for f in failed}
    assert failed_names <= set(flights)
    # They stay tracked and come round again after the retry interval (RETRY_DUE), like
    # any flight no provider could take: not leased, not moved to their next refresh, not
    # rewritten (version as the first sync left it).
    retry_by = (datetime.now(UTC) + RETRY_DUE + timedelta(minutes=1)).strftime(
        "%Y-%m-%d %H:%M:%S.%f")
    rows = cli.rows("SELECT carrier, flight_number, next_sync_due_at, lease_owner, version "
                    "FROM flight")
    after = {f"{r['carrier']}{r['flight_number']}": r for r in rows}
    for name in failed_names:
        row = after[name]
        assert row["lease_owner"] is None and row["version"] == 1, row
        assert str(row["next_sync_due_at"]) <= retry_by, row
    assert integrity_problems(cli.sqlite_path) == []


def _kill_after_first_calls(cli: SandboxCli, server: PrivateRedis, calls: int) -> None:
    """Kill the server once the sandbox has answered ``calls`` data calls in all."""
    deadline = time.monotonic() + 60
    while cli.requests() < calls and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()


def test_a_sandbox_run_never_uses_the_shared_store(tmp_path: Path) -> None:
    """`--sandbox` keeps its state in its own folder even with a state_url set: fake answers
    never reach the fleet's Redis (here nothing answers on it, and the run still works)."""
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"),
           "FLIGHTSYNC_STATE_URL": f"redis://127.0.0.1:{closed_port()}/0"}

    done = run(["--sandbox", "sync", "LH400", "--date", DAY], env)

    assert done.exit_code == 0, done.stderr[-2000:]
    assert done.json["success"] is True
    assert (tmp_path / "state" / "sandbox" / "cache").is_dir()


def test_config_show_masks_the_state_url_password(tmp_path: Path) -> None:
    """`config show` lists state_url with its password as *** and where it came from, and
    state_prefix with its default."""
    env = {"FLIGHTSYNC_STATE_DIR": str(tmp_path / "state"),
           "FLIGHTSYNC_STATE_URL": "redis://:hunter2secret@redis.internal:6379/3"}

    done = run(["config", "show", "--json"], env)

    assert done.exit_code == 0, done.stderr[-2000:]
    rows = {row["key"]: row for row in done.json["settings"]}
    assert rows["state_url"]["value"] == "redis://:***@redis.internal:6379/3"
    assert rows["state_url"]["origin"] == "environment FLIGHTSYNC_STATE_URL"
    assert rows["state_prefix"]["value"] == "flightsync"
    assert "hunter2secret" not in done.stdout + done.stderr
