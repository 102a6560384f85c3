"""The one exception tree of flightsync.

Every error the package raises on purpose derives from :class:`FlightsyncError`; the CLI
translates them into the exit codes of docs/CONTRACTS.md section 2 in exactly one place.

    FlightsyncError                      exit 70 unless a subclass says otherwise
    ├── ConfigError                      2   bad config file, policy, environment
    ├── InputError                       2   bad flight number, date, batch file, payload
    ├── ProviderError                    (caught by the engine; a flight fails with exit 1)
    │   ├── ProviderTimeout
    │   ├── ProviderUnavailable          connection refused, 5xx
    │   ├── ProviderAuthError            bad credentials, token refused: not a breaker
    │   │                                failure; a run failing only on it exits 2
    │   ├── ProviderBadResponse          unparseable or schema-violating body
    │   ├── ProviderRequestRejected      4xx other than 401/403/404/429: not retried, not
    │   │                                a provider failure (the request was at fault)
    │   ├── ProviderRateLimited          429, carries retry_after (seconds or None)
    │   ├── ProviderQuotaExhausted       quota gone (Amadeus 38195): not retryable
    │   └── FlightNotFound               404 / empty result: not a provider failure
    ├── CircuitOpenError                 provider skipped because its breaker is open
    ├── QuotaSkipped                     provider skipped: a limit, budget or its quota is
    │                                    spent (outcome quota_exhausted): not a failure
    ├── NoProviderError                  2   no usable provider configured
    ├── StoreError                       5   database unreachable, state dir not writable
    │   ├── SchemaBehindError            4   run `flightsync migrate`
    │   ├── ConcurrentUpdateError            optimistic version check lost
    │   └── SpoolBusyError               5   another drainer held the spool past the wait
    ├── WebhookError                     2
    │   ├── WebhookSignatureError
    │   ├── WebhookPayloadError          (a replayed event is an outcome, "duplicate", exit 0)
    │   └── WebhookIdReusedError         an applied event's id sent again with another body
    └── Interrupted                      130 SIGINT or SIGTERM stopped the run
"""

from __future__ import annotations


class FlightsyncError(Exception):
    """Base of every deliberate flightsync error."""

    exit_code: int = 70
    code: str = "internal_error"

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class ConfigError(FlightsyncError):
    """A configuration or policy file, or an environment variable, is invalid."""

    exit_code = 2
    code = "invalid_config"


class InputError(FlightsyncError):
    """User input (flight designator, date, batch file, payload) is invalid."""

    exit_code = 2
    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, **context: object) -> None:
        super().__init__(message, **context)
        if code is not None:
            self.code = code


class ProviderError(FlightsyncError):
    """A provider call failed. ``retryable`` and ``counts_for_breaker`` drive resilience."""

    exit_code = 1
    code = "provider_error"
    retryable: bool = False
    counts_for_breaker: bool = True

    def __init__(self, message: str, *, provider: str, status: int | None = None,
                 **context: object) -> None:
        super().__init__(message, provider=provider, status=status, **context)
        self.provider = provider
        self.status = status


class ProviderTimeout(ProviderError):
    code = "provider_timeout"
    retryable = True


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    retryable = True


class ProviderAuthError(ProviderError):
    """401/403, or a token endpoint refusing the client credentials: a configuration problem
    (wrong or revoked secret), not an outage, so the breaker does not count it; a run no
    provider could answer for this reason alone exits 2 (README, "Exit codes")."""

    code = "provider_auth"
    counts_for_breaker = False


class ProviderBadResponse(ProviderError):
    code = "provider_bad_response"


class ProviderRequestRejected(ProviderError):
    """The provider refused this request (400, 405, 409, 422 ...): asking again cannot help,
    and the provider is up, so its breaker does not count it (docs/CONTRACTS.md section 7)."""

    code = "provider_rejected_request"
    counts_for_breaker = False


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    retryable = True

    def __init__(self, message: str, *, provider: str, retry_after: float | None = None,
                 status: int | None = 429, **context: object) -> None:
        super().__init__(message, provider=provider, status=status, retry_after=retry_after,
                         **context)
        self.retry_after = retry_after


class ProviderQuotaExhausted(ProviderError):
    code = "provider_quota_exhausted"


class FlightNotFound(ProviderError):
    """The provider answered and knows no such flight: not held against the provider."""

    code = "flight_not_found"
    counts_for_breaker = False


class QuotaSkipped(FlightsyncError):
    """A provider call not made because one of its limits, its budget or its own quota is
    spent. Its per-source outcome is ``quota_exhausted`` (the provider's own answer that
    its quota is spent is the error ``provider_quota_exhausted``): not a failure, not held
    against the provider's breaker."""

    exit_code = 1
    code = "quota_exhausted"

    def __init__(self, message: str, *, provider: str | None = None,
                 reason: str = "rate_limit") -> None:
        super().__init__(message, provider=provider, reason=reason)
        self.provider = provider
        self.reason = reason  # rate_limit, budget_day, budget_month or provider_quota


class CircuitOpenError(FlightsyncError):
    exit_code = 1
    code = "circuit_open"

    def __init__(self, message: str, *, provider: str, **context: object) -> None:
        super().__init__(message, provider=provider, **context)
        self.provider = provider


class NoProviderError(FlightsyncError):
    exit_code = 2
    code = "no_provider"


class StoreError(FlightsyncError):
    exit_code = 5
    code = "store_unavailable"


class SchemaBehindError(StoreError):
    exit_code = 4
    code = "schema_behind"


class ConcurrentUpdateError(StoreError):
    exit_code = 70
    code = "concurrent_update"


class SpoolBusyError(StoreError):
    """Another process (`flightsync serve`, another `ingest-webhook --spool`) held the spool's
    drain lock for longer than the run would wait: nothing was applied."""

    code = "spool_busy"


class WebhookError(FlightsyncError):
    exit_code = 2
    code = "invalid_webhook"


class WebhookSignatureError(WebhookError):
    code = "invalid_signature"


class WebhookPayloadError(WebhookError):
    code = "invalid_payload"


class WebhookIdReusedError(WebhookError):
    """The event id was applied before with a different body: not a replay of that event
    (that would be a duplicate), and not applied either, since the id is taken."""

    code = "webhook_id_reused"


class Interrupted(FlightsyncError):
    """The run was stopped by SIGINT or SIGTERM: what had finished is written, the rest is
    reported with this code (exit 130, as a shell reports a Ctrl-C)."""

    exit_code = 130
    code = "interrupted"


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of ``exc``'s text, at most ``limit`` characters ("" for none): what a
    log field or a one-line error shows of an exception whose text may run to a traceback or
    a statement."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else ""
