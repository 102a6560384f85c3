"""Turn Settings into ready adapters: one pooled httpx.Client per provider, shared by the
worker threads, plus a token source for OAuth providers. Unusable providers are skipped with a
reason instead of failing the run (DESIGN.md section 4)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from flightsync.config import ProviderSettings, Settings
from flightsync.errors import ConfigError
from flightsync.providers import registry
from flightsync.providers._oauth import OAuthTokenSource
from flightsync.providers.base import Adapter

log = structlog.get_logger(__name__)

ALL_CARRIERS = "all"


def credential_key(env_name: str) -> str:
    """The ``ProviderSettings.credentials`` key an environment variable fills:
    ``*_CLIENT_ID`` -> client_id, ``*_CLIENT_SECRET`` -> client_secret, any other key
    (``*_API_KEY``, ``BA_CLIENT_KEY``) -> api_key."""
    upper = env_name.upper()
    if upper.endswith("CLIENT_ID"):
        return "client_id"
    if upper.endswith("CLIENT_SECRET"):
        return "client_secret"
    return "api_key"


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """One row of ``flightsync providers``."""

    name: str
    carriers: tuple[str, ...] | str   # ALL_CARRIERS when the provider covers every carrier
    priority: int
    configured: bool
    reason: str | None
    base_url: str

    def to_json(self) -> dict[str, Any]:
        carriers = self.carriers if isinstance(self.carriers, str) else list(self.carriers)
        return {"name": self.name, "carriers": carriers, "priority": self.priority,
                "configured": self.configured, "reason": self.reason, "base_url": self.base_url}


@dataclass
class ProviderSet:
    """The adapters of one run. ``adapters`` holds the usable ones, ``skipped`` says why the
    others are not usable."""

    adapters: dict[str, Adapter] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    _settings: dict[str, ProviderSettings] = field(default_factory=dict, repr=False)
    _classes: dict[str, type[Adapter]] = field(default_factory=dict, repr=False)
    _clients: dict[str, httpx.Client] = field(default_factory=dict, repr=False)
    _tokens: dict[str, OAuthTokenSource] = field(default_factory=dict, repr=False)

    def __enter__(self) -> ProviderSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def priority(self, name: str) -> int:
        """The configured priority, else the adapter's default (0 for an unloadable one)."""
        configured = self._settings.get(name)
        if configured is not None and configured.priority is not None:
            return configured.priority
        cls = self._classes.get(name)
        return cls.default_priority if cls is not None else 0

    def carriers(self, name: str) -> frozenset[str] | None:
        """The carriers ``name`` covers, or None for every carrier."""
        configured = self._settings.get(name)
        if configured is not None and configured.carriers is not None:
            return frozenset(c.upper() for c in configured.carriers)
        cls = self._classes.get(name)
        return cls.default_carriers if cls is not None else None

    def covers(self, name: str, carrier: str) -> bool:
        covered = self.carriers(name)
        return covered is None or carrier.upper() in covered

    def base_url(self, name: str) -> str:
        configured = self._settings.get(name)
        if configured is not None and configured.base_url:
            return configured.base_url
        cls = self._classes.get(name)
        return cls.default_base_url if cls is not None else ""

    def info(self) -> list[ProviderInfo]:
        rows = []
        for name in [*self.adapters, *(n for n in self.skipped if n not in self.adapters)]:
            covered = self.carriers(name)
            rows.append(ProviderInfo(
                name=name,
                carriers=ALL_CARRIERS if covered is None else tuple(sorted(covered)),
                priority=self.priority(name),
                configured=name in self.adapters,
                reason=self.skipped.get(name),
                base_url=self.base_url(name),
            ))
        return rows

    def token_status(self) -> dict[str, dict[str, Any]]:
        """For each OAuth provider: whether a usable token is cached and when it expires."""
        out: dict[str, dict[str, Any]] = {}
        for name, source in self._tokens.items():
            valid, expires_at = source.status()
            out[name] = {"valid": valid, "expires_at": expires_at}
        return out

    def close(self) -> None:
        for source in self._tokens.values():
            source.close()
        for client in self._clients.values():
            client.close()
        self._tokens.clear()
        self._clients.clear()


def _missing_credentials(cls: type[Adapter], settings: ProviderSettings) -> list[str]:
    return [env for env in cls.credential_env
            if not settings.credentials.get(credential_key(env))]


def _client(base_url: str, settings: Settings, verify: ssl.SSLContext) -> httpx.Client:
    workers = settings.http.max_workers
    return httpx.Client(
        base_url=base_url,
        verify=verify,
        timeout=httpx.Timeout(settings.http.timeout_seconds),
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        headers={"User-Agent": "flightsync"},
    )


def build_providers(settings: Settings, state_dir: Path) -> ProviderSet:
    """Every registered adapter, either ready in ``adapters`` or in ``skipped`` with a reason
    (disabled in config, credentials missing, adapter not loadable)."""
    result = ProviderSet()
    # Loading the CA bundle costs ~0.1 s of CPU; one context serves every client of the run.
    verify = httpx.create_ssl_context()
    for name in registry.names():
        configured = settings.providers.get(name, ProviderSettings())
        result._settings[name] = configured
        try:
            cls = registry.get(name)
        except ConfigError as exc:
            result.skipped[name] = "disabled in config" if not configured.enabled else exc.message
            continue
        # Loaded even when disabled, so `flightsync providers` shows its defaults.
        result._classes[name] = cls
        if not configured.enabled:
            result.skipped[name] = "disabled in config"
            continue
        missing = _missing_credentials(cls, configured)
        if missing:
            result.skipped[name] = f"set {' and '.join(missing)}"
            log.warning("provider.skipped", provider=name, missing=missing)
            continue
        client = _client(result.base_url(name), settings, verify)
        tokens = None
        if cls.uses_oauth:
            token_path = getattr(cls, "token_path", None)
            if not isinstance(token_path, str):
                client.close()
                result.skipped[name] = "adapter uses OAuth but declares no token_path"
                continue
            tokens = OAuthTokenSource(
                client, provider=name, token_path=token_path,
                client_id=configured.credentials.get("client_id", ""),
                client_secret=configured.credentials.get("client_secret", ""),
                state_dir=state_dir)
            result._tokens[name] = tokens
        try:
            result.adapters[name] = cls(client, configured, tokens)
        except ConfigError as exc:
            client.close()
            if tokens is not None:
                tokens.close()
                result._tokens.pop(name, None)
            result.skipped[name] = exc.message
            continue
        result._clients[name] = client
    return result

