"""Cirium FlightStats Flex, Flight Status API v2 (docs/PROVIDERS.md section 6.4):
``GET {base}/flight/status/{carrier}/{number}/dep/{year}/{month}/{day}``.

The credentials travel as the ``appId`` and ``appKey`` request headers, which the API accepts
in place of the same-named query parameters: query parameters end up in every logged or
printed URL, headers do not. ``codeType`` says whether the carrier sent is IATA or ICAO, since
without it FlightStats reads the carrier as its own ``fs`` code, which is not always the IATA
one (TUI Airways is ``TOM``, IATA ``BY``). ``extendedOptions=useHttpErrors`` asks for real
HTTP statuses on errors; the error body is still checked on every answer, 200 included.

Quirks handled here: every time comes twice (``dateUtc``, used, and ``dateLocal`` without an
offset, placed in the appendix airport's zone when ``dateUtc`` is missing); carriers and
airports are ``fs`` codes mapped to IATA through ``appendix``; a marketing number may be
answered by the operating flight, which carries the asked one in ``codeshares``; several
``flightStatuses`` are the legs of a multi-leg flight.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from flightsync.config import ProviderSettings
from flightsync.errors import (
    ConfigError,
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderQuotaExhausted,
    ProviderRateLimited,
    ProviderRequestRejected,
)
from flightsync.models import FlightQuery, FlightStatus, Leg, Observation
from flightsync.providers._airports import local_to_utc
from flightsync.providers._http import (
    json_body,
    mapped_transport_errors,
    parse_aware,
    raise_for_status,
    retry_after_seconds,
)
from flightsync.providers._shape import (
    as_list,
    as_object,
    bad,
    integer,
    mapped_status,
    required,
    schema_guard,
    text,
)
from flightsync.providers.base import TokenSource

if TYPE_CHECKING:  # only annotations: a command that fetches nothing never loads httpx
    import httpx

log = structlog.get_logger(__name__)

PROVIDER = "cirium"

# docs/PROVIDERS.md section 6.4. "A" (active) is refined to airborne once a runway take-off is
# known, "L" to arrived once the gate arrival is (as FlightAware's actual_in); "NO" (not
# operational) means the flight will not fly; "DN" (data source needed) says nothing.
STATUS: dict[str, FlightStatus] = {
    "S": FlightStatus.SCHEDULED,
    "A": FlightStatus.DEPARTED,
    "L": FlightStatus.LANDED,
    "C": FlightStatus.CANCELLED,
    "D": FlightStatus.DIVERTED,
    "R": FlightStatus.DIVERTED,   # redirected: like Lufthansa's RT
    "DN": FlightStatus.UNKNOWN,
    "NO": FlightStatus.CANCELLED,
    "U": FlightStatus.UNKNOWN,
}

# The published docs name no quota or throttle codes (contracts set the limits), so a spent
# quota is recognised by its code or its wording, a throttle by 429 or its code.
_QUOTA_CODES = frozenset({"QUOTA_EXCEEDED", "USAGE_LIMIT_EXCEEDED", "LIMIT_EXCEEDED"})
_RATE_CODES = frozenset({"RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS", "THROTTLED"})
_QUOTA_WORDS = re.compile(r"quota|usage limit", re.IGNORECASE)
# A 403 about the application or its keys is a credentials problem; any other 403 is a plan
# refusing this request (a refused request, not an outage).
_CREDENTIAL_WORDS = re.compile(r"application|app ?id|app ?key|credential", re.IGNORECASE)

_DEPARTURE = (("scheduled_departure", ("scheduledGateDeparture", "publishedDeparture")),
              ("estimated_departure", ("estimatedGateDeparture", "estimatedRunwayDeparture")),
              ("actual_departure", ("actualGateDeparture", "actualRunwayDeparture")))
_ARRIVAL = (("scheduled_arrival", ("scheduledGateArrival", "publishedArrival")),
            ("estimated_arrival", ("estimatedGateArrival", "estimatedRunwayArrival")),
            ("actual_arrival", ("actualGateArrival", "actualRunwayArrival")))


class CiriumAdapter:
    """Any carrier's flights from FlightStats Flex, by designator and local departure date."""

    name: ClassVar[str] = PROVIDER
    default_base_url: ClassVar[str] = "https://api.flightstats.com/flex/flightstatus/rest/v2/json"
    default_priority: ClassVar[int] = 15
    default_carriers: ClassVar[frozenset[str] | None] = None
    credential_env: ClassVar[tuple[str, ...]] = ("CIRIUM_APP_ID", "CIRIUM_APP_KEY")
    uses_oauth: ClassVar[bool] = False
    # The path takes a carrier and a number; there is no place for LH400A's suffix.
    serves_operational_suffix: ClassVar[bool] = False

    def __init__(self, client: httpx.Client, settings: ProviderSettings,
                 tokens: TokenSource | None = None) -> None:
        app_id = settings.credentials.get("app_id")
        app_key = settings.credentials.get("app_key")
        if not app_id or not app_key:
            raise ConfigError("cirium: no credentials: set CIRIUM_APP_ID and CIRIUM_APP_KEY")
        self._client = client
        self._headers = {"appId": app_id, "appKey": app_key, "Accept": "application/json"}

    def __repr__(self) -> str:
        return f"CiriumAdapter(base_url={str(self._client.base_url)!r})"

    def fetch(self, query: FlightQuery) -> Observation:
        """The legs FlightStats reports for ``query``'s flight on its local departure date."""
        fetched_at = datetime.now(UTC)
        with mapped_transport_errors(PROVIDER):
            response = self._client.get(request_path(query), params=request_params(query),
                                        headers=self._headers)
        body = _checked_body(response)
        with schema_guard(PROVIDER):
            legs = parse_flight_statuses(body, query)
        return Observation(provider=PROVIDER, query=query, legs=legs, fetched_at=fetched_at,
                           raw=response.text)


def request_path(query: FlightQuery) -> str:
    day = query.departure_date
    return f"/flight/status/{query.carrier}/{query.number}/dep/{day.year}/{day.month}/{day.day}"


def request_params(query: FlightQuery) -> dict[str, str]:
    """``codeType`` for the carrier as given (three letters: ICAO) and real HTTP errors."""
    return {"codeType": "ICAO" if len(query.carrier) == 3 else "IATA",
            "extendedOptions": "useHttpErrors"}


def _checked_body(response: httpx.Response) -> Any:
    """The decoded body of a good answer; every error answer, whatever its HTTP status,
    raised as the matching ProviderError."""
    status = response.status_code
    try:
        body = json_body(response, PROVIDER)
    except ProviderBadResponse:
        raise_for_status(response, PROVIDER)  # a non-JSON error page keeps its status meaning
        raise
    error = body.get("error") if isinstance(body, Mapping) else None
    if error is None:
        raise_for_status(response, PROVIDER)
        return body
    fields = error if isinstance(error, Mapping) else {}
    embedded = fields.get("httpStatusCode")
    if status < 300:  # the error came with HTTP 200: its own status says what it is
        status = embedded if isinstance(embedded, int) and not isinstance(embedded, bool) \
            and 400 <= embedded < 600 else 500
    raise_cirium_error(response, status, fields)
    raise AssertionError("unreachable")  # pragma: no cover - raise_cirium_error always raises


def raise_cirium_error(response: httpx.Response, status: int,
                       error: Mapping[str, Any]) -> None:
    """Raise the ProviderError for an ``{"error": {...}}`` answer with HTTP ``status``:
    FlightStats' quota and throttle codes first, then the shared table of _http."""
    code = str(error.get("errorCode") or "")[:40].upper()
    message = str(error.get("errorMessage") or "")[:120]
    summary = f"{code or status}: {message}" if message else (code or str(status))
    log.info("provider.fetch.error", provider=PROVIDER, status=status, code=code)
    if code in _QUOTA_CODES or _QUOTA_WORDS.search(message):
        raise ProviderQuotaExhausted(f"{PROVIDER}: quota exhausted ({summary})",
                                     provider=PROVIDER, status=status)
    if status == 429 or code in _RATE_CODES:
        raise ProviderRateLimited(f"{PROVIDER}: rate limited ({summary})", provider=PROVIDER,
                                  retry_after=retry_after_seconds(response), status=status)
    if status == 401 or (status == 403 and _CREDENTIAL_WORDS.search(message)):
        raise ProviderAuthError(f"{PROVIDER}: authorization refused ({summary})",
                                provider=PROVIDER, status=status)
    if status == 403:
        raise ProviderRequestRejected(f"{PROVIDER}: request refused by the plan ({summary})",
                                      provider=PROVIDER, status=status)
    if status == 404:
        raise FlightNotFound(f"{PROVIDER}: no such flight ({summary})", provider=PROVIDER,
                             status=status)
    import httpx  # noqa: PLC0415 - loaded already: the adapter only runs with a client

    raise_for_status(httpx.Response(status, headers=response.headers,
                                    content=response.content), PROVIDER)
    raise ProviderBadResponse(f"{PROVIDER}: error answer ({summary})", provider=PROVIDER,
                              status=status)


# --- the answer ----------------------------------------------------------------------------

class _Appendix:
    """``appendix.airlines`` and ``appendix.airports`` by their ``fs`` codes."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        appendix = body.get("appendix")
        appendix = as_object(appendix, PROVIDER, "appendix") if appendix is not None else {}
        self.airlines = self._by_fs(appendix.get("airlines"), "airlines")
        self.airports = self._by_fs(appendix.get("airports"), "airports")

    @staticmethod
    def _by_fs(value: Any, where: str) -> dict[str, Mapping[str, Any]]:
        rows = [] if value is None else as_list(value, PROVIDER, f"appendix.{where}")
        out: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            entry = as_object(row, PROVIDER, f"appendix.{where}[]")
            fs = text(entry.get("fs"), PROVIDER, f"appendix.{where}[].fs")
            if fs is not None:
                out[fs.upper()] = entry
        return out

    def carrier_iata(self, fs: str) -> str | None:
        """The IATA code of carrier ``fs``; an fs code without an appendix row is taken as
        IATA only when it has the shape of one."""
        row = self.airlines.get(fs.upper())
        if row is not None:
            return _upper(text(row.get("iata"), PROVIDER, "appendix.airlines[].iata"))
        return fs.upper() if len(fs) == 2 else None

    def carrier_codes(self, fs: str) -> set[str]:
        """Every code carrier ``fs`` is known by (fs, IATA, ICAO), to match the asked one."""
        row = self.airlines.get(fs.upper(), {})
        codes = {fs.upper()}
        for key in ("iata", "icao"):
            value = text(row.get(key), PROVIDER, f"appendix.airlines[].{key}")
            if value is not None:
                codes.add(value.upper())
        return codes

    def airport_iata(self, fs: str) -> str:
        row = self.airports.get(fs.upper(), {})
        return (_upper(text(row.get("iata"), PROVIDER, "appendix.airports[].iata"))
                or fs.upper())

    def airport_zone(self, fs: str) -> ZoneInfo | None:
        row = self.airports.get(fs.upper(), {})
        name = text(row.get("timeZoneRegionName"), PROVIDER, "appendix.airports[].timeZone")
        if name is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.info("provider.timezone.unknown", provider=PROVIDER, timezone=name[:40])
            return None


def parse_flight_statuses(body: Any, query: FlightQuery) -> tuple[Leg, ...]:
    """The legs of the asked flight in a ``flightStatuses`` answer, in flying order: the
    statuses flown under the asked designator, or operated for it as a codeshare."""
    obj = as_object(body, PROVIDER, "body")
    statuses = as_list(required(obj, "flightStatuses", PROVIDER, "body"), PROVIDER,
                       "flightStatuses")
    appendix = _Appendix(obj)
    legs: dict[tuple[str, datetime | None], Leg] = {}
    for index, raw in enumerate(statuses):
        status = as_object(raw, PROVIDER, f"flightStatuses[{index}]")
        if not _is_asked_flight(status, query, appendix):
            continue
        leg = parse_status(status, appendix)
        legs.setdefault((leg.origin, leg.scheduled_departure), leg)
    if not legs:
        raise FlightNotFound(f"{PROVIDER}: no such flight {query.key}", provider=PROVIDER)
    return tuple(sorted(legs.values(), key=lambda leg: (leg.scheduled_departure is None,
                                                        leg.scheduled_departure or datetime.max)))


def _is_asked_flight(status: Mapping[str, Any], query: FlightQuery,
                     appendix: _Appendix) -> bool:
    def same(fs: Any, number: Any, where: str) -> bool:
        code = text(fs, PROVIDER, f"{where}.fsCode")
        flight = text(number, PROVIDER, f"{where}.flightNumber")
        return (code is not None and flight is not None and flight.isdigit()
                and int(flight) == query.number
                and query.carrier in appendix.carrier_codes(code))

    if same(status.get("carrierFsCode"), status.get("flightNumber"), "flightStatuses[]"):
        return True
    shares = status.get("codeshares")
    return any(same(as_object(share, PROVIDER, "codeshares[]").get("fsCode"),
                    as_object(share, PROVIDER, "codeshares[]").get("flightNumber"), "codeshares[]")
               for share in ([] if shares is None else as_list(shares, PROVIDER, "codeshares")))


def parse_status(status: Mapping[str, Any], appendix: _Appendix) -> Leg:
    """One ``flightStatuses[]`` entry as a normalized leg."""
    origin_fs = _code(status, "departureAirportFsCode")
    destination_fs = _code(status, "arrivalAirportFsCode")
    origin, destination = appendix.airport_iata(origin_fs), appendix.airport_iata(destination_fs)
    times = _object(status, "operationalTimes")
    out: dict[str, datetime | None] = {}
    for fs, iata, families in ((origin_fs, origin, _DEPARTURE),
                               (destination_fs, destination, _ARRIVAL)):
        for field_name, keys in families:
            out[field_name] = next((moment for key in keys if (
                moment := _time(times.get(key), key, fs, iata, appendix)) is not None), None)
    out["scheduled_departure"] = out["scheduled_departure"] or _time(
        status.get("departureDate"), "departureDate", origin_fs, origin, appendix)
    out["scheduled_arrival"] = out["scheduled_arrival"] or _time(
        status.get("arrivalDate"), "arrivalDate", destination_fs, destination, appendix)
    resources = _object(status, "airportResources")
    equipment = _object(status, "flightEquipment")
    carrier_fs = _code(status, "carrierFsCode")
    number = integer(required(status, "flightNumber", PROVIDER, "flightStatuses[]"), PROVIDER,
                     "flightNumber")
    diverted = text(status.get("divertedAirportFsCode"), PROVIDER, "divertedAirportFsCode")
    return Leg(
        origin=origin, destination=destination,
        status=_status(status, times),
        scheduled_departure=out["scheduled_departure"],
        estimated_departure=out["estimated_departure"], actual_departure=out["actual_departure"],
        scheduled_arrival=out["scheduled_arrival"],
        estimated_arrival=out["estimated_arrival"], actual_arrival=out["actual_arrival"],
        departure_terminal=_resource(resources, "departureTerminal"),
        departure_gate=_resource(resources, "departureGate"),
        arrival_terminal=_resource(resources, "arrivalTerminal"),
        arrival_gate=_resource(resources, "arrivalGate"),
        baggage_belt=_resource(resources, "baggage"),
        aircraft_type=_resource(equipment, "actualEquipmentIataCode")
        or _resource(equipment, "scheduledEquipmentIataCode"),
        aircraft_registration=_resource(equipment, "tailNumber"),
        codeshares=_codeshares(status, appendix),
        operating_carrier=appendix.carrier_iata(carrier_fs),
        operating_flight_number=number,
        diverted_to=appendix.airport_iata(diverted) if diverted else None,
    )


def _status(status: Mapping[str, Any], times: Mapping[str, Any]) -> FlightStatus | None:
    code = text(status.get("status"), PROVIDER, "status")
    mapped = mapped_status(STATUS, code, PROVIDER, "status")
    if mapped is FlightStatus.DEPARTED and times.get("actualRunwayDeparture") is not None:
        return FlightStatus.AIRBORNE
    if mapped is FlightStatus.LANDED and times.get("actualGateArrival") is not None:
        return FlightStatus.ARRIVED
    if mapped is FlightStatus.SCHEDULED and _departure_delay(status) > 0:
        return FlightStatus.DELAYED
    return mapped


def _departure_delay(status: Mapping[str, Any]) -> int:
    delays = _object(status, "delays")
    value = delays.get("departureGateDelayMinutes")
    return 0 if value is None else integer(value, PROVIDER, "delays.departureGateDelayMinutes")


def _codeshares(status: Mapping[str, Any], appendix: _Appendix) -> tuple[str, ...] | None:
    shares = status.get("codeshares")
    if shares is None:
        return None
    out = []
    for share in as_list(shares, PROVIDER, "codeshares"):
        entry = as_object(share, PROVIDER, "codeshares[]")
        fs = text(entry.get("fsCode"), PROVIDER, "codeshares[].fsCode")
        number = text(entry.get("flightNumber"), PROVIDER, "codeshares[].flightNumber")
        carrier = appendix.carrier_iata(fs) if fs else None
        if carrier and number and number.isdigit():
            out.append(f"{carrier}{int(number)}")
    return tuple(out)


def _time(value: Any, where: str, airport_fs: str, airport_iata: str,
          appendix: _Appendix) -> datetime | None:
    """``dateUtc``, or ``dateLocal`` (no offset) placed in the airport's zone: the appendix
    one, else the airportsdata one."""
    if value is None:
        return None
    pair = as_object(value, PROVIDER, where)
    utc = pair.get("dateUtc")
    if utc is not None:
        if not isinstance(utc, str):
            raise bad(PROVIDER, f"{where}.dateUtc is not a string")
        return parse_aware(utc, PROVIDER, f"{where}.dateUtc")
    local = pair.get("dateLocal")
    if local is None:
        return None
    try:
        naive = datetime.fromisoformat(local) if isinstance(local, str) else None
    except ValueError:
        naive = None
    if naive is None:
        raise bad(PROVIDER, f"bad time in {where}.dateLocal")
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    zone = appendix.airport_zone(airport_fs)
    if zone is not None:
        return naive.replace(tzinfo=zone).astimezone(UTC)
    return local_to_utc(naive, airport_iata, PROVIDER)


def _code(status: Mapping[str, Any], key: str) -> str:
    value = text(required(status, key, PROVIDER, "flightStatuses[]"), PROVIDER, key)
    if value is None:
        raise bad(PROVIDER, f"empty flightStatuses[].{key}")
    return value.upper()


def _object(status: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = status.get(key)
    return {} if value is None else as_object(value, PROVIDER, key)


def _resource(obj: Mapping[str, Any], key: str) -> str | None:
    return text(obj.get(key), PROVIDER, key)


def _upper(value: str | None) -> str | None:
    return value.upper() if value is not None else None


__all__ = ["STATUS", "CiriumAdapter", "parse_flight_statuses", "parse_status",
           "raise_cirium_error", "request_params", "request_path"]
