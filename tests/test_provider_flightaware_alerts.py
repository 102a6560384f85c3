"""FlightAware AeroAPI alert management: each request sent (method, path, body, x-apikey) and
each error AeroAPI answers, mapped as for a flight lookup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from pytest_httpx import HTTPXMock

from flightsync.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from flightsync.providers.flightaware_alerts import (
    AlertClient,
    AlertSpec,
    mask_url,
    target_url,
)

BASE = "https://aeroapi.flightaware.com/aeroapi"
KEY = "fa-alert-key-789"
URL = "https://flights.example.com/webhooks/flightaware/tok_0123456789abcdef"
EVENTS = ("arrival", "cancelled", "departure", "diverted", "filed", "out", "off", "on", "in",
          "hold_start", "hold_end")


@pytest.fixture
def alerts() -> Iterator[AlertClient]:
    with httpx.Client(base_url=BASE, timeout=5) as client:
        yield AlertClient(client, KEY)


def _only_request(httpx_mock: HTTPXMock) -> httpx.Request:
    requests = httpx_mock.get_requests()
    assert len(requests) == 1
    assert requests[0].headers["x-apikey"] == KEY
    return requests[0]


def test_create_posts_the_alert_and_reads_its_id_from_location(
        alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """POST /aeroapi/alerts with ident, start = end = the flight's date, every event boolean
    (the chosen ones true) and target_url; the id is the tail of the Location header."""
    httpx_mock.add_response(method="POST", url=f"{BASE}/alerts", status_code=201,
                            headers={"Location": "/alerts/4242"})
    alert_id = alerts.create(AlertSpec(ident="LH400", day=date(2026, 12, 6),
                                       events=("arrival", "departure"), target_url=URL))
    assert alert_id == 4242
    request = _only_request(httpx_mock)
    assert request.method == "POST"
    assert request.url.path == "/aeroapi/alerts"
    assert request.headers["content-type"].startswith("application/json")
    body = json.loads(request.content)
    assert body["ident"] == "LH400"
    assert body["start"] == body["end"] == "2026-12-06"
    assert body["target_url"] == URL
    assert body["events"] == {name: name in ("arrival", "departure") for name in EVENTS}


def test_set_endpoint_puts_the_url(alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """PUT /aeroapi/alerts/endpoint with {"url": ...}; AeroAPI answers 204."""
    httpx_mock.add_response(method="PUT", url=f"{BASE}/alerts/endpoint", status_code=204)
    alerts.set_endpoint(URL)
    request = _only_request(httpx_mock)
    assert request.method == "PUT"
    assert json.loads(request.content) == {"url": URL}


def test_list_reads_every_page(alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """GET /aeroapi/alerts follows links.next; each alert's id, ident, dates, chosen events,
    target_url and enabled flag are read."""
    first = {"alerts": [{"id": 1, "ident": "LH400", "start": "2026-12-06", "end": "2026-12-06",
                         "events": {"arrival": True, "departure": False},
                         "target_url": URL, "enabled": True}],
             "links": {"next": "/alerts?cursor=abc"}, "num_pages": 1}
    second = {"alerts": [{"id": 2, "ident": "BA117", "start": None, "end": None,
                          "events": {}, "target_url": None, "enabled": False}],
              "links": None, "num_pages": 1}
    httpx_mock.add_response(method="GET", url=f"{BASE}/alerts", json=first)
    httpx_mock.add_response(method="GET", url=f"{BASE}/alerts?cursor=abc", json=second)
    listed = alerts.list()
    assert [(a.alert_id, a.ident, a.start, a.events, a.target_url, a.enabled)
            for a in listed] == [(1, "LH400", "2026-12-06", ("arrival",), URL, True),
                                 (2, "BA117", None, (), None, False)]
    assert [r.url.path for r in httpx_mock.get_requests()] == ["/aeroapi/alerts"] * 2


def test_delete_sends_delete_and_treats_404_as_gone(
        alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """DELETE /aeroapi/alerts/{id}: 204 is True (deleted), 404 False (AeroAPI no longer knows
    it), neither an error."""
    httpx_mock.add_response(method="DELETE", url=f"{BASE}/alerts/7", status_code=204)
    httpx_mock.add_response(method="DELETE", url=f"{BASE}/alerts/8", status_code=404,
                            json={"title": "Not found", "reason": "NOT_FOUND",
                                  "detail": "no alert", "status": 404})
    assert alerts.delete(7) is True
    assert alerts.delete(8) is False
    assert [(r.method, r.url.path, r.headers["x-apikey"]) for r in httpx_mock.get_requests()
            ] == [("DELETE", "/aeroapi/alerts/7", KEY), ("DELETE", "/aeroapi/alerts/8", KEY)]


def test_400_carries_aeroapis_detail(alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """A 400 is a refused request (not retried), its message AeroAPI's reason and detail."""
    httpx_mock.add_response(method="POST", status_code=400, json={
        "title": "Invalid argument", "reason": "INVALID_ARGUMENT",
        "detail": "start cannot be before current day", "status": 400})
    with pytest.raises(ProviderRequestRejected) as raised:
        alerts.create(AlertSpec(ident="LH400", day=date(2020, 1, 1), events=("arrival",),
                                target_url=URL))
    assert raised.value.message == ("flightaware: request rejected (400): INVALID_ARGUMENT: "
                                     "start cannot be before current day")


def test_401_is_refused_credentials(alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """A 401 is ProviderAuthError, as for a flight lookup."""
    httpx_mock.add_response(method="GET", status_code=401, json={
        "title": "Invalid API key", "reason": "UNAUTHORIZED", "detail": "bad key",
        "status": 401})
    with pytest.raises(ProviderAuthError) as raised:
        alerts.list()
    assert raised.value.code == "provider_auth"


def test_429_is_rate_limited_with_retry_after(
        alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """A 429 is ProviderRateLimited carrying Retry-After in seconds."""
    httpx_mock.add_response(method="DELETE", status_code=429, headers={"Retry-After": "7"},
                            json={"reason": "RATE_LIMIT_ERROR"})
    with pytest.raises(ProviderRateLimited) as raised:
        alerts.delete(9)
    assert raised.value.retry_after == 7


def test_5xx_is_unavailable_and_a_create_without_location_is_a_bad_response(
        alerts: AlertClient, httpx_mock: HTTPXMock) -> None:
    """A 503 is ProviderUnavailable; a 201 without an id in Location is ProviderBadResponse."""
    spec = AlertSpec(ident="LH400", day=date(2026, 12, 6), events=("arrival",), target_url=URL)
    httpx_mock.add_response(method="POST", status_code=503)
    with pytest.raises(ProviderUnavailable):
        alerts.create(spec)
    httpx_mock.add_response(method="POST", status_code=201)
    with pytest.raises(ProviderBadResponse):
        alerts.create(spec)


def test_target_url_and_its_masked_form() -> None:
    """The delivery URL is <public_url>/webhooks/flightaware/<token>; shown, the token is ***."""
    url = target_url("https://flights.example.com/", "tok_0123456789abcdef")
    assert url == URL
    assert mask_url(url) == "https://flights.example.com/webhooks/flightaware/***"
    assert mask_url("https://user:pw@other.example.com/hook/secret") == (
        "https://other.example.com/***")
