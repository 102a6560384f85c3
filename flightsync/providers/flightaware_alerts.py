"""FlightAware AeroAPI v4 alert management (docs/PROVIDERS.md section 6.1.1), with the same
client, ``x-apikey`` header and deadline transport as :class:`FlightAwareAdapter`.

- ``PUT /alerts/endpoint`` ``{"url": …}``: the account-wide delivery URL (204).
- ``POST /alerts`` with the alert configuration: 201, the new alert's URL in ``Location``
  (``/alerts/{id}``); every event boolean is sent explicitly (AeroAPI 4.30 requires them).
- ``GET /alerts``: ``{"alerts": [...], "links": {"next": …} | null, "num_pages": n}``.
- ``DELETE /alerts/{id}``: 204; a 404 means the alert is gone already.

Errors map through ``providers/_http.py`` as for a flight lookup; a 400 carries AeroAPI's own
``detail`` in the message. The delivery URL holds a secret token: it is never logged, and
:func:`mask_url` is how it is shown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import structlog

from flightsync.config import FLIGHTAWARE_ALERT_EVENTS
from flightsync.errors import ProviderBadResponse, ProviderRequestRejected
from flightsync.providers._http import json_body, mapped_transport_errors, raise_for_status

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger(__name__)

_NAME = "flightaware"
WEBHOOK_PATH = "/webhooks/flightaware/"
_MAX_PAGES = 50  # GET /alerts pages followed; an account with more is not ours to list whole


def target_url(public_url: str, token: str) -> str:
    """The URL AeroAPI delivers to: ``<public_url>/webhooks/flightaware/<token>``."""
    return f"{public_url.rstrip('/')}{WEBHOOK_PATH}{token}"


def mask_url(url: str | None) -> str | None:
    """``url`` with the token after ``/webhooks/flightaware/`` (or any path, for a URL that
    is not ours) shown as ``***``: what `alerts list` prints."""
    if not url:
        return url
    head, found, _ = url.partition(WEBHOOK_PATH)
    if found:
        return f"{head}{WEBHOOK_PATH}***"
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}/***" if sep else "***"


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """One alert to create: a flight's ident on its local departure date."""

    ident: str
    day: date
    events: tuple[str, ...]
    target_url: str
    description: str | None = None

    def body(self) -> dict[str, Any]:
        # start = end = the flight's date, in its departure airport's time zone (AeroAPI's
        # rule), so a daily flight's next day is not alerted (each delivery costs money).
        body: dict[str, Any] = {
            "ident": self.ident, "start": self.day.isoformat(), "end": self.day.isoformat(),
            "events": {name: name in self.events for name in FLIGHTAWARE_ALERT_EVENTS},
            "target_url": self.target_url}
        if self.description:
            body["description"] = self.description
        return body


@dataclass(frozen=True, slots=True)
class RemoteAlert:
    """An alert as ``GET /alerts`` lists it (the fields flightsync reads)."""

    alert_id: int
    ident: str | None
    start: str | None
    end: str | None
    events: tuple[str, ...]
    target_url: str | None
    enabled: bool


class AlertClient:
    """AeroAPI's alert endpoints over a ready client (the flightaware provider's)."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self._client = client
        self._headers = {"x-apikey": api_key, "Accept": "application/json"}

    def set_endpoint(self, url: str) -> None:
        """``PUT /alerts/endpoint``: the account-wide delivery URL."""
        self._send("PUT", "/alerts/endpoint", {"url": url})

    def create(self, spec: AlertSpec) -> int:
        """``POST /alerts``; the new alert's id, read from ``Location``."""
        response = self._send("POST", "/alerts", spec.body())
        location = response.headers.get("location", "")
        tail = location.rstrip("/").rsplit("/", 1)[-1]
        if not tail.isdigit():
            raise ProviderBadResponse(f"{_NAME}: alert created without an id in Location",
                                      provider=_NAME, status=response.status_code)
        return int(tail)

    def list(self) -> list[RemoteAlert]:
        """``GET /alerts``, every page (at most ``_MAX_PAGES``)."""
        alerts: list[RemoteAlert] = []
        path: str | None = "/alerts"
        for _ in range(_MAX_PAGES):
            if path is None:
                break
            response = self._send("GET", path, None)
            body = json_body(response, _NAME)
            if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
                raise ProviderBadResponse(f"{_NAME}: alert list has no alerts array",
                                          provider=_NAME)
            alerts.extend(_remote(item) for item in body["alerts"])
            links = body.get("links")
            following = links.get("next") if isinstance(links, dict) else None
            path = following if isinstance(following, str) and following else None
        return alerts

    def delete(self, alert_id: int) -> bool:
        """``DELETE /alerts/{id}``; False when AeroAPI no longer knows the alert (404)."""
        response = self._send("DELETE", f"/alerts/{int(alert_id)}", None, missing_ok=True)
        return response.status_code != 404

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None, *,
              missing_ok: bool = False) -> httpx.Response:
        headers = dict(self._headers)
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json; charset=UTF-8"
            content = json.dumps(body).encode()
        with mapped_transport_errors(_NAME):
            response = self._client.request(method, path.removeprefix("/aeroapi")
                                            if path.startswith("/aeroapi/") else path,
                                            headers=headers, content=content)
        status = response.status_code
        log.info("provider.alerts.request", provider=_NAME, method=method,
                 path=path.split("?", 1)[0], status=status)
        if missing_ok and status == 404:
            return response
        if status == 400:
            raise ProviderRequestRejected(
                f"{_NAME}: request rejected (400): {_detail(response)}", provider=_NAME,
                status=status)
        raise_for_status(response, _NAME)
        return response


def _detail(response: httpx.Response) -> str:
    """AeroAPI's error body (``title``, ``reason``, ``detail``) in one line."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("reason", "detail") if body.get(k)]
        if parts:
            return ": ".join(parts)[:300]
    return response.text[:200].replace("\n", " ") or "no detail"


def _remote(item: Any) -> RemoteAlert:
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        raise ProviderBadResponse(f"{_NAME}: an alert without a numeric id", provider=_NAME)
    events = item.get("events")
    chosen: Iterable[str] = (name for name, on in events.items() if on is True) if isinstance(
        events, dict) else ()
    text = {k: item.get(k) if isinstance(item.get(k), str) else None
            for k in ("ident", "start", "end", "target_url")}
    return RemoteAlert(alert_id=item["id"], ident=text["ident"], start=text["start"],
                       end=text["end"], events=tuple(chosen), target_url=text["target_url"],
                       enabled=item.get("enabled") is not False)


__all__ = ["WEBHOOK_PATH", "AlertClient", "AlertSpec", "RemoteAlert", "mask_url", "target_url"]
