"""The CLI's one way to an Engine: settings loaded once, the run id shared with the logs.

Tests replace :func:`open_engine` here to make a command meet a given error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from flightsync.cli._startup import resume_collector
from flightsync.cli._state import AppState

if TYPE_CHECKING:
    from flightsync.config import Settings
    from flightsync.engine import Engine


@contextmanager
def open_engine(settings: Settings, *, run_kind: str, run_id: str) -> Iterator[Engine]:
    from flightsync.engine import open_engine as _open  # noqa: PLC0415 - keeps --help fast

    with _open(settings, run_kind=run_kind, run_id=run_id) as engine:
        yield engine


@contextmanager
def engine_for(ctx: typer.Context, state: AppState, run_kind: str) -> Iterator[Engine]:
    """The engine for this invocation's settings (``run_kind`` names the run in the store)."""
    with open_engine(state.settings(ctx), run_kind=run_kind, run_id=state.run_id) as engine:
        resume_collector()  # the command's real work begins here
        yield engine
