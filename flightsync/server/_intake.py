"""What the server does with one accepted body: apply it now, or spool it (README, "Webhook
server", "An acknowledged event is never lost").

- The database answers: the event is applied and committed (or recognised as a duplicate)
  before the answer, 200.
- The database does not answer within ``server.lock_wait_seconds`` (SQLite locked by another
  process, PostgreSQL unreachable): the event is checked as far as it can be without the
  database (signature, schema; a FlightAware delivery's shape), written to the spool and
  fsynced, then 202. While the spool holds events, new ones are spooled behind them, so that
  they are applied in arrival order; a background thread drains the spool (oldest first) as
  soon as the database is back.

Calls come from the ASGI server's worker threads. On SQLite the writes of this process take
turns (one at a time), so that they never wait on each other's lock and only another process
can make one wait; on PostgreSQL they run side by side.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.engine._fa_intake import Ignored, check_delivery, ingest_delivery
from flightsync.engine._inbound import read_event
from flightsync.engine._spool import FLIGHTAWARE, FORMAT_HEADER, ingest_spool, pending, write_event
from flightsync.engine._webhook import ingest
from flightsync.errors import SchemaBehindError, SpoolBusyError, StoreError, first_line
from flightsync.providers import registry

if TYPE_CHECKING:
    from flightsync.engine import Engine

log = structlog.get_logger(__name__)

DRAIN_RETRY_SECONDS = 0.5  # how often a drain is retried while the database stays away
_KEPT_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


class Intake:
    """The server's one path to the database for pushed events, and the spool's drainer."""

    def __init__(self, engine: Engine, spool: Path, *, concurrent_writes: int,
                 slot_wait_seconds: float) -> None:
        self.engine = engine
        self.spool = spool
        self._slots = threading.BoundedSemaphore(concurrent_writes)
        self._slot_wait = slot_wait_seconds
        self._lock = threading.Lock()  # guards _backlog and the decision to spool
        self._backlog = pending(spool) > 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the two formats -----------------------------------------------------------------
    def flightsync_event(self, body: bytes, headers: Mapping[str, str]) -> Answer:
        """A Standard Webhooks event; WebhookError (the caller's 4xx) when it is refused."""
        received = datetime.now(UTC)
        if not self._backlog:
            try:
                with self._slot():
                    outcome = ingest(self.engine, body, headers, insecure=False, notify=True,
                                     received=received, record_run=False)
                return Answer(200, outcome.to_json())
            except SchemaBehindError:
                raise
            except (StoreError, _SlotTimeout) as exc:
                log.warning("server.store_unavailable", error=_first(exc))
        # Checked as far as the database is not needed: a forged or malformed event is
        # refused now, not spooled.
        webhooks = self.engine.settings.webhooks
        event = read_event(body, headers, secret=self.engine.settings.webhook_secret,
                           tolerance_seconds=webhooks.tolerance_seconds,
                           max_bytes=webhooks.max_bytes, insecure=False,
                           known_providers=registry.names(), now=received)
        kept = {k: v for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
        self._spool_it(body, kept)
        return Answer(202, {"event_id": event.event_id, "status": "spooled"})

    def flightaware_delivery(self, body: bytes) -> Answer:
        """A FlightAware alert delivery; WebhookError when it is not one."""
        if not self._backlog:
            try:
                with self._slot():
                    done = ingest_delivery(self.engine, body, notify=True, record_run=False)
                return Answer(200, done.to_json())
            except SchemaBehindError:
                raise
            except (StoreError, _SlotTimeout) as exc:
                log.warning("server.store_unavailable", error=_first(exc))
        delivery = check_delivery(body)
        self._spool_it(body, {FORMAT_HEADER: FLIGHTAWARE})
        return Answer(202, {"status": "spooled", "event_code": delivery.event_code,
                            "alert_id": delivery.alert_id})

    def _spool_it(self, body: bytes, headers: Mapping[str, str]) -> None:
        with self._lock:
            write_event(self.spool, body, headers)
            self._backlog = True
        self._wake.set()
        log.info("server.spooled", spool=str(self.spool))

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._slot_wait):
            raise _SlotTimeout("every database slot stayed busy")
        try:
            yield
        finally:
            self._slots.release()

    # -- the drainer ---------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        return pending(self.spool)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flightsync-spool-drain",
                                        daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(DRAIN_RETRY_SECONDS * 4)
            self._wake.clear()
            while not self._stop.is_set() and not self.drain_once():
                self._stop.wait(DRAIN_RETRY_SECONDS)

    def drain_once(self) -> bool:
        """Apply what the spool holds; True when it is empty afterwards (or another process
        drains it), False when the database is still away."""
        if pending(self.spool) == 0:
            with self._lock:
                if pending(self.spool) == 0:
                    self._backlog = False
                    return True
        try:
            with self._slot():
                # Under the spool's drain lock, not waited for: held, another worker
                # process (or an `ingest-webhook --spool` run) is draining it.
                result = ingest_spool(self.engine, self.spool, insecure=False, notify=True,
                                      record_run=False, wait_seconds=None)
        except SpoolBusyError:
            return True  # another drainer has it
        except (StoreError, _SlotTimeout) as exc:
            log.info("server.drain.waiting", error=_first(exc))
            return False
        except Exception as exc:  # the drainer must outlive any one bug
            log.warning("server.drain.failed", error_type=type(exc).__name__,
                        error=_first(exc))
            return False
        if result.entries:
            summary = result.to_json()["summary"]
            log.info("server.drained", **summary)
        with self._lock:
            if pending(self.spool) == 0:
                self._backlog = False
                return True
        return False


class _SlotTimeout(Exception):
    pass


def _first(exc: BaseException) -> str:
    return first_line(exc) or type(exc).__name__


__all__ = ["Answer", "Ignored", "Intake"]
