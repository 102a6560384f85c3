"""Debug lines for every provider request (`-vv`): method, URL without secrets, status, time.

httpx event hooks on each provider's client, so every adapter and the OAuth token requests
are traced alike. A query parameter with a secret-looking name (AviationStack-style
``access_key``) shows ``***``; the log pipeline masks every configured credential as well.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger(__name__)

_SECRET_PARAM = re.compile(r"(key|secret|token|password|app_?id|signature)", re.IGNORECASE)
_STARTED = "flightsync_started"


def trace_hooks(provider: str) -> dict[str, list[Any]]:
    """``event_hooks`` for an ``httpx.Client`` that logs each exchange at debug level."""

    def on_request(request: httpx.Request) -> None:
        request.extensions[_STARTED] = time.monotonic()

    def on_response(response: httpx.Response) -> None:
        request = response.request
        started = request.extensions.get(_STARTED)
        ms = round((time.monotonic() - started) * 1000) if started is not None else None
        log.debug("http.request", provider=provider, method=request.method,
                  url=public_url(request.url), status=response.status_code, ms=ms)

    return {"request": [on_request], "response": [on_response]}


def public_url(url: httpx.URL) -> str:
    """``url`` without credentials: user info dropped, secret-looking parameters masked."""
    params = [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in url.params.multi_items()]
    clean = url.copy_with(username=None, password=None, query=None)
    if not params:
        return str(clean)
    from urllib.parse import urlencode  # noqa: PLC0415

    return f"{clean}?{urlencode(params, safe='*:,')}"
