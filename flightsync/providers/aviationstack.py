"""Aviationstack (apilayer, docs/PROVIDERS.md section 6.3): ``GET {base}/flights`` with the
``access_key`` query parameter, ``flight_iata`` and, where the plan allows it, ``flight_date``.

The key travels in the query string by the provider's design, so no URL of a request is ever
put in a message or a log line here: errors name the provider's error code, never the request.

Quirks handled here:

* Times carry ``+00:00`` but are the airport's local wall clock (apilayer/aviationstack
  issues 1 and 2): the offset is dropped and the time read in ``departure.timezone`` /
  ``arrival.timezone`` (else the airport's zone from ``airportsdata``).
* ``flight_date`` is a paid feature: a free plan answers 403 ``function_access_restricted``.
  That is a refused request, not an outage: the adapter asks again without ``flight_date``
  and keeps the records whose ``flight_date`` is the queried date. The refusal is remembered
  for the process (per base URL and key), so later flights are asked once, without the date.
* One flight comes back as several records: the operating one (``flight.codeshared`` null)
  and marketing copies (``flight.codeshared`` names the operating flight). They collapse to
  one leg of the operating flight, with the marketing designators as its codeshares.
* ``usage_limit_reached`` is the monthly quota (ProviderQuotaExhausted, not retried);
  ``rate_limit_reached`` is a rate limit (retried after ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import (
    ConfigError,
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._airports import airport_tz
from flightsync.providers._http import (
    json_body,
    mapped_transport_errors,
    parse_aware,
    raise_for_status,
    retry_after_seconds,
)
from flightsync.providers._shape import as_list, as_object, bad, mapped_status, schema_guard, text
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

_NAME = "aviationstack"
# One flight is a few records (one per leg, plus codeshare copies); free plans allow at most
# 100 per page, which is also the default. More than one page is never read (see fetch).
PAGE_LIMIT = 100
PLAN_REFUSED = "function_access_restricted"

# The documented ``flight_status`` values (aviationstack.com/documentation, docs/PROVIDERS.md
# section 8). ``active`` and ``scheduled`` are refined by the times in _status. ``landed``
# stays landed: whether ``arrival.actual`` is an in-block time is undocumented (issue 1 shows
# a departure ``actual`` after its ``actual_runway``), so it cannot prove an arrival.
_STATUS: Mapping[str, FlightStatus] = {
    "SCHEDULED": FlightStatus.SCHEDULED,
    "ACTIVE": FlightStatus.DEPARTED,
    "LANDED": FlightStatus.LANDED,
    "CANCELLED": FlightStatus.CANCELLED,
    "DIVERTED": FlightStatus.DIVERTED,
    # Documented but says nothing about where the flight is: section 8 maps it to unknown.
    "INCIDENT": FlightStatus.UNKNOWN,
}

# Documented error codes whose meaning differs from what their HTTP status alone would say;
# every other answer goes through _http.raise_for_status.
_ERRORS: Mapping[str, tuple[type[ProviderError], str]] = {
    "invalid_access_key": (ProviderAuthError, "access key refused"),
    "missing_access_key": (ProviderAuthError, "no access key sent"),
    "inactive_user": (ProviderAuthError, "account inactive"),
    # A plan refusal: this request cannot succeed on this plan, the provider is fine.
    PLAN_REFUSED: (ProviderRequestRejected, "the plan does not allow this request"),
    "https_access_restricted": (ProviderRequestRejected, "the plan does not allow HTTPS"),
    "usage_limit_reached": (ProviderQuotaExhausted, "monthly request quota used up"),
    "rate_limit_reached": (ProviderRateLimited, "rate limited"),
    "validation_error": (ProviderRequestRejected, "request failed validation"),
    "invalid_api_function": (ProviderBadResponse, "no such endpoint; check the base URL"),
    "404_not_found": (ProviderBadResponse, "no such endpoint; check the base URL"),
    "internal_error": (ProviderUnavailable, "internal error"),
}

# (base URL, key fingerprint) of the accounts whose plan refused ``flight_date`` in this
# process: they are asked without it from then on, one call per flight instead of two.
_DATE_REFUSED: set[tuple[str, str]] = set()
_DATE_REFUSED_LOCK = threading.Lock()


class AviationstackAdapter:
    """Any carrier's flights from Aviationstack, by IATA flight designator and date."""

    name: ClassVar[str] = _NAME
    default_base_url: ClassVar[str] = "https://api.aviationstack.com/v1"
    # Below the airlines' own APIs and FlightAware: its times need re-zoning and its status
    # vocabulary is coarse.
    default_priority: ClassVar[int] = 15
    default_carriers: ClassVar[frozenset[str] | None] = None
    credential_env: ClassVar[tuple[str, ...]] = ("AVIATIONSTACK_ACCESS_KEY",)
    uses_oauth: ClassVar[bool] = False
    # flight_iata carries no suffix: asked for LH400A it would answer for LH400.
    serves_operational_suffix: ClassVar[bool] = False

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        key = settings.credentials.get("api_key")
        if not key:
            raise ConfigError("aviationstack: no access key: set AVIATIONSTACK_ACCESS_KEY")
        self._client = client
        self._key = key
        # Identifies the account without keeping a second copy of the key in the set.
        fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
        self._account = (str(client.base_url), fingerprint)

    @property
    def asks_by_date(self) -> bool:
        """False once this account's plan has refused ``flight_date`` in this process."""
        with _DATE_REFUSED_LOCK:
            return self._account not in _DATE_REFUSED

    def fetch(self, query: FlightQuery) -> Observation:
        """The legs Aviationstack reports for ``query``'s designator on its date."""
        dated = self.asks_by_date
        try:
            body, response = self._get(request_params(query, dated=dated))
        except ProviderRequestRejected as exc:
            if not dated or exc.context.get("code") != PLAN_REFUSED:
                raise
            with _DATE_REFUSED_LOCK:
                _DATE_REFUSED.add(self._account)
            log.warning("provider.plan.date_refused", provider=_NAME,
                        detail="the plan does not allow flight_date: asking without it and "
                               "keeping the records of the queried date, for the rest of "
                               "this process")
            body, response = self._get(request_params(query, dated=False))
        legs, updated_at = parse_response(body, query)
        return Observation(provider=_NAME, query=query, legs=legs,
                           fetched_at=datetime.now(UTC), updated_at=updated_at,
                           raw=response.text)

    def _get(self, params: dict[str, str]) -> tuple[Any, httpx.Response]:
        with mapped_transport_errors(_NAME):
            response = self._client.get("/flights", params={**params, "access_key": self._key},
                                        headers={"Accept": "application/json"})
        raise_for_error(response)
        return json_body(response, _NAME), response


def request_params(query: FlightQuery, *, dated: bool) -> dict[str, str]:
    """The query parameters besides ``access_key``: the IATA designator (no suffix, which
    the API does not know), a one-page ``limit`` and, when ``dated``, ``flight_date``."""
    params = {"flight_iata": f"{query.carrier}{query.number}", "limit": str(PAGE_LIMIT)}
    if dated:
        params["flight_date"] = query.departure_date.isoformat()
    return params


def raise_for_error(response: httpx.Response) -> None:
    """Map an error answer to the error tree. Aviationstack names the problem in
    ``{"error": {"code", "message", "context"}}``; a documented code decides the class (the
    same status can mean a quota or a rate limit), anything else goes by HTTP status. The
    message names the code only: the body and the request URL stay out of it."""
    code = _error_code(response)
    if code is None:
        if response.status_code >= 300:
            _raise_by_status(response, "no error code")
        return
    target = _ERRORS.get(code)
    status = response.status_code
    if target is None:
        if status >= 300:
            # An undocumented code: the HTTP status decides, without the body in the message.
            _raise_by_status(response, code)
        raise bad(_NAME, f"error answer with undocumented code {code[:40]!r}")
    cls, what = target
    message = f"{_NAME}: {what} ({code})"
    if cls is ProviderRateLimited:
        raise ProviderRateLimited(message, provider=_NAME, status=status,
                                  retry_after=retry_after_seconds(response), code=code)
    raise cls(message, provider=_NAME, status=status, code=code)


def _raise_by_status(response: httpx.Response, code: str) -> None:
    status = response.status_code
    # raise_for_status would quote the body in this one case; the message names the code.
    if 400 <= status < 500 and status not in (401, 403, 404, 429):
        raise ProviderRequestRejected(f"{_NAME}: request rejected ({status}, {code[:40]})",
                                      provider=_NAME, status=status, code=code[:40])
    raise_for_status(response, _NAME)


def _error_code(response: httpx.Response) -> str | None:
    """The ``error.code`` of an error body, or None when the body is not one."""
    if response.status_code < 300 and b'"error"' not in response.content:
        return None  # the common case: a data answer is not decoded twice
    try:
        body = json_body(response, _NAME)
    except ProviderBadResponse:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    # apilayer's older APIs put a number in ``code`` and the name in ``type``.
    if not isinstance(code, str):
        code = error.get("type")
    return code.strip().lower() if isinstance(code, str) and code.strip() else "unknown"


def parse_response(body: Any, query: FlightQuery) -> tuple[tuple[Leg, ...], datetime | None]:
    """The legs of ``query``'s flight on its date, in flying order, and the latest
    ``live.updated`` among their records, if any. FlightNotFound when no record is of it."""
    with schema_guard(_NAME):
        data = as_list(as_object(body, _NAME, "body").get("data"), _NAME, "data")
        records = [as_object(item, _NAME, "data[]") for item in data]
        _warn_if_truncated(body, len(records))
        groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for record in records:
            key = _leg_key(record, query.departure_date)
            if key is not None:
                groups.setdefault(key, []).append(record)
        legs = [_leg(group) for group in groups.values()]
        if not legs:
            raise FlightNotFound(f"{_NAME}: no such flight {query.key}", provider=_NAME)
        legs.sort(key=lambda leg: leg.scheduled_departure or datetime.min.replace(tzinfo=UTC))
        stamps = [stamp for group in groups.values() for record in group
                  if (stamp := _live_updated(record)) is not None]
        return tuple(legs), max(stamps, default=None)


def _warn_if_truncated(body: Mapping[str, Any], count: int) -> None:
    page = body.get("pagination")
    total = page.get("total") if isinstance(page, dict) else None
    if isinstance(total, int) and not isinstance(total, bool) and total > count:
        log.warning("provider.page.truncated", provider=_NAME, records=count, total=total)


def _leg_key(record: Mapping[str, Any], day: date) -> tuple[str, str] | None:
    """(origin, operating designator) shared by a leg's operating record and its marketing
    copies: one flight on one date leaves an airport once, and a copy whose times lag the
    operating record's is still the same leg. None for a record of another date or one that
    cannot be placed."""
    departure = _object(record, "departure")
    origin = text(departure.get("iata"), _NAME, "departure.iata")
    scheduled = text(departure.get("scheduled"), _NAME, "departure.scheduled")
    if origin is None or scheduled is None:
        log.info("provider.flight.skipped", provider=_NAME,
                 reason="no IATA origin" if origin is None else "no scheduled departure")
        return None
    # The date the flight operates on; without one, the date of the local departure time.
    flight_date = text(record.get("flight_date"), _NAME, "flight_date") or scheduled[:10]
    if flight_date != day.isoformat():
        return None
    _wall_clock(scheduled, "departure.scheduled")  # a record with an unreadable time is bad
    shared = _codeshared(record)
    designator = (text(shared.get("flight_iata"), _NAME, "flight.codeshared.flight_iata")
                  if shared is not None else _designator(_object(record, "flight"), "flight"))
    return origin.upper(), (designator or "").replace(" ", "").upper()


def _leg(group: list[Mapping[str, Any]]) -> Leg:
    """One leg from the records of one departure: the operating record when present (else a
    marketing copy, whose ``codeshared`` names the operator), marketing numbers as codeshares."""
    operating = next((r for r in group if _codeshared(r) is None), None)
    source = operating if operating is not None else group[0]
    marketing: list[str] = []
    for record in group:
        if _codeshared(record) is not None:
            designator = _designator(_object(record, "flight"), "flight")
            if designator is not None and designator not in marketing:
                marketing.append(designator)
    if operating is not None:
        carrier = text(_object(source, "airline").get("iata"), _NAME, "airline.iata")
        number = text(_object(source, "flight").get("number"), _NAME, "flight.number")
    else:
        shared = _codeshared(source) or {}
        carrier = text(shared.get("airline_iata"), _NAME, "flight.codeshared.airline_iata")
        number = text(shared.get("flight_number"), _NAME, "flight.codeshared.flight_number")
    departure, arrival = _object(source, "departure"), _object(source, "arrival")
    origin = text(departure.get("iata"), _NAME, "departure.iata") or ""
    destination = text(arrival.get("iata"), _NAME, "arrival.iata")
    dep_zone, arr_zone = _zone(departure, origin), _zone(arrival, destination)
    aircraft = _object(source, "aircraft")
    return Leg(
        origin=origin.upper(),
        destination=destination.upper() if destination else None,
        status=_status(source, departure),
        scheduled_departure=_time(departure, "scheduled", dep_zone),
        estimated_departure=_time(departure, "estimated", dep_zone),
        # The gate time when given, else the runway time, the closest known.
        actual_departure=(_time(departure, "actual", dep_zone)
                          or _time(departure, "actual_runway", dep_zone)),
        scheduled_arrival=_time(arrival, "scheduled", arr_zone),
        estimated_arrival=_time(arrival, "estimated", arr_zone),
        actual_arrival=(_time(arrival, "actual", arr_zone)
                        or _time(arrival, "actual_runway", arr_zone)),
        departure_terminal=text(departure.get("terminal"), _NAME, "departure.terminal"),
        departure_gate=text(departure.get("gate"), _NAME, "departure.gate"),
        arrival_terminal=text(arrival.get("terminal"), _NAME, "arrival.terminal"),
        arrival_gate=text(arrival.get("gate"), _NAME, "arrival.gate"),
        baggage_belt=text(arrival.get("baggage"), _NAME, "arrival.baggage"),
        # ICAO designator first: the documented example puts one ("A321") in ``iata`` too.
        aircraft_type=(text(aircraft.get("icao"), _NAME, "aircraft.icao")
                       or text(aircraft.get("iata"), _NAME, "aircraft.iata")),
        aircraft_registration=text(aircraft.get("registration"), _NAME,
                                   "aircraft.registration"),
        # No copies seen says nothing: the flight_iata filter need not return them.
        codeshares=tuple(marketing) if marketing else None,
        operating_carrier=carrier.upper() if carrier else None,
        operating_flight_number=int(number) if number is not None and number.isdigit()
        else None,
    )


def _status(record: Mapping[str, Any], departure: Mapping[str, Any]) -> FlightStatus | None:
    """``flight_status`` refined by the times: an active flight with a take-off time is
    airborne, a scheduled one with a departure delay is delayed (docs/PROVIDERS.md section 8)."""
    code = text(record.get("flight_status"), _NAME, "flight_status")
    status = mapped_status(_STATUS, code, _NAME, "flight_status")
    if status is FlightStatus.DEPARTED and departure.get("actual_runway") is not None:
        return FlightStatus.AIRBORNE
    if status is FlightStatus.SCHEDULED:
        delay = departure.get("delay")
        if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)):
            raise bad(_NAME, "departure.delay is not a number")
        if delay is not None and delay > 0:
            return FlightStatus.DELAYED
    return status


def _zone(side: Mapping[str, Any], iata: str | None) -> ZoneInfo | None:
    name = text(side.get("timezone"), _NAME, "timezone")
    if name is not None:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.info("provider.timezone.unknown", provider=_NAME, timezone=name[:40])
    return airport_tz(iata) if iata else None


def _time(side: Mapping[str, Any], key: str, zone: ZoneInfo | None) -> datetime | None:
    """A time of ``side`` as aware UTC: its wall clock read in the airport's zone."""
    value = text(side.get(key), _NAME, key)
    if value is None:
        return None
    if zone is None:
        raise bad(_NAME, f"{key} without a known airport time zone: cannot place it")
    return _wall_clock(value, key).replace(tzinfo=zone).astimezone(UTC)


def _wall_clock(value: str, what: str) -> datetime:
    """The local wall-clock time of ``value``. Its offset is dropped: Aviationstack labels
    local times ``+00:00`` (apilayer/aviationstack issues 1 and 2), so it is never true."""
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError as exc:
        raise bad(_NAME, f"bad time in {what}: {value[:40]!r}") from exc


def _live_updated(record: Mapping[str, Any]) -> datetime | None:
    live = record.get("live")
    if live is None:
        return None
    updated = text(as_object(live, _NAME, "live").get("updated"), _NAME, "live.updated")
    # Position reports are stamped in UTC, unlike the schedule times.
    return parse_aware(updated, _NAME, "live.updated") if updated is not None else None


def _codeshared(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    value = _object(record, "flight").get("codeshared")
    if value is None:
        return None
    return as_object(value, _NAME, "flight.codeshared")


def _designator(flight: Mapping[str, Any], where: str) -> str | None:
    value = text(flight.get("iata"), _NAME, f"{where}.iata")
    return value.replace(" ", "").upper() if value else None


def _object(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    return {} if value is None else as_object(value, _NAME, key)


__all__ = ["AviationstackAdapter", "parse_response", "raise_for_error", "request_params"]
