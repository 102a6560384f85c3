"""Adapter registry and build_providers: built-ins by name, unknown names, run-time
registration, third-party entry points, and the skip reasons of an unusable provider."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from flightsync.config import ProviderSettings, Settings
from flightsync.errors import ConfigError
from flightsync.models import PROVIDER_NAMES, FlightQuery, Leg, Observation
from flightsync.providers import ALL_CARRIERS, TokenSource, build_providers, registry
from flightsync.providers.amadeus import AmadeusAdapter
from flightsync.providers.lufthansa import LufthansaAdapter

OWN = ("amadeus", "lufthansa", "airfrance_klm")


class EchoAdapter:
    """A real (if trivial) adapter implementing the interface, for run-time registration."""

    name: ClassVar[str] = "echo"
    default_base_url: ClassVar[str] = "http://127.0.0.1:9"
    default_priority: ClassVar[int] = 5
    default_carriers: ClassVar[frozenset[str] | None] = frozenset({"ZZ"})
    credential_env: ClassVar[tuple[str, ...]] = ()
    uses_oauth: ClassVar[bool] = False

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        self.client = client

    def fetch(self, query: FlightQuery) -> Observation:
        return Observation(provider="echo", query=query, legs=(Leg(origin="AAA"),),
                           fetched_at=datetime.now(UTC))


@pytest.fixture
def echo_registered() -> Iterator[None]:
    registry.register("echo", EchoAdapter)
    try:
        yield
    finally:
        registry.unregister("echo")


def test_builtins_are_listed_in_order() -> None:
    """names() starts with the built-in providers in their documented order."""
    assert registry.names()[:len(PROVIDER_NAMES)] == list(PROVIDER_NAMES)


def test_get_imports_the_builtin_class() -> None:
    """get() resolves a built-in name to its adapter class."""
    assert registry.get("amadeus") is AmadeusAdapter
    assert registry.get("lufthansa") is LufthansaAdapter


def test_unknown_name_lists_the_known_ones() -> None:
    """An unknown name is a ConfigError naming every known provider."""
    with pytest.raises(ConfigError) as caught:
        registry.get("ryanair")
    for name in OWN:
        assert name in caught.value.message
    assert "ryanair" in caught.value.message


def test_runtime_register_and_unregister(echo_registered: None) -> None:
    """register() adds a name at run time; unregister() removes it again."""
    assert "echo" in registry.names()
    assert registry.get("echo") is EchoAdapter
    registry.unregister("echo")
    assert "echo" not in registry.names()


def test_import_failure_says_what_to_install() -> None:
    """A target whose module is missing gives a ConfigError naming the module to install."""
    registry.register("ghost", "flightsync_ghost_plugin.adapter:GhostAdapter")
    try:
        with pytest.raises(ConfigError) as caught:
            registry.get("ghost")
        assert "pip install flightsync_ghost_plugin" in caught.value.message
    finally:
        registry.unregister("ghost")


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A third-party distribution installed into a tmp dir: a module and a *.dist-info with an
    entry point in the flightsync.adapters group."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fs_demo_plugin.py").write_text(textwrap.dedent("""
        from typing import ClassVar

        class DemoAdapter:
            name: ClassVar[str] = "demo"
            default_base_url: ClassVar[str] = "http://127.0.0.1:9/demo"
            default_priority: ClassVar[int] = 7
            default_carriers: ClassVar[frozenset[str] | None] = frozenset({"DM"})
            credential_env: ClassVar[tuple[str, ...]] = ("DEMO_API_KEY",)
            uses_oauth: ClassVar[bool] = False

            def __init__(self, client, settings, tokens=None):
                self.client = client

            def fetch(self, query):
                raise NotImplementedError
    """))
    dist = site / "fs_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fs-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[flightsync.adapters]\ndemo = fs_demo_plugin:DemoAdapter\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        yield "demo"
    finally:
        sys.modules.pop("fs_demo_plugin", None)
        monkeypatch.undo()
        importlib.invalidate_caches()


def test_entry_point_adapter_appears_without_code_changes(plugin_on_path: str,
                                                          state_dir: Path) -> None:
    """An installed distribution's entry point shows up in names(), resolves with get(), and
    is built and listed by build_providers once its credential is set."""
    assert plugin_on_path in registry.names()
    assert registry.get(plugin_on_path).__name__ == "DemoAdapter"
    settings = Settings(providers={"demo": ProviderSettings(credentials={"api_key": "k"})})
    with build_providers(settings, state_dir) as providers:
        [row] = [r for r in providers.info() if r.name == "demo"]
        assert row.configured is True
        assert (row.priority, row.carriers, row.base_url) == (7, ("DM",),
                                                              "http://127.0.0.1:9/demo")
        assert "demo" in providers.adapters
    with build_providers(Settings(), state_dir) as providers:
        assert providers.skipped["demo"] == "set DEMO_API_KEY"


def _configured() -> Settings:
    return Settings(providers={
        "amadeus": ProviderSettings(base_url="http://127.0.0.1:1/amadeus", priority=25,
                                    credentials={"client_id": "i", "client_secret": "s"}),
        "lufthansa": ProviderSettings(enabled=False),
        "airfrance_klm": ProviderSettings(carriers=("KL",)),
    })


def test_build_skips_disabled_and_uncredentialed(state_dir: Path) -> None:
    """Disabled providers and ones without credentials are skipped with a reason that says
    what to set; a credentialed one gets a client on its configured base URL."""
    with build_providers(_configured(), state_dir) as providers:
        assert providers.skipped["lufthansa"] == "disabled in config"
        assert providers.skipped["airfrance_klm"] == "set AFKLM_API_KEY"
        assert isinstance(providers.adapters["amadeus"], AmadeusAdapter)
        rows = {row.name: row for row in providers.info()}
        assert rows["amadeus"].configured is True and rows["amadeus"].reason is None
        assert rows["amadeus"].base_url == "http://127.0.0.1:1/amadeus"
        assert rows["amadeus"].carriers == ALL_CARRIERS
        assert rows["lufthansa"].configured is False
        assert rows["lufthansa"].base_url == LufthansaAdapter.default_base_url
        assert rows["airfrance_klm"].carriers == ("KL",)
        assert rows["amadeus"].to_json()["carriers"] == "all"
    with build_providers(Settings(), state_dir) as providers:
        assert providers.skipped["amadeus"] == "set AMADEUS_CLIENT_ID and AMADEUS_CLIENT_SECRET"


def test_priority_and_coverage(state_dir: Path) -> None:
    """priority() prefers the configured number over the adapter default; covers() uses the
    configured carriers, else the adapter's, else every carrier."""
    with build_providers(_configured(), state_dir) as providers:
        assert providers.priority("amadeus") == 25
        assert providers.priority("lufthansa") == LufthansaAdapter.default_priority
        assert providers.covers("amadeus", "XQ") is True
        assert providers.covers("lufthansa", "lx") is True
        assert providers.covers("lufthansa", "AF") is False
        assert providers.covers("airfrance_klm", "KL") is True
        assert providers.covers("airfrance_klm", "AF") is False


def test_token_status_and_close(state_dir: Path) -> None:
    """token_status() lists OAuth providers (no token fetched yet: not valid); close() closes
    the pooled clients."""
    providers = build_providers(_configured(), state_dir)
    assert providers.token_status() == {"amadeus": {"valid": False, "expires_at": None}}
    client = providers._clients["amadeus"]
    assert client.timeout.read == Settings().http.timeout_seconds
    providers.close()
    assert client.is_closed


def test_runtime_adapter_is_built(echo_registered: None, state_dir: Path) -> None:
    """A registered adapter needing no credentials is built and usable."""
    with build_providers(Settings(), state_dir) as providers:
        adapter = providers.adapters["echo"]
        assert adapter.fetch(FlightQuery.parse("ZZ1", "2026-01-01")).legs[0].origin == "AAA"
        assert providers.covers("echo", "ZZ") and not providers.covers("echo", "LH")
