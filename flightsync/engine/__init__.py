"""flightsync.engine: sync, batch and due-selection, operator views, wiring from settings.

The names below load on first use (PEP 562): importing the package, or one of its light
modules such as the cached-sync fast path (``_fast``), must not pull in the store
(SQLAlchemy, ~0.4 s) that most of them need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flightsync._lazy import lazy_exports

if TYPE_CHECKING:
    from flightsync.engine._engine import Engine
    from flightsync.engine._fast import sync_from_cache
    from flightsync.engine._flights import day_for
    from flightsync.engine._horizon import RELATIVE_DAYS, refuse_far_future
    from flightsync.engine._inbound import InboundEvent, read_event
    from flightsync.engine._input import BatchInput, read_batch
    from flightsync.engine._lock import BUSY_MESSAGE, RunLockBusy, run_lock
    from flightsync.engine._metrics import write_metrics
    from flightsync.engine._notify import Notifier, build_notifier, message_body
    from flightsync.engine._results import BatchResult
    from flightsync.engine._signing import parse_secret, sign, signature_headers, verify
    from flightsync.engine._spool import SpoolResult, ingest_spool, parse_headers
    from flightsync.engine._webhook import WebhookOutcome
    from flightsync.engine._wiring import new_run_id, open_engine

_HOMES: dict[str, str] = {
    "Engine": "_engine", "sync_from_cache": "_fast", "BatchInput": "_input",
    "read_batch": "_input", "BUSY_MESSAGE": "_lock", "RunLockBusy": "_lock",
    "run_lock": "_lock", "write_metrics": "_metrics", "Notifier": "_notify",
    "build_notifier": "_notify", "message_body": "_notify", "BatchResult": "_results",
    "parse_secret": "_signing", "sign": "_signing", "signature_headers": "_signing",
    "verify": "_signing", "SpoolResult": "_spool", "ingest_spool": "_spool",
    "parse_headers": "_spool", "InboundEvent": "_inbound", "WebhookOutcome": "_webhook",
    "read_event": "_inbound", "new_run_id": "_wiring", "open_engine": "_wiring",
    "day_for": "_flights", "RELATIVE_DAYS": "_horizon", "refuse_far_future": "_horizon",
}

__all__ = ["BUSY_MESSAGE", "BatchInput", "BatchResult", "Engine", "RunLockBusy", "new_run_id",
           "open_engine", "read_batch", "run_lock", "sync_from_cache", "write_metrics"]
__all__ += [  # webhooks in and out (issue 5)
    "InboundEvent", "Notifier", "SpoolResult", "WebhookOutcome", "build_notifier",
    "ingest_spool", "message_body", "parse_headers", "parse_secret", "read_event", "sign",
    "signature_headers", "verify",
]
__all__ += ["RELATIVE_DAYS", "day_for", "refuse_far_future"]  # flights (issue 20)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _HOMES)
