"""SIGINT and SIGTERM during a run that fetches (`sync`, `batch`): the first one asks the
engine to stop (nothing more is scheduled, waits end, what has finished is written, the run's
row is closed `interrupted`) and the command prints its partial result and exits 130 within
about a second; a second one acts as it would have without us (Ctrl-C: KeyboardInterrupt,
exit 130 at the error boundary; SIGTERM: the process ends at once).

systemd stops a service with SIGTERM, so a `systemctl stop` mid-run ends as cleanly as a
Ctrl-C at a terminal.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flightsync.engine import Engine

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_stop(engine: Engine) -> Iterator[None]:
    """Route the first SIGINT or SIGTERM of the block to ``engine.interrupt()``. Handlers can
    only be set from the main thread; elsewhere (an embedding program) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    received: list[str] = []

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def first(signum: int, _frame: FrameType | None) -> None:
        # Only flags and an event here: the main thread may be inside a lock (a log write, a
        # pool submit) that anything more could need.
        restore()  # a second signal is not routed here: it stops the process at once
        received.append(signal.Signals(signum).name)
        engine.interrupt()

    for sig in SIGNALS:
        signal.signal(sig, first)
    try:
        yield
    finally:
        restore()
        if received:
            import structlog  # noqa: PLC0415 - configured by then

            structlog.get_logger("flightsync.cli").warning("run.interrupted",
                                                           signal=received[0])
