"""Turn Settings into adapters: one pooled httpx.Client per provider, shared by the worker
threads, plus a token source for OAuth providers. Unusable providers are skipped with a reason
instead of failing the run (docs/CONTRACTS.md section 4).

Clients are built on an adapter's first lookup in ``ProviderSet.adapters``, not with the set:
``status``, ``providers``, ``explain`` and a cached ``sync`` only ask which providers are
usable and what they cover, and never load httpx (~0.1 s) or a CA bundle (~30 ms of CPU).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.config import ProviderSettings, Settings
from flightsync.errors import ConfigError
from flightsync.logs import redact_url
from flightsync.providers import registry
from flightsync.providers._oauth import DirectoryTokens, OAuthTokenSource, cached_status, token_key
from flightsync.providers.base import Adapter, TokenStore

if TYPE_CHECKING:
    import ssl

    import httpx

log = structlog.get_logger(__name__)

ALL_CARRIERS = "all"


def credential_key(env_name: str) -> str:
    """The ``ProviderSettings.credentials`` key an environment variable fills:
    ``*_CLIENT_ID`` -> client_id, ``*_CLIENT_SECRET`` -> client_secret, any other key
    (``*_API_KEY``, ``BA_CLIENT_KEY``) -> api_key; Cirium's pair ``*_APP_ID`` -> app_id and
    ``*_APP_KEY`` -> app_key."""
    upper = env_name.upper()
    if upper.endswith(("APP_ID", "APP_KEY")):
        return "app_id" if upper.endswith("APP_ID") else "app_key"
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


class LazyAdapters(Mapping[str, Adapter]):
    """The usable adapters by name. Names, ``in`` and ``len`` cost nothing; an adapter (with
    its client and token source) is built on its first lookup, once, even when the fetch
    threads ask at the same moment."""

    def __init__(self, build: Callable[[str], Adapter]) -> None:
        self._build = build
        self._names: dict[str, None] = {}
        self._built: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        self._names[name] = None

    def __getitem__(self, name: str) -> Adapter:
        adapter = self._built.get(name)
        if adapter is not None:
            return adapter
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            adapter = self._built.get(name)
            if adapter is None:
                adapter = self._built[name] = self._build(name)
        return adapter

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"LazyAdapters({list(self._names)}, built={list(self._built)})"


if TYPE_CHECKING:
    _ClientDict = dict[str, httpx.Client]
else:
    _ClientDict = dict


class _Clients(_ClientDict):
    """Pooled clients by provider name, each built on its first lookup."""

    def __init__(self, build: Callable[[str], httpx.Client]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, name: str) -> httpx.Client:
        client = self[name] = self._build(name)
        return client


@dataclass
class ProviderSet:
    """The adapters of one run. ``adapters`` holds the usable ones (built on first lookup),
    ``skipped`` says why the others are not usable."""

    settings: Settings = field(default_factory=Settings, repr=False)
    state_dir: Path = field(default=Path("."), repr=False)
    # The state store's ``tokens`` bucket (shared by every host with ``state_url``); None:
    # ``<state_dir>/tokens``.
    token_store: TokenStore | None = field(default=None, repr=False)
    adapters: LazyAdapters = field(init=False)
    skipped: dict[str, str] = field(default_factory=dict)
    # Providers skipped for want of credentials, with the variables to set: warned about by
    # a run that fetches (warn_missing_credentials), not by every command that builds the set.
    missing_credentials: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _warned: bool = field(default=False, repr=False)
    _settings: dict[str, ProviderSettings] = field(default_factory=dict, repr=False)
    _classes: dict[str, type[Adapter]] = field(default_factory=dict, repr=False)
    _clients: _Clients = field(init=False, repr=False)
    _tokens: dict[str, OAuthTokenSource] = field(default_factory=dict, repr=False)
    _verify: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.adapters = LazyAdapters(self._build)
        self._clients = _Clients(self._new_client)

    def __enter__(self) -> ProviderSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warn_missing_credentials(self) -> None:
        """Log once which providers a fetch goes without for want of credentials. `status`,
        `providers` and the other commands that call no provider stay quiet about it
        (`providers` shows the reasons)."""
        if self._warned:
            return
        self._warned = True
        for name, missing in self.missing_credentials.items():
            log.warning("provider.skipped", provider=name, missing=missing)

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

    def serves_suffix(self, name: str) -> bool:
        """Whether ``name`` can be asked for a flight with an operational suffix (LH400A),
        read from the adapter class: no client is built. An adapter that does not say, or
        one that could not be loaded, counts as serving them."""
        cls = self._classes.get(name)
        return bool(getattr(cls, "serves_operational_suffix", True))

    def credential_env(self, name: str) -> tuple[str, ...]:
        """The environment variables holding ``name``'s credentials (empty when unknown)."""
        cls = self._classes.get(name)
        return tuple(getattr(cls, "credential_env", ())) if cls is not None else ()

    def default_limits(self, name: str) -> str | None:
        """The limits ``name``'s adapter publishes for its real service (``default_limits``,
        ``limits`` notation), or None. Only while the base URL is the adapter's own: the
        published limits are the real service's, and must not slow a sandbox or a test
        server down (README "Provider budgets")."""
        cls = self._classes.get(name)
        found = getattr(cls, "default_limits", None)
        if cls is None or not isinstance(found, str):
            return None
        own = cls.default_base_url.rstrip("/")
        return found if self.base_url(name).rstrip("/") == own else None

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
                base_url=redact_url(self.base_url(name)),  # never a password in output
            ))
        return rows

    def token_status(self) -> dict[str, dict[str, Any]]:
        """For each usable OAuth provider: whether a usable token is cached and when it
        expires, read from the token store without building a client."""
        oauth = [name for name in self.adapters if self._classes[name].uses_oauth]
        if not oauth:
            return {}
        own: DirectoryTokens | None = None
        store = self.token_store
        if store is None:
            store = own = DirectoryTokens(self.state_dir / "tokens")
        try:
            out: dict[str, dict[str, Any]] = {}
            for name in oauth:
                credentials = self._settings[name].credentials
                key = token_key(name, self.base_url(name), credentials.get("client_id", ""),
                                credentials.get("client_secret", ""))
                valid, expires_at = cached_status(store, key, time.time())
                out[name] = {"valid": valid, "expires_at": expires_at}
            return out
        finally:
            if own is not None:
                own.close()

    def _new_client(self, name: str) -> httpx.Client:
        if self._verify is None:
            import httpx  # noqa: PLC0415 - see the module docstring

            # Loading the CA bundle costs ~30 ms of CPU; one context serves every client.
            self._verify = httpx.create_ssl_context()
        return _client(name, self.base_url(name), self.settings, self._verify)

    def client(self, name: str) -> httpx.Client:
        """The pooled client of a usable provider (base URL, timeouts, deadline transport),
        for calls beside ``fetch`` such as FlightAware's alert management."""
        if name not in self.adapters:
            raise KeyError(name)
        return self._clients[name]

    def close(self) -> None:
        for source in self._tokens.values():
            source.close()
        for client in self._clients.values():
            client.close()
        self._tokens.clear()
        self._clients.clear()

    def _build(self, name: str) -> Adapter:
        """The adapter ``name`` with its client and, for OAuth, its token source. ConfigError
        here is an adapter refusing settings that passed the credential check."""
        cls = self._classes[name]
        configured = self._settings[name]
        client = self._clients[name]
        tokens = None
        if cls.uses_oauth:
            token_path = getattr(cls, "token_path", "")
            tokens = self._tokens[name] = OAuthTokenSource(
                client, provider=name, token_path=str(token_path),
                client_id=configured.credentials.get("client_id", ""),
                client_secret=configured.credentials.get("client_secret", ""),
                state_dir=self.state_dir, base_url=self.base_url(name), store=self.token_store)
        return cls(client, configured, tokens)


def _missing_credentials(cls: type[Adapter], settings: ProviderSettings) -> list[str]:
    return [env for env in cls.credential_env
            if not settings.credentials.get(credential_key(env))]


def _client(name: str, base_url: str, settings: Settings,
            verify: ssl.SSLContext) -> httpx.Client:
    import httpx  # noqa: PLC0415 - see the module docstring

    from flightsync.providers._trace import trace_hooks  # noqa: PLC0415 - ditto
    from flightsync.providers._transport import DeadlineTransport  # noqa: PLC0415 - ditto

    workers = settings.http.max_workers
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(settings.http.timeout_seconds),
        transport=DeadlineTransport(provider=name, verify=verify, limits=limits,
                                    deadline_seconds=call_deadline_seconds(settings),
                                    max_response_bytes=settings.http.max_response_bytes),
        # Uncompressed, so the size cap counts the bytes the answer really takes.
        headers={"User-Agent": "flightsync", "Accept-Encoding": "identity"},
        event_hooks=trace_hooks(name),  # `-vv`: one debug line per request
    )


def call_deadline_seconds(settings: Settings) -> float:
    """The hard limit on one provider call, retries and token request included:
    ``http.deadline_seconds``, by default ``retry.budget_seconds``."""
    configured = settings.http.deadline_seconds
    return settings.retry.budget_seconds if configured is None else configured


def build_providers(settings: Settings, state_dir: Path, *,
                    token_store: TokenStore | None = None) -> ProviderSet:
    """Every registered adapter, either usable in ``adapters`` (built on first lookup) or in
    ``skipped`` with a reason (disabled in config, credentials missing, adapter not loadable
    or declaring OAuth without a token path). ``token_store``: where OAuth tokens are kept
    (the state store's ``tokens`` bucket); None: ``<state_dir>/tokens``."""
    result = ProviderSet(settings=settings, state_dir=state_dir, token_store=token_store)
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
            result.missing_credentials[name] = missing
            continue
        if cls.uses_oauth and not isinstance(getattr(cls, "token_path", None), str):
            result.skipped[name] = "adapter uses OAuth but declares no token_path"
            continue
        result.adapters.add(name)
    return result
