"""flightsync.engine: sync, batch and due-selection, operator views, wiring from settings."""

from flightsync.engine._engine import Engine
from flightsync.engine._input import BatchInput, read_batch
from flightsync.engine._lock import BUSY_MESSAGE, RunLockBusy, run_lock
from flightsync.engine._metrics import write_metrics
from flightsync.engine._notify import Notifier, build_notifier, message_body
from flightsync.engine._results import BatchResult
from flightsync.engine._signing import parse_secret, sign, signature_headers, verify
from flightsync.engine._spool import SpoolResult, ingest_spool, parse_headers
from flightsync.engine._webhook import InboundEvent, WebhookOutcome, read_event
from flightsync.engine._wiring import new_run_id, open_engine

__all__ = ["BUSY_MESSAGE", "BatchInput", "BatchResult", "Engine", "RunLockBusy", "new_run_id",
           "open_engine", "read_batch", "run_lock", "write_metrics"]
__all__ += [  # webhooks in and out (issue 5)
    "InboundEvent", "Notifier", "SpoolResult", "WebhookOutcome", "build_notifier",
    "ingest_spool", "message_body", "parse_headers", "parse_secret", "read_event", "sign",
    "signature_headers", "verify",
]
