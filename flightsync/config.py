"""Settings in one place: YAML file < environment < command-line options (DESIGN.md section 4).

Validated into frozen pydantic models that refuse unknown keys. ``load_settings`` is the only
entry point; it raises ConfigError naming the file, the key and the line.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacheSettings(_Frozen):
    ttl_active_seconds: float = Field(default=900, gt=0)
    ttl_future_seconds: float = Field(default=3600, gt=0)
    ttl_arrived_seconds: float = Field(default=86400, gt=0)


class BreakerSettings(_Frozen):
    failure_threshold: int = Field(default=2, ge=1)
    reset_timeout_seconds: float = Field(default=30, gt=0)


class RetrySettings(_Frozen):
    attempts: int = Field(default=3, ge=1)
    backoff_initial_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=8, ge=0)
    budget_seconds: float = Field(default=30, gt=0)  # total time for one call, retries included


class HttpSettings(_Frozen):
    timeout_seconds: float = Field(default=10, gt=0)
    max_workers: int = Field(default=16, ge=1, le=256)


class BatchSettings(_Frozen):
    size: int = Field(default=100, ge=1)
    max_requests: int = Field(default=1000, ge=1)
    lease_seconds: float = Field(default=600, gt=0)


class ProviderSettings(_Frozen):
    """One provider's settings. Secrets never live here in YAML: they come from the environment
    (DESIGN.md section 4) and are carried in ``credentials``, which is excluded from repr."""

    enabled: bool = True
    base_url: str | None = None
    priority: int | None = None
    carriers: tuple[str, ...] | None = None   # None: the adapter's own default coverage
    rate_limit_per_second: float | None = Field(default=None, gt=0)
    credentials: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)


class NotifyTarget(_Frozen):
    url: str
    secret_env: str | None = None
    timeout_seconds: float = Field(default=5, gt=0)


class WebhookSettings(_Frozen):
    tolerance_seconds: float = Field(default=300, gt=0)
    max_bytes: int = Field(default=65536, gt=0)


class MetricsSettings(_Frozen):
    textfile: Path | None = None


class AlertSettings(_Frozen):
    breaker_open_seconds: float = 300
    batch_success_rate_min: float = 0.9
    cache_hit_rate_min: float = 0.5
    open_conflicts_max: int = 100
    unsynced_departing_hours: float = 24
    unsynced_for_seconds: float = 3600


class Settings(_Frozen):
    database_url: str | None = None   # None: sqlite:///<state_dir>/flightsync.db
    state_dir: Path | None = None     # None: $XDG_STATE_HOME/flightsync
    policy: Path | None = None        # None: the built-in default policy
    enabled: bool = True              # FLIGHT_SYNC_ENABLED
    cache: CacheSettings = CacheSettings()
    breaker: BreakerSettings = BreakerSettings()
    retry: RetrySettings = RetrySettings()
    http: HttpSettings = HttpSettings()
    batch: BatchSettings = BatchSettings()
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    notify: tuple[NotifyTarget, ...] = ()
    webhooks: WebhookSettings = WebhookSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    webhook_secret: str | None = Field(default=None, repr=False, exclude=True)
