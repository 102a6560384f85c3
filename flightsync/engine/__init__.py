"""flightsync.engine: sync, batch and due-selection, operator views, wiring from settings."""

from flightsync.engine._engine import Engine
from flightsync.engine._input import BatchInput, read_batch
from flightsync.engine._results import BatchResult
from flightsync.engine._wiring import new_run_id, open_engine

__all__ = ["BatchInput", "BatchResult", "Engine", "new_run_id", "open_engine", "read_batch"]
