"""Outbound change notifications (docs/CONTRACTS.md section 6): a signed POST per subscriber.

Deliveries run on a small thread pool so a slow or dead subscriber never slows a sync: each
delivery has a total budget (``cap_seconds``, retries included, every attempt's timeout cut to
what is left of it), and ``close`` waits for the pool no longer than the last budget ends.
Every attempt and the outcome land in ``notification_delivery``; a failure is logged and
recorded, never raised.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from flightsync.config import NotifyTarget, RetrySettings
from flightsync.engine import _signing
from flightsync.errors import (
    ConfigError,
    FlightsyncError,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from flightsync.models import SyncResult, to_json_value
from flightsync.resilience import call_with_retry
from flightsync.store import Database
from flightsync.store import repository as repo

log = structlog.get_logger(__name__)

EVENT_TYPE = "flight.changed"
CAP_SECONDS = 15.0      # one delivery's whole life, retries included
MAX_WORKERS = 4
ATTEMPTS = 3
_GRACE_SECONDS = 1.0    # for the last database write after the final attempt


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    timeout: float
    key: bytes | None     # None: send unsigned (no secret_env configured)
    problem: str | None   # why this subscriber cannot be served (its secret is unusable)

    @property
    def shown(self) -> str:
        """The URL without query or credentials, for logs (a hook URL may embed a token)."""
        parts = urlsplit(self.url)
        # The host and port (two subscribers on one host differ by port), never the userinfo.
        host = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{host}{parts.path}"


def message_body(result: SyncResult, *, run_id: str) -> dict[str, Any]:
    """The JSON of one ``flight.changed`` notification: every leg's values of the changed
    fields, each leg's version, and the highest as ``version``."""
    changed = list(result.changed_fields)
    legs = [{"leg_index": leg.leg_index, "origin": leg.origin, "version": leg.version,
             "values": {name: to_json_value(getattr(leg, name)) for name in changed
                        if hasattr(leg, name)}}
            for leg in result.legs]
    return {
        "type": EVENT_TYPE, "flight": result.query.designator,
        "date": result.query.departure_date.isoformat(), "changed_fields": changed,
        "legs": legs, "version": max((leg.version for leg in result.legs), default=0),
        "run_id": run_id,
    }


class Notifier:
    """Notifies ``targets`` of changed flights; ``close`` joins outstanding deliveries."""

    def __init__(self, targets: Sequence[NotifyTarget], database: Database,
                 env: Mapping[str, str], *, cap_seconds: float = CAP_SECONDS,
                 max_workers: int = MAX_WORKERS, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._targets = [_target(t, env) for t in targets]
        self._database = database
        self._cap = cap_seconds
        self._clock = clock
        self._client = httpx.Client(transport=transport, follow_redirects=False,
                                    headers={"User-Agent": "flightsync"})
        self._pool = ThreadPoolExecutor(max_workers=max_workers,
                                        thread_name_prefix="flightsync-notify")
        self._futures: list[Future[None]] = []
        self._deadline = 0.0
        self._lock = threading.Lock()
        self._closed = False

    def notify(self, results: Sequence[SyncResult], *, run_id: str) -> None:
        """Queue one delivery per changed flight and subscriber; returns at once."""
        if self._closed:
            return
        for result in results:
            if not result.changed_fields or not result.legs:
                continue
            body = json.dumps(message_body(result, run_id=run_id), separators=(",", ":"),
                              ensure_ascii=False).encode()
            deadline = self._clock() + self._cap
            for target in self._targets:
                future = self._pool.submit(self._deliver, target, body, result, run_id,
                                           deadline)
                with self._lock:
                    self._futures.append(future)
                    self._deadline = max(self._deadline, deadline)

    def close(self) -> None:
        """Wait for outstanding deliveries until the last one's budget ends, then stop."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            futures = list(self._futures)
        left = self._deadline - self._clock() + _GRACE_SECONDS
        _, pending = wait(futures, timeout=max(left, 0)) if futures else (set(), set())
        self._pool.shutdown(wait=False, cancel_futures=True)
        if pending:
            log.warning("notify.unfinished", deliveries=len(pending))
        else:
            self._client.close()

    # -- one delivery, on a pool thread ---------------------------------------------------
    def _deliver(self, target: _Target, body: bytes, result: SyncResult, run_id: str,
                 deadline: float) -> None:
        message_id = "msg_" + uuid.uuid4().hex
        try:
            with self._database.session() as session:
                delivery = repo.start_delivery(
                    session, message_id=message_id, url=target.url, run_id=run_id,
                    flight_id=repo.leg_id(session, repo.key_of(result.query)),
                    payload_hash=hashlib.sha256(body).hexdigest(),
                    now=datetime.now(UTC))
            self._attempts(target, message_id, body, delivery, deadline)
        except FlightsyncError as exc:  # the store itself failed: log, never raise
            log.warning("notify.record.failed", url=target.shown, error=exc.message)

    def _attempts(self, target: _Target, message_id: str, body: bytes, delivery: int,
                  deadline: float) -> None:
        attempts = 0

        def note(status: str, code: int | None, error: str | None) -> None:
            with self._database.session() as session:
                repo.note_delivery(session, delivery, attempts=attempts, status=status,
                                   status_code=code, error=error,
                                   delivered_at=datetime.now(UTC) if status == "delivered"
                                   else None)

        def attempt() -> int:
            nonlocal attempts
            left = deadline - self._clock()
            if left <= 0:
                raise ProviderTimeout("delivery budget used up", provider="subscriber")
            attempts += 1
            code, error = self._post(target, message_id, body, timeout=min(target.timeout,
                                                                            left))
            note("pending", code, error.message if error else None)
            if error is not None:
                raise error
            assert code is not None
            return code

        if target.problem is not None:
            note("failed", None, target.problem)
            log.warning("notify.failed", url=target.shown, reason=target.problem)
            return
        budget = max(deadline - self._clock(), 0.001)
        retry = RetrySettings(attempts=ATTEMPTS, backoff_initial_seconds=0.5,
                              backoff_max_seconds=4, budget_seconds=budget)
        try:
            code = call_with_retry(attempt, retry, provider="subscriber")
        except ProviderError as exc:
            note("failed", exc.status, exc.message)
            log.warning("notify.failed", url=target.shown, attempts=attempts, error=exc.code,
                        status=exc.status)
            return
        note("delivered", code, None)
        log.info("notify.delivered", url=target.shown, attempts=attempts, status=code)

    def _post(self, target: _Target, message_id: str, body: bytes,
              timeout: float) -> tuple[int | None, ProviderError | None]:
        """One signed POST; (status code, error to raise or None)."""
        stamp = int(time.time())  # signed afresh per attempt: a retry is not a stale message
        headers = (_signing.signature_headers(target.key, message_id, stamp, body)
                   if target.key is not None else
                   {_signing.ID_HEADER: message_id, _signing.TIMESTAMP_HEADER: str(stamp)})
        headers["Content-Type"] = "application/json"
        label = "subscriber"
        try:
            response = self._client.post(target.url, content=body, headers=headers,
                                         timeout=timeout)
        except httpx.TimeoutException:
            return None, ProviderTimeout(f"{target.shown}: no answer within {timeout:.1f} s",
                                         provider=label)
        except httpx.HTTPError as exc:
            return None, ProviderUnavailable(f"{target.shown}: {type(exc).__name__}",
                                             provider=label)
        code = response.status_code
        if 200 <= code < 300:
            return code, None
        message = f"{target.shown}: HTTP {code}"
        if code == 429:
            return code, ProviderRateLimited(message, provider=label, retry_after=None)
        if code >= 500 or code == 408:
            return code, ProviderUnavailable(message, provider=label, status=code)
        return code, ProviderBadResponse(message, provider=label, status=code)


def _target(target: NotifyTarget, env: Mapping[str, str]) -> _Target:
    key: bytes | None = None
    problem: str | None = None
    if target.secret_env:
        value = env.get(target.secret_env, "")
        if not value.strip():
            problem = f"secret_env {target.secret_env} is not set: not sending unsigned"
        else:
            try:
                key = _signing.parse_secret(value, where=f"environment variable "
                                            f"{target.secret_env}")
            except ConfigError as exc:
                problem = exc.message
    return _Target(url=target.url, timeout=target.timeout_seconds, key=key, problem=problem)


def build_notifier(targets: Sequence[NotifyTarget], database: Database,
                   env: Mapping[str, str]) -> Notifier | None:
    """A Notifier when any subscriber is configured, else None (the engine skips notifying)."""
    return Notifier(targets, database, env) if targets else None
