"""Settings in one place: YAML file < environment < command-line options (docs/CONTRACTS.md §4).

Validated into frozen pydantic models that refuse unknown keys. ``load_settings`` is the only
entry point; it raises ConfigError naming the file, the key and the line.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from flightsync._read import mebibytes, read_at_most
from flightsync.errors import ConfigError
from flightsync.models import PROVIDER_NAMES


class _Frozen(BaseModel):
    # allow_inf_nan=False: `.inf`, `1e400` or `.nan` would switch a timeout or a budget off.
    model_config = ConfigDict(frozen=True, extra="forbid")


# The ceiling of every timeout, deadline and budget: a day is already far past any provider
# call; a larger number is a typo (or an attempt to switch the limit off), not a setting.
MAX_WAIT_SECONDS = 86400.0


# Durations are added to datetimes: a year bounds every setting below far above any sensible
# value, and keeps .inf or 1e300 from an OverflowError in the middle of a run (issue 19).
YEAR_SECONDS = 365 * 86400


class CacheSettings(_Frozen):
    ttl_active_seconds: float = Field(default=900, gt=0, le=YEAR_SECONDS)
    ttl_future_seconds: float = Field(default=3600, gt=0, le=YEAR_SECONDS)
    ttl_arrived_seconds: float = Field(default=86400, gt=0, le=YEAR_SECONDS)
    # The state directory's cache folder stays under this size: diskcache culls the entries
    # stored longest ago first (its least-recently-stored policy). Redis: see its maxmemory.
    size_limit_mb: float = Field(default=256, gt=0, le=1024 * 1024)


class BreakerSettings(_Frozen):
    failure_threshold: int = Field(default=2, ge=1)
    reset_timeout_seconds: float = Field(default=30, gt=0, le=YEAR_SECONDS)


class RetrySettings(_Frozen):
    attempts: int = Field(default=3, ge=1)
    backoff_initial_seconds: float = Field(default=0.5, ge=0, le=MAX_WAIT_SECONDS)
    backoff_max_seconds: float = Field(default=8, ge=0, le=MAX_WAIT_SECONDS)
    # Total time for one call, retries included: no retry starts that would not fit.
    budget_seconds: float = Field(default=30, gt=0, le=MAX_WAIT_SECONDS)


class HttpSettings(_Frozen):
    timeout_seconds: float = Field(default=10, gt=0, le=MAX_WAIT_SECONDS)
    # The hard end of one provider call, retries and token request included, enforced on
    # every socket operation (providers/_deadline.py). None: retry.budget_seconds.
    deadline_seconds: float | None = Field(default=None, gt=0, le=MAX_WAIT_SECONDS)
    # The largest provider answer read, counted while it streams in.
    max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024 ** 3)
    max_workers: int = Field(default=16, ge=1, le=256)


class BatchSettings(_Frozen):
    size: int = Field(default=100, ge=1, le=1_000_000)
    max_requests: int = Field(default=1000, ge=1, le=1_000_000)
    lease_seconds: float = Field(default=600, gt=0, le=YEAR_SECONDS)


class SyncSettings(_Frozen):
    # Beyond this, `sync` wants --track: a mistyped year would be polled until it departs.
    max_days_ahead: int = Field(default=14, ge=0, le=36500)


class BudgetCaps(_Frozen):
    """The most to spend on one provider per calendar day and month (UTC), in the account's
    currency."""

    day: float | None = Field(default=None, ge=0, le=1e9)
    month: float | None = Field(default=None, ge=0, le=1e9)


class ProviderSettings(_Frozen):
    """One provider's settings. Secrets never live here in YAML: they come from the environment
    (docs/CONTRACTS.md §4) and are carried in ``credentials``, which is excluded from repr."""

    enabled: bool = True
    base_url: str | None = None
    priority: int | None = None
    carriers: tuple[str, ...] | None = None   # None: the adapter's own default coverage
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    # Provider budgets (README "Provider budgets"): limits in the `limits` library's notation,
    # the price of one call and the most to spend per UTC calendar day and month.
    limits: str | None = None
    cost_per_call: float = Field(default=0, ge=0, le=1e6)
    budget: BudgetCaps | None = None
    max_wait_seconds: float = Field(default=1, ge=0, le=MAX_WAIT_SECONDS)
    credentials: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)

    @field_validator("limits")
    @classmethod
    def _limits_notation(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse_many  # noqa: PLC0415 - only a config naming limits needs it

            try:
                parse_many(value)
            except ValueError:
                raise PydanticCustomError(
                    "limits", "expected limits such as \"5/second;1000/hour;15000/month\""
                ) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        # Caught here, one line naming the file key or variable; otherwise every sync would
        # fail three times in httpx (UnsupportedProtocol) and open the provider's breaker.
        if value is not None and not _is_http_url(value):
            raise PydanticCustomError(
                "base_url", "expected an absolute http or https URL with a host "
                "(e.g. https://api.example.com)")
        return value


def _is_http_url(value: str) -> bool:
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is no number 0-65535
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


class NotifyTarget(_Frozen):
    url: str
    secret_env: str | None = None
    timeout_seconds: float = Field(default=5, gt=0, le=MAX_WAIT_SECONDS)


class WebhookSettings(_Frozen):
    tolerance_seconds: float = Field(default=300, gt=0, le=YEAR_SECONDS)
    max_bytes: int = Field(default=65536, gt=0, le=16 * 1024 * 1024)


class MetricsSettings(_Frozen):
    textfile: Path | None = None


class AlertSettings(_Frozen):
    breaker_open_seconds: float = Field(default=300, ge=0, le=YEAR_SECONDS)
    batch_success_rate_min: float = Field(default=0.9)
    cache_hit_rate_min: float = Field(default=0.5)
    open_conflicts_max: int = 100
    unsynced_departing_hours: float = Field(default=24, ge=0, le=YEAR_SECONDS / 3600)
    unsynced_for_seconds: float = Field(default=3600, ge=0, le=YEAR_SECONDS)
    # A sync_run row still `running` this long after its start belongs to a killed process
    # (SIGINT/SIGTERM close it as `interrupted`; SIGKILL and crashes cannot).
    abandoned_run_seconds: float = Field(default=3600, gt=0, le=YEAR_SECONDS)
    # No rate alert rests on too little evidence (issue 16): the cache hit rate needs this
    # many provider lookups in its hour, the batch success rate this many flights in the
    # last batch.
    cache_hit_min_sample: int = Field(default=50, ge=1, le=1_000_000_000)
    batch_success_min_sample: int = Field(default=20, ge=1, le=1_000_000_000)


DAY_LIMIT = 36500  # a retention horizon of up to a hundred years


class RetentionSettings(_Frozen):
    """How long each kind of row is kept (README, "Retention"); ``flightsync prune`` and the
    slice after each ``batch --due`` enforce it."""

    observations_days: float = Field(default=30, gt=0, le=DAY_LIMIT)  # after the flight's day
    raw_days: float = Field(default=7, ge=0, le=DAY_LIMIT)       # raw answers, after observed
    changes_days: float = Field(default=400, gt=0, le=DAY_LIMIT)  # audit rows
    runs_days: float = Field(default=90, gt=0, le=DAY_LIMIT)
    deliveries_days: float = Field(default=30, gt=0, le=DAY_LIMIT)
    webhook_events_days: float = Field(default=30, gt=0, le=DAY_LIMIT)
    spool_days: float = Field(default=30, gt=0, le=DAY_LIMIT)    # spool done/ and failed/
    flights_days: float | None = Field(default=None, gt=0, le=DAY_LIMIT)  # None: kept
    # batch --due prunes after its work for at most this long, in transactions of at most
    # ``chunk_rows`` rows (each holds SQLite's write lock only that long).
    batch_budget_seconds: float = Field(default=2, ge=0, le=3600)
    chunk_rows: int = Field(default=500, ge=1, le=100_000)


# The AeroAPI alert events flightsync can ask for (docs/PROVIDERS.md section 6.1.1).
FLIGHTAWARE_ALERT_EVENTS = ("arrival", "cancelled", "departure", "diverted", "filed", "out",
                            "off", "on", "in", "hold_start", "hold_end")


class FlightAwareAlertSettings(_Frozen):
    """``flightaware_alerts:``: AeroAPI push alerts for tracked flights (README, "FlightAware
    alerts"). The receiving URL is ``<public_url>/webhooks/flightaware/<token>``; the token
    is a secret and comes from FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN only."""

    # Where AeroAPI reaches `flightsync serve` from the internet (https://host[:port][/prefix]).
    public_url: str | None = None
    events: tuple[str, ...] = ("arrival", "cancelled", "departure", "diverted")
    # A flight with a live alert is polled by `batch --due` at most this often: its changes
    # are pushed, so the poll only catches what the alerts do not carry.
    poll_every_seconds: float = Field(default=7200, gt=0, le=YEAR_SECONDS)
    # Also set the account-wide endpoint (PUT /alerts/endpoint); off by default, since it is
    # shared by every key of the AeroAPI account. Each alert names its own target_url.
    set_account_endpoint: bool = False

    @field_validator("public_url")
    @classmethod
    def _public_http_url(cls, value: str | None) -> str | None:
        if value is not None and (not _is_http_url(value) or urlsplit(value).query
                                  or urlsplit(value).fragment or "@" in urlsplit(value).netloc):
            raise PydanticCustomError(
                "public_url", "expected an absolute http or https URL with a host and no "
                "query, fragment or password (e.g. https://flights.example.com)")
        return value.rstrip("/") if value is not None else None

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [e for e in value if e not in FLIGHTAWARE_ALERT_EVENTS]
        if unknown or not value:
            raise PydanticCustomError(
                "events", "expected a non-empty list of: {known}",
                {"known": ", ".join(FLIGHTAWARE_ALERT_EVENTS)})
        return tuple(dict.fromkeys(value))


class ServerSettings(_Frozen):
    """``server:``: `flightsync serve` (README, "Webhook server")."""

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8080, ge=0, le=65535)
    # Larger bodies get 413 before they are read whole.
    max_body_bytes: int = Field(default=65536, gt=0, le=16 * 1024 * 1024)
    # A request whose body has not arrived whole by then gets 408.
    request_timeout_seconds: float = Field(default=10, gt=0, le=3600)
    # Requests handled at once; more get 503 at once (uvicorn's limit_concurrency).
    max_concurrency: int = Field(default=64, ge=1, le=10000)
    # Source networks allowed to post FlightAware deliveries (CIDR); empty: any.
    allowed_networks: tuple[str, ...] = ()
    # Where events go when the database is unavailable; None: <state_dir>/spool.
    spool_dir: Path | None = None
    # How long a request waits for the database (SQLite's lock, PostgreSQL's connection)
    # before its event is spooled instead.
    lock_wait_seconds: float = Field(default=2, gt=0, le=60)

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress  # noqa: PLC0415

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise PydanticCustomError(
                    "allowed_networks", "expected CIDR networks such as 192.0.2.0/24, "
                    "got {item}", {"item": item[:40]}) from None
        return value


class Settings(_Frozen):
    database_url: str | None = None   # None: sqlite:///<state_dir>/flightsync.db
    state_dir: Path | None = None     # None: $XDG_STATE_HOME/flightsync
    # Breakers, tokens and the cache shared by every host (README, "Shared state"):
    # redis://[:password@]host:port/db or rediss://; None keeps them in the state directory.
    state_url: str | None = Field(default=None, repr=False)  # FLIGHTSYNC_STATE_URL: a password
    # Key prefix in Redis: one per deployment sharing a server (FLIGHTSYNC_STATE_PREFIX).
    state_prefix: str = Field(default="flightsync", min_length=1, max_length=64,
                              pattern=r"^[A-Za-z0-9_.-]+$")
    policy: Path | None = None        # None: the built-in default policy
    enabled: bool = True              # FLIGHT_SYNC_ENABLED
    cache: CacheSettings = CacheSettings()
    breaker: BreakerSettings = BreakerSettings()
    retry: RetrySettings = RetrySettings()
    http: HttpSettings = HttpSettings()
    batch: BatchSettings = BatchSettings()
    sync: SyncSettings = SyncSettings()
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    notify: tuple[NotifyTarget, ...] = ()
    webhooks: WebhookSettings = WebhookSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    retention: RetentionSettings = RetentionSettings()
    webhook_secret: str | None = Field(default=None, repr=False, exclude=True)
    flightaware_alerts: FlightAwareAlertSettings = FlightAwareAlertSettings()
    # FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN: the secret path segment of the alert URL.
    flightaware_alert_token: str | None = Field(default=None, repr=False, exclude=True)
    server: ServerSettings = ServerSettings()  # `flightsync serve` (issue 15)

    @field_validator("state_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        # Refused here (exit 2, one line), not as exit 5 at the first breaker check; the
        # value itself is never quoted back: it may hold the server's password.
        if value is not None and not _is_redis_url(value):
            raise PydanticCustomError(
                "state_url", "expected redis://host[:port][/db] or rediss://host[:port][/db]")
        return value


def _is_redis_url(value: str) -> bool:
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        return False
    path = parts.path.strip("/")
    return (parts.scheme in ("redis", "rediss") and bool(parts.hostname)
            and (not path or path.isdigit()))


# --- loading -------------------------------------------------------------------------------

KeyPath = tuple[str | int, ...]

# Environment variable -> (provider, credentials key); docs/CONTRACTS.md section 4.
_CREDENTIAL_VARS: dict[str, tuple[str, str]] = {
    "AMADEUS_CLIENT_ID": ("amadeus", "client_id"),
    "AMADEUS_CLIENT_SECRET": ("amadeus", "client_secret"),
    "LUFTHANSA_CLIENT_ID": ("lufthansa", "client_id"),
    "LUFTHANSA_CLIENT_SECRET": ("lufthansa", "client_secret"),
    "AFKLM_API_KEY": ("airfrance_klm", "api_key"),
    "BA_CLIENT_KEY": ("british_airways", "api_key"),
    "FLIGHTAWARE_API_KEY": ("flightaware", "api_key"),
    "CIRIUM_APP_ID": ("cirium", "app_id"),
    "CIRIUM_APP_KEY": ("cirium", "app_key"),
    "AVIATIONSTACK_ACCESS_KEY": ("aviationstack", "api_key"),
    "AERODATABOX_API_KEY": ("aerodatabox", "api_key"),
}
_BASE_URL_VARS: dict[str, str] = {
    "AMADEUS_BASE_URL": "amadeus",
    "LUFTHANSA_BASE_URL": "lufthansa",
    "AFKLM_BASE_URL": "airfrance_klm",
    "BA_BASE_URL": "british_airways",
    "FLIGHTAWARE_BASE_URL": "flightaware",
    "CIRIUM_BASE_URL": "cirium",
    "AVIATIONSTACK_BASE_URL": "aviationstack",
    "AERODATABOX_BASE_URL": "aerodatabox",
}
# Every variable load_settings reads, for documentation and for `--sandbox` merging.
ENV_VARS: tuple[str, ...] = (
    "FLIGHTSYNC_CONFIG", "FLIGHTSYNC_DATABASE_URL", "FLIGHTSYNC_STATE_DIR", "FLIGHT_SYNC_ENABLED",
    "FLIGHTSYNC_STATE_URL", "FLIGHTSYNC_STATE_PREFIX",
    "FLIGHT_SYNC_CACHE_TTL_MS", "FLIGHTSYNC_WEBHOOK_SECRET", *_CREDENTIAL_VARS, *_BASE_URL_VARS,
    "FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN",
)
# YAML paths holding file names, resolved against the YAML file's folder.
_RELATIVE_PATHS: tuple[KeyPath, ...] = (("policy",), ("state_dir",), ("metrics", "textfile"),
                                        ("server", "spool_dir"))
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def load_settings(config_path: Path | None, env: Mapping[str, str],
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings from the YAML file (``config_path``, else ``FLIGHTSYNC_CONFIG``, else none),
    then ``env``, then ``overrides`` (nested or dotted keys; ``None`` values are ignored).

    Raises ConfigError with one line naming where the bad value came from: the file, key path
    and line for YAML, the variable for the environment, the option for overrides.
    """
    if config_path is None and env.get("FLIGHTSYNC_CONFIG"):
        config_path = Path(env["FLIGHTSYNC_CONFIG"])
    node: yaml.Node | None = None
    data: dict[str, Any] = {}
    if config_path is not None:
        data, node = _read_yaml(config_path)
    origins: dict[KeyPath, str] = {}
    env_data = _environment_layer(env, origins)
    option_data = _overrides_layer(overrides or {}, origins)
    merged = _deep_merge(_deep_merge(data, env_data), option_data)

    def fail(path: KeyPath, problem: str) -> ConfigError:
        return ConfigError(_locate(path, config_path, node, origins) + problem,
                           key=_dotted(path))

    known = _known_providers()
    providers = merged.get("providers")
    if isinstance(providers, dict):
        for name in providers:
            if name not in known:
                raise fail(("providers", name),
                           f"unknown provider {name!r} (known: {', '.join(known)})")
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = tuple(first["loc"])
        raise fail(path, _problem(first, path)) from None


def value_origins(config_path: Path | None, env: Mapping[str, str],
                  overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Where each value ``load_settings`` would take from ``config_path``, ``env`` and
    ``overrides`` comes from, by dotted key (``cache.ttl_active_seconds``): ``file PATH``,
    ``environment VAR`` or ``option NAME``. A key not listed keeps its default. Read after
    ``load_settings`` has accepted the same inputs (``flightsync config show``)."""
    if config_path is None and env.get("FLIGHTSYNC_CONFIG"):
        config_path = Path(env["FLIGHTSYNC_CONFIG"])
    found: dict[str, str] = {}

    def leaves(prefix: KeyPath, value: Any, origin: str) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                leaves((*prefix, str(key)), inner, origin)
        else:
            found[_dotted(prefix)] = origin

    if config_path is not None:
        leaves((), _read_yaml(config_path)[0], f"file {config_path}")
    layered: dict[KeyPath, str] = {}
    _environment_layer(env, layered)
    _overrides_layer(overrides or {}, layered)
    for path, origin in layered.items():
        found[_dotted(path)] = (origin.replace("environment variable ", "environment ")
                                if origin.startswith("environment") else origin)
    return found


def state_dir(settings: Settings) -> Path:
    """The state directory: ``settings.state_dir``, else ``$XDG_STATE_HOME/flightsync``, else
    ``~/.local/state/flightsync``."""
    if settings.state_dir is not None:
        return settings.state_dir
    xdg = os.environ.get("XDG_STATE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "flightsync"


def database_url(settings: Settings) -> str:
    """``settings.database_url``, else SQLite in the state directory."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{state_dir(settings) / 'flightsync.db'}"


def _known_providers() -> tuple[str, ...]:
    # Third-party adapters registered through the entry-point group are valid names too.
    extra = sorted(name for name in adapter_entry_points() if name not in PROVIDER_NAMES)
    return (*PROVIDER_NAMES, *extra)


ADAPTER_ENTRY_POINT_GROUP = "flightsync.adapters"
_scanned: tuple[tuple[tuple[str, float], ...], dict[str, str]] | None = None


def adapter_entry_points() -> dict[str, str]:
    """``name -> "module:Class"`` of the ``flightsync.adapters`` entry points, scanned once
    per process and again only when ``sys.path`` or a folder on it changes (installing a
    plugin adds a ``*.dist-info`` folder there). Shared by the config check and the adapter
    registry: each scan reads every installed distribution's metadata (~5 ms)."""
    global _scanned  # noqa: PLW0603 - a process-wide memo is the point
    stamp = _path_stamp()
    if _scanned is None or _scanned[0] != stamp:
        found = entry_points(group=ADAPTER_ENTRY_POINT_GROUP)
        _scanned = (stamp, {ep.name: ep.value for ep in found})
    return dict(_scanned[1])


def _path_stamp() -> tuple[tuple[str, float], ...]:
    stamp = []
    for entry in sys.path:
        try:
            stamp.append((entry, os.stat(entry or ".").st_mtime))
        except OSError:
            stamp.append((entry, -1.0))
    return tuple(stamp)


def _read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    where = f"config file {path}"
    try:
        raw = read_at_most(path, MAX_YAML_BYTES)
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError(f"{where}: larger than {mebibytes(MAX_YAML_BYTES)}, the limit of "
                              "a config file", key=None)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: not found", key=None) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{where}: cannot be read: {reason}", key=None) from None
    try:
        node, data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}{line}: invalid YAML: {problem}", key=None) from None
    except YamlTooDeep as exc:
        raise ConfigError(f"{where}, line {exc.line}: {exc}", key=None) from None
    except ValueError:
        # PyYAML turns digits into an int unchecked; past 4300 digits Python refuses.
        raise ConfigError(f"{where}: invalid YAML: a number too long to read (over "
                          f"{sys.get_int_max_str_digits()} digits)", key=None) from None
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        top = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(f"{where}, line {top}: expected a mapping of keys at the top level, "
                          f"got {type(data).__name__}", key=None)
    _refuse_yaml_secrets(data, path, node)
    _resolve_paths(data, path.absolute().parent)
    return data, node


def _parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The composed node (for line numbers) and the data built from that same node: what
    ``yaml.compose`` then ``yaml.safe_load`` give, for one parse instead of two."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            # PyYAML composes recursively: thousands of nested [ or { exhaust the stack.
            raise YamlTooDeep(1) from None
        if node is None:
            return None, None
        check_depth(node)
        return node, loader.construct_document(node)
    finally:
        loader.dispose()


MAX_YAML_BYTES = 1024 * 1024  # config and policy files: a few KB in practice
MAX_YAML_DEPTH = 32           # the deepest real key is 4 levels down


class YamlTooDeep(ValueError):
    """A YAML document nested deeper than MAX_YAML_DEPTH (``line``: where it goes too deep)."""

    def __init__(self, line: int) -> None:
        super().__init__(f"nested more than {MAX_YAML_DEPTH} levels deep")
        self.line = line


def check_depth(root: yaml.Node) -> None:
    """Raise YamlTooDeep when ``root`` nests more than MAX_YAML_DEPTH lists or mappings (an
    explicit stack: the walk itself must not recurse)."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise YamlTooDeep(node.start_mark.line + 1)
        if id(node) in seen:  # an alias shares its node: walk it once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)


def _refuse_yaml_secrets(data: dict[str, Any], path: Path, node: yaml.Node | None) -> None:
    """Secrets live in the environment only (docs/CONTRACTS.md §4), never in a file in the repo."""
    hint = "secrets come from the environment (see docs/CONTRACTS.md §4), not the config file"
    for secret in ("webhook_secret", "flightaware_alert_token"):
        if secret in data:
            raise ConfigError(_locate((secret,), path, node, {})
                              + f"unknown key '{secret}': {hint}", key=secret)
    providers = data.get("providers")
    if isinstance(providers, dict):
        for name, body in providers.items():
            if isinstance(body, dict) and "credentials" in body:
                key_path: KeyPath = ("providers", name, "credentials")
                raise ConfigError(_locate(key_path, path, node, {})
                                  + f"unknown key 'credentials': {hint}",
                                  key=_dotted(key_path))


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    url = data.get("database_url")
    if isinstance(url, str):
        data["database_url"] = _sqlite_url_against(url, base)
    for key_path in _RELATIVE_PATHS:
        parent: Any = data
        for part in key_path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        last = key_path[-1]
        if isinstance(parent, dict) and isinstance(parent.get(last), str):
            value = Path(parent[last]).expanduser()
            parent[last] = str(value if value.is_absolute() else base / value)


def _sqlite_url_against(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file path made absolute against ``base`` (the config
    file's folder, as for its other paths): cron runs from another directory must find the
    same database. Other URLs, absolute paths and in-memory databases are returned as given."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite":
        return url
    path, query_sep, query = rest.partition("?")
    if not path or path.startswith("/") or path == ":memory:" or path.startswith("file:"):
        return url
    return f"{scheme}:///{(base / path).as_posix()}{query_sep}{query}"


def _environment_layer(env: Mapping[str, str], origins: dict[KeyPath, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def put(var: str, path: KeyPath, value: Any) -> None:
        origins[path] = f"environment variable {var}"
        target = out
        for part in path[:-1]:
            target = target.setdefault(str(part), {})
        target[str(path[-1])] = value

    def get(var: str) -> str | None:
        value = env.get(var, "")
        return value if value.strip() else None  # an empty variable counts as unset

    for var, key in (("FLIGHTSYNC_DATABASE_URL", "database_url"),
                     ("FLIGHTSYNC_STATE_DIR", "state_dir"),
                     ("FLIGHTSYNC_STATE_URL", "state_url"),
                     ("FLIGHTSYNC_STATE_PREFIX", "state_prefix"),
                     ("FLIGHTSYNC_WEBHOOK_SECRET", "webhook_secret"),
                     ("FLIGHTSYNC_FLIGHTAWARE_ALERT_TOKEN", "flightaware_alert_token")):
        if (value := get(var)) is not None:
            put(var, (key,), value)
    if (value := get("FLIGHT_SYNC_ENABLED")) is not None:
        put("FLIGHT_SYNC_ENABLED", ("enabled",), _env_bool("FLIGHT_SYNC_ENABLED", value))
    if (value := get("FLIGHT_SYNC_CACHE_TTL_MS")) is not None:
        put("FLIGHT_SYNC_CACHE_TTL_MS", ("cache", "ttl_active_seconds"),
            _env_milliseconds("FLIGHT_SYNC_CACHE_TTL_MS", value) / 1000)
    for var, provider in _BASE_URL_VARS.items():
        if (value := get(var)) is not None:
            put(var, ("providers", provider, "base_url"), value.strip())
    for var, (provider, key) in _CREDENTIAL_VARS.items():
        if (value := get(var)) is not None:
            put(var, ("providers", provider, "credentials", key), value)
    return out


def _env_bool(var: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ConfigError(f"environment variable {var}: expected true or false, got {value[:20]!r}",
                      key=var)


def _env_milliseconds(var: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"environment variable {var}: expected a positive number of "
                          f"milliseconds, got {value[:20]!r}", key=var)
    return number


def _overrides_layer(overrides: Mapping[str, Any], origins: dict[KeyPath, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(prefix: KeyPath, mapping: Mapping[str, Any]) -> None:
        for key, value in mapping.items():
            path = (*prefix, *key.split("."))
            if isinstance(value, Mapping):
                walk(path, value)
            elif value is not None:
                origins[path] = f"option {_dotted(path)}"
                target = out
                for part in path[:-1]:
                    target = target.setdefault(str(part), {})
                target[str(path[-1])] = value

    walk((), overrides)
    return out


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _locate(path: KeyPath, config_path: Path | None, node: yaml.Node | None,
            origins: Mapping[KeyPath, str]) -> str:
    """``<where>: <key>: `` for an error at ``path``, naming who set the value."""
    for end in range(len(path), 0, -1):
        if path[:end] in origins:
            return f"{origins[path[:end]]}: "
    line = _line_of(node, path)
    where = f"config file {config_path}" if config_path is not None else "settings"
    at_line = f", line {line}" if line is not None else ""
    return f"{where}{at_line}: {_dotted(path) or '<top level>'}: "


def _line_of(node: yaml.Node | None, path: KeyPath) -> int | None:
    """The 1-based line of the deepest key of ``path`` present in the composed YAML."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            # PyYAML keeps the last of duplicate keys, so the last match is the one in effect.
            matches = [(k, v) for k, v in node.value
                       if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
            if not matches:
                break
            key_node, node = matches[-1]
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _problem(error: Mapping[str, Any], path: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1])
        hint = f" (known keys: {', '.join(allowed)})" if allowed else ""
        return f"unknown key {str(path[-1])!r}{hint}"
    if kind == "missing":
        return "required key is missing"
    shown = repr(error.get("input"))
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{error['msg']}, got {shown}"


def _allowed_keys(path: KeyPath) -> list[str]:
    target: Any = Settings
    for part in path:
        target = _unwrap(target)
        origin = get_origin(target)
        if origin in (dict, tuple):  # the part is a provider name or a list index
            target = get_args(target)[-1 if origin is dict else 0]
        elif isinstance(target, type) and issubclass(target, BaseModel) \
                and isinstance(part, str) and part in target.model_fields:
            target = target.model_fields[part].annotation
        else:
            return []
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [name for name, info in target.model_fields.items() if not info.exclude]
    return []


def _unwrap(target: Any) -> Any:
    if get_origin(target) in (Union, types.UnionType):
        options = [arg for arg in get_args(target) if arg is not type(None)]
        return options[0] if len(options) == 1 else target
    return target
