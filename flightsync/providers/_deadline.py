"""The deadline of the current provider call: an absolute ``time.monotonic()`` instant held in
a context variable, so the thread making the call carries it down to every socket operation
(see :mod:`flightsync.providers._transport`, which enforces it) without any adapter passing it.

The engine opens one around each whole provider call, retries and token request included;
a request made outside any gets one of its own from the transport. Importing this module
costs nothing: httpx loads only with the transport.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("flightsync_provider_deadline", default=None)


@contextmanager
def provider_deadline(at: float | None) -> Iterator[None]:
    """Every provider exchange in the block ends by ``at`` (``time.monotonic()``); an outer
    deadline that comes sooner still holds. None leaves the current one."""
    current = _DEADLINE.get()
    if at is not None and current is not None:
        at = min(at, current)
    token = _DEADLINE.set(at if at is not None else current)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The current deadline (``time.monotonic()``), None outside any."""
    return _DEADLINE.get()


def seconds_left() -> float | None:
    """What is left of the current deadline (negative once passed), None without one."""
    at = _DEADLINE.get()
    return None if at is None else at - time.monotonic()
