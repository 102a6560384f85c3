"""`flightsync config show`: every setting in effect, where it came from (default, file,
environment, option) and secrets masked, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from flightsync.cli import app

SECRET = "s3cr3t-amadeus-value"
DB_PASSWORD = "pw-9f8e7d6c"


def show(*args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    try:
        result = CliRunner().invoke(app, [*args, "config", "show", "--json"], env=env)
    finally:
        structlog.reset_defaults()
    data = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, data, result.stdout + result.stderr


def by_key(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in data["settings"]}


def test_each_origin_is_named(tmp_path: Path, state_dir: Path) -> None:
    """A value from the file says `file PATH`, one from the environment `environment VAR`, an
    untouched one `default`; the derived database URL shows what a run will use."""
    config = tmp_path / "flightsync.yaml"
    config.write_text("cache:\n  ttl_future_seconds: 1234\nsync:\n  max_days_ahead: 3\n",
                      encoding="utf-8")
    code, data, _ = show("--config", str(config),
                         env={"FLIGHT_SYNC_CACHE_TTL_MS": "60000"})
    assert code == 0
    rows = by_key(data)
    assert rows["cache.ttl_future_seconds"] == {
        "key": "cache.ttl_future_seconds", "value": 1234, "origin": f"file {config}"}
    assert rows["sync.max_days_ahead"]["value"] == 3
    assert rows["cache.ttl_active_seconds"]["value"] == 60
    assert rows["cache.ttl_active_seconds"]["origin"] == "environment FLIGHT_SYNC_CACHE_TTL_MS"
    assert rows["state_dir"] == {"key": "state_dir", "value": str(state_dir),
                                 "origin": "environment FLIGHTSYNC_STATE_DIR"}
    assert rows["retry.attempts"] == {"key": "retry.attempts", "value": 3, "origin": "default"}
    assert rows["database_url"]["value"] == f"sqlite:///{state_dir / 'flightsync.db'}"
    assert data["config_file"] == str(config)


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials, the webhook secret and a database password never appear; each credential
    is listed as *** with the variable it came from."""
    env = {"AMADEUS_CLIENT_ID": "amadeus-client-id-1", "AMADEUS_CLIENT_SECRET": SECRET,
           "FLIGHTSYNC_WEBHOOK_SECRET": "whsec_c2VjcmV0LWtleS1ieXRlcw==",
           "FLIGHTSYNC_DATABASE_URL": f"postgresql+psycopg://app:{DB_PASSWORD}@db/flights"}
    code, data, output = show(env=env)
    assert code == 0
    for secret in (SECRET, "amadeus-client-id-1", DB_PASSWORD, "c2VjcmV0LWtleS1ieXRlcw"):
        assert secret not in output
    rows = by_key(data)
    assert rows["providers.amadeus.credentials.client_secret"] == {
        "key": "providers.amadeus.credentials.client_secret", "value": "***",
        "origin": "environment AMADEUS_CLIENT_SECRET"}
    assert rows["webhook_secret"]["value"] == "***"
    assert rows["database_url"]["value"] == "postgresql+psycopg://app:***@db/flights"


def test_sandbox_values_are_an_option() -> None:
    """Under --sandbox the providers' base URLs come from the option, and say so."""
    code, data, _ = show("--sandbox")
    assert code == 0
    rows = by_key(data)
    assert rows["providers.lufthansa.base_url"]["origin"] == "option --sandbox"
    assert rows["providers.lufthansa.base_url"]["value"].startswith("http://127.0.0.1:")


def test_a_bad_config_is_exit_2(tmp_path: Path) -> None:
    """config show refuses a bad file as every command does: one line, exit 2."""
    config = tmp_path / "bad.yaml"
    config.write_text("sync:\n  max_days_ahead: -1\n", encoding="utf-8")
    code, _, output = show("--config", str(config))
    assert code == 2 and "sync.max_days_ahead" in output


def test_the_table_names_origins(tmp_path: Path) -> None:
    """At a terminal the same rows are a key/value/origin table."""
    from rich.console import Console  # noqa: PLC0415

    from flightsync.cli._config import _table  # noqa: PLC0415

    console = Console(width=80, record=True)
    _table(console, {"config_file": None, "settings": [
        {"key": "providers.cirium.base_url",
         "value": "https://api.flightstats.com/flex/flightstatus/rest/v2/json",
         "origin": "environment CIRIUM_BASE_URL"}]})
    text = console.export_text()
    assert "environment CIRIUM_BASE_URL" in text or "CIRIUM_BASE_URL" in text
    assert "providers.cirium.base_url" in text
    assert "none (built-in defaults)" in text
