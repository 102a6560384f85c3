"""The sandbox server: every provider's wire format, credentials, latency, scripted faults,
counters, scenarios and the consistency of its synthetic flights."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.config import ENV_VARS
from flightsync.errors import ConfigError
from flightsync.providers import registry
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment, serve

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = "2026-03-02"
CREDS = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(now=NOW)) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, timeout=5) as http:
        yield http


def token(client: httpx.Client, path: str) -> str:
    response = client.post(path, data=CREDS)
    assert response.status_code == 200
    return str(response.json()["access_token"])


def amadeus(client: httpx.Client, flight: str = "LH400", day: str = DAY,
            bearer: str | None = None) -> httpx.Response:
    bearer = bearer or token(client, "/v1/security/oauth2/token")
    return client.get("/v2/schedule/flights", headers={"Authorization": f"Bearer {bearer}"},
                      params={"carrierCode": flight[:2], "flightNumber": flight[2:],
                              "scheduledDepartureDate": day})


def lufthansa(client: httpx.Client, flight: str = "LH400", day: str = DAY,
              bearer: str | None = None) -> httpx.Response:
    bearer = bearer or token(client, "/v1/oauth/token")
    return client.get(f"/v1/operations/flightstatus/{flight}/{day}",
                      headers={"Authorization": f"Bearer {bearer}"})


def afklm(client: httpx.Client, flight: str = "KL1001", day: str = DAY,
          key: str = "sandbox") -> httpx.Response:
    start = date.fromisoformat(day)
    return client.get("/opendata/flightstatus", headers={"API-Key": key}, params={
        "startRange": f"{start - timedelta(days=1)}T00:00:00Z",
        "endRange": f"{start + timedelta(days=1)}T23:59:59Z",
        "carrierCode": flight[:2], "flightNumber": flight[2:]})


def british(client: httpx.Client, flight: str = "BA117", day: str = DAY,
            key: str = "sandbox") -> httpx.Response:
    return client.get(f"/rest-v1/v1/flights;scheduledDepartureDate={day};flightNumber={flight}",
                      headers={"client-key": key})


def flightaware(client: httpx.Client, ident: str = "DLH400", key: str = "sandbox",
                day: str = DAY) -> httpx.Response:
    return client.get(f"/aeroapi/flights/{ident}", headers={"x-apikey": key}, params={
        "start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z"})


# -- formats and credentials --------------------------------------------------------------


def test_amadeus_token_and_dated_flight(client: httpx.Client) -> None:
    """Amadeus issues a Bearer token and answers datedFlights with an integer flight number,
    STD/STA timings with an offset and one leg per hop."""
    grant = client.post("/v1/security/oauth2/token", data=CREDS).json()
    assert grant["type"] == "amadeusOAuth2Token" and grant["token_type"] == "Bearer"
    assert grant["expires_in"] == 1799 and grant["state"] == "approved"
    body = amadeus(client, bearer=grant["access_token"]).json()
    flight = body["data"][0]
    assert body["meta"]["count"] == 1 and flight["type"] == "DatedFlight"
    assert flight["flightDesignator"] == {"carrierCode": "LH", "flightNumber": 400}
    assert flight["scheduledDepartureDate"] == DAY
    std = flight["flightPoints"][0]["departure"]["timings"][0]
    assert std["qualifier"] == "STD"
    assert datetime.fromisoformat(std["value"]).utcoffset() is not None
    assert len(std["value"]) == len("2026-03-02T18:10+01:00")
    assert flight["legs"][0]["boardPointIataCode"] == flight["flightPoints"][0]["iataCode"]


def test_amadeus_refuses_wrong_credentials_and_tokens(client: httpx.Client) -> None:
    """Wrong client credentials get the flat invalid_client error; a missing header, an
    unknown token and a wrong grant type get their documented codes."""
    wrong = client.post("/v1/security/oauth2/token", data={**CREDS, "client_secret": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client" and wrong.json()["code"] == 38187
    grant = client.post("/v1/security/oauth2/token", data={**CREDS, "grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    missing = client.get("/v2/schedule/flights", params={"carrierCode": "LH"})
    assert missing.status_code == 401 and missing.json()["errors"][0]["code"] == "38191"
    unknown = amadeus(client, bearer="not-a-token")
    assert unknown.status_code == 401 and unknown.json()["errors"][0]["code"] == 38190


def test_amadeus_expired_token_gets_38192() -> None:
    """A token past its lifetime is refused with Amadeus' token-expired code."""
    with Sandbox(SandboxConfig(now=NOW, token_ttl_seconds=0)) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        grant = http.post("/v1/security/oauth2/token", data=CREDS).json()
        assert grant["expires_in"] == 0
        response = amadeus(http, bearer=grant["access_token"])
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == 38192


def test_amadeus_location_by_id(client: httpx.Client) -> None:
    """Location by id answers one object with the offset of the airport on the sandbox date,
    and 404 code 1797 for an unknown id."""
    bearer = token(client, "/v1/security/oauth2/token")
    headers = {"Authorization": f"Bearer {bearer}"}
    body = client.get("/v1/reference-data/locations/AFRA", headers=headers).json()
    assert body["data"]["iataCode"] == "FRA" and body["data"]["subType"] == "AIRPORT"
    assert body["data"]["timeZoneOffset"] == "+01:00"  # 1 March: Central European Time
    unknown = client.get("/v1/reference-data/locations/AQQQ", headers=headers)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == 1797


def test_lufthansa_quirks(client: httpx.Client) -> None:
    """Lufthansa answers one flight as an object, numeric values as numbers, local times
    without offset, UTC times with Z and no seconds, and a lower-case token type."""
    grant = client.post("/v1/oauth/token", data=CREDS).json()
    assert grant["token_type"] == "bearer"
    body = lufthansa(client, bearer=grant["access_token"]).json()["FlightStatusResource"]
    flight = body["Flights"]["Flight"]
    assert isinstance(flight, dict)
    assert flight["MarketingCarrier"] == {"AirlineID": "LH", "FlightNumber": 400}
    departure = flight["Departure"]
    assert isinstance(departure["Terminal"]["Name"], int)
    local = departure["ScheduledTimeLocal"]["DateTime"]
    assert datetime.fromisoformat(local).tzinfo is None and local.startswith(DAY)
    assert departure["ScheduledTimeUTC"]["DateTime"].endswith("Z")
    assert len(departure["ScheduledTimeUTC"]["DateTime"]) == len("2017-09-07T09:00Z")
    assert ("EstimatedTimeUTC" in departure) != ("ActualTimeUTC" in departure)


def test_lufthansa_refuses_lower_case_bearer_and_wrong_credentials(client: httpx.Client) -> None:
    """Lufthansa needs "Bearer" capitalized; wrong client credentials and unknown tokens
    get 401."""
    bearer = token(client, "/v1/oauth/token")
    lower = client.get(f"/v1/operations/flightstatus/LH400/{DAY}",
                       headers={"Authorization": f"bearer {bearer}"})
    assert lower.status_code == 401 and lower.json() == {"Error": "Not Authorized"}
    wrong = client.post("/v1/oauth/token", data={**CREDS, "client_id": "x"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert lufthansa(client, bearer="forged").status_code == 401


def test_lufthansa_does_not_cover_other_carriers(client: httpx.Client) -> None:
    """A carrier Lufthansa does not cover gets its 404 ResourceNotFound processing error."""
    response = lufthansa(client, flight="AF1001")
    assert response.status_code == 404
    assert response.json()["ProcessingErrors"]["ProcessingError"]["Type"] == "ResourceNotFound"


def test_afklm_search_format_and_key(client: httpx.Client) -> None:
    """AF-KLM answers operationalFlights with a UTC schedule date, an id, legs with
    millisecond times and an offset; a wrong API key is refused; LH is not covered."""
    body = afklm(client).json()
    flight = body["operationalFlights"][0]
    assert flight["flightNumber"] == 1001 and flight["airline"]["code"] == "KL"
    times = flight["flightLegs"][0]["departureInformation"]["times"]
    scheduled = datetime.fromisoformat(times["scheduled"])
    assert times["scheduled"].count(".000") == 1 and scheduled.utcoffset() is not None
    assert flight["flightScheduleDate"] == scheduled.astimezone(UTC).date().isoformat()
    assert flight["id"] == f"{scheduled.astimezone(UTC):%Y%m%d}+KL+1001"
    assert flight["flightLegs"][0]["irregularity"]["cancelled"] == "N"
    refused = afklm(client, key="wrong")
    assert refused.status_code == 401 and refused.json()["errors"][0]["name"] == "UNAUTHORIZED"
    assert afklm(client, flight="LH400").json()["operationalFlights"] == []


def test_kl_numbers_ending_in_9_fly_three_legs(client: httpx.Client) -> None:
    """KL flights whose number ends in 9 fly a three-leg round trip, in every format."""
    flight = afklm(client, flight="KL419").json()["operationalFlights"]
    route = [f for f in flight if f["flightScheduleDate"] <= DAY][-1]["route"]
    assert len(route) == 4 and route[0] == route[-1] == "AMS"
    dated = amadeus(client, flight="KL419").json()["data"][0]
    points = [p["iataCode"] for p in dated["flightPoints"]]
    assert len(points) == 4 and points[0] == points[-1] == "AMS"
    assert len(dated["legs"]) == 3


def test_british_airways_matrix_parameters(client: httpx.Client) -> None:
    """BA answers the matrix-parameter path with FlightsResponse, collapsed Sector objects and
    local times; a wrong client-key is refused and other carriers are not found."""
    body = british(client).json()["FlightsResponse"]
    sector = body["Flight"]["Sector"]
    assert body["Flight"]["MarketingCarrierCode"] == "BA" and isinstance(sector, dict)
    assert sector["ScheduledDepartureDateTime"].startswith(DAY)
    assert sector["DepartureGateInformation"]["GateNumber"]
    assert british(client, key="wrong").status_code == 401
    assert british(client, flight="LH400").status_code == 404
    suffixed = client.get(
        f"/rest-v1/v1/flights;scheduledDepartureDate={DAY};flightNumber=BA117.json",
        headers={"client-key": "sandbox"})
    assert suffixed.json() == british(client).json()


def test_flightaware_ident_and_window(client: httpx.Client) -> None:
    """AeroAPI answers ICAO and IATA idents alike, UTC times with Z, ICAO aircraft types, and
    only legs departing inside the start/end window; a wrong key gets 401."""
    icao = flightaware(client, "DLH400").json()
    iata = flightaware(client, "LH400").json()
    assert icao == iata and len(icao["flights"]) == 1
    leg = icao["flights"][0]
    assert leg["ident_iata"] == "LH400" and leg["operator_iata"] == "LH"
    assert leg["scheduled_out"].endswith("Z") and len(leg["aircraft_type"]) == 4
    later = flightaware(client, "DLH400", day="2026-03-10").json()["flights"]
    assert [f["scheduled_out"][:10] for f in later] == ["2026-03-10"]
    refused = flightaware(client, key="wrong")
    assert refused.status_code == 401 and refused.json()["status"] == 401


# -- data -----------------------------------------------------------------------------------


def _amadeus_truth(client: httpx.Client, flight: str) -> tuple[str, str, datetime, str]:
    point = amadeus(client, flight=flight).json()["data"][0]["flightPoints"]
    dep = point[0]["departure"]
    return (point[0]["iataCode"], point[1]["iataCode"],
            datetime.fromisoformat(dep["timings"][0]["value"]).astimezone(UTC),
            dep["gate"]["mainGate"])


def _lufthansa_truth(client: httpx.Client, flight: str) -> tuple[str, str, datetime, str]:
    body = lufthansa(client, flight=flight).json()["FlightStatusResource"]["Flights"]["Flight"]
    utc = body["Departure"]["ScheduledTimeUTC"]["DateTime"].replace("Z", "+00:00")
    return (body["Departure"]["AirportCode"], body["Arrival"]["AirportCode"],
            datetime.fromisoformat(utc), body["Departure"]["Terminal"]["Gate"])


def _flightaware_truth(client: httpx.Client, flight: str) -> tuple[str, str, datetime, str]:
    leg = flightaware(client, flight).json()["flights"][0]
    return (leg["origin"]["code_iata"], leg["destination"]["code_iata"],
            datetime.fromisoformat(leg["scheduled_out"]), leg["gate_origin"])


def test_same_flight_twice_is_the_same(client: httpx.Client) -> None:
    """The synthetic data is deterministic: asking twice gives identical bodies."""
    assert lufthansa(client).json() == lufthansa(client).json()
    assert afklm(client).json() == afklm(client).json()


def test_providers_agree_on_the_truth(client: httpx.Client) -> None:
    """Route, scheduled departure instant and gate are the same in every provider's format."""
    for flight in ("LH400", "LX18", "OS77"):
        views = {_amadeus_truth(client, flight), _lufthansa_truth(client, flight),
                 _flightaware_truth(client, flight)}
        assert len(views) == 1, views


def test_different_flights_differ(client: httpx.Client) -> None:
    """Different designators or dates give different flights (the seed includes them all)."""
    views = {_amadeus_truth(client, f) for f in ("LH400", "LH401", "LH402", "LH403")}
    assert len(views) == 4
    assert amadeus(client, day="2026-03-03").json()["data"][0]["scheduledDepartureDate"] \
        == "2026-03-03"


def test_override_makes_one_provider_disagree() -> None:
    """A scenario override changes one provider's gate for one flight, nobody else's."""
    config = SandboxConfig.from_mapping({"now": NOW.isoformat(), "overrides": [
        {"provider": "lufthansa", "flight": "LH400", "fields": {"departure_gate": "Z99"}}]})
    with Sandbox(config) as sb, httpx.Client(base_url=sb.base_url) as http:
        assert _lufthansa_truth(http, "LH400")[3] == "Z99"
        assert _amadeus_truth(http, "LH400")[3] != "Z99"
        assert _lufthansa_truth(http, "LH401")[3] != "Z99"


def test_override_cancellation_is_rendered_per_format() -> None:
    """A cancellation override shows as CD at Lufthansa, cancelled at FlightAware and
    irregularity.cancelled Y at AF-KLM."""
    config = SandboxConfig.from_mapping({"now": NOW.isoformat(), "overrides": [
        {"fields": {"cancelled": True}}]})
    with Sandbox(config) as sb, httpx.Client(base_url=sb.base_url) as http:
        flight = lufthansa(http).json()["FlightStatusResource"]["Flights"]["Flight"]
        assert flight["FlightStatus"]["Code"] == "CD"
        assert flightaware(http).json()["flights"][0]["cancelled"] is True
        leg = afklm(http).json()["operationalFlights"][0]["flightLegs"][0]
        assert leg["irregularity"]["cancelled"] == "Y"


# -- latency, faults, counters ----------------------------------------------------------


def test_latency_is_applied_per_provider() -> None:
    """A provider's configured latency delays its answers by at least that long."""
    config = SandboxConfig(now=NOW, latency_ms={"flightaware": 150})
    with Sandbox(config) as sb, httpx.Client(base_url=sb.base_url) as http:
        started = time.monotonic()
        assert flightaware(http).status_code == 200
        assert time.monotonic() - started >= 0.15


def test_a_hanging_request_does_not_block_others() -> None:
    """While one request hangs, another is answered; stop() ends the hanging one."""
    config = SandboxConfig.from_mapping({"now": NOW.isoformat(), "hang_seconds": 600,
                                         "faults": [{"provider": "flightaware", "kind": "hang",
                                                     "times": 1}]})
    outcome: list[object] = []
    sb = Sandbox(config)
    url = sb.start()

    def hang() -> None:
        with httpx.Client(base_url=url, timeout=None) as http:
            try:
                outcome.append(flightaware(http).status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

    thread = threading.Thread(target=hang)
    thread.start()
    with httpx.Client(base_url=url, timeout=5) as http:
        while sb.stats()["flightaware"]["faults"] == 0:
            time.sleep(0.01)
        assert flightaware(http).status_code == 200
    assert thread.is_alive()
    sb.stop()
    thread.join()
    assert len(outcome) == 1


def _faulty(fault: dict[str, Any]) -> Sandbox:
    return Sandbox(SandboxConfig.from_mapping({"now": NOW.isoformat(), "faults": [fault]}))


def test_fault_status_5xx() -> None:
    """status_5xx answers the configured status in the provider's error format."""
    with _faulty({"provider": "amadeus", "kind": "status_5xx", "status": 502}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        response = amadeus(http)
    assert response.status_code == 502
    assert response.json()["errors"][0]["title"] == "SYSTEM ERROR HAS OCCURRED"


def test_fault_hang_outlasts_the_client_timeout() -> None:
    """hang keeps the client waiting past its timeout."""
    with _faulty({"provider": "flightaware", "kind": "hang", "seconds": 30}) as sb, \
            httpx.Client(base_url=sb.base_url, timeout=0.2) as http, \
            pytest.raises(httpx.ReadTimeout):
        flightaware(http)


def test_fault_rate_limit_sends_retry_after() -> None:
    """rate_limit answers 429 with Retry-After in seconds."""
    with _faulty({"provider": "lufthansa", "kind": "rate_limit", "retry_after": 7}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        response = lufthansa(http)
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"


def test_fault_malformed_json_and_wrong_shape() -> None:
    """malformed_json is a 200 that does not parse; wrong_shape parses but is no flight list."""
    with _faulty({"provider": "british_airways", "kind": "malformed_json"}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        broken = british(http)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    with _faulty({"provider": "british_airways", "kind": "wrong_shape"}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        shaped = british(http)
    assert shaped.status_code == 200 and "FlightsResponse" not in shaped.json()


def test_fault_expired_token_then_a_new_token_works() -> None:
    """expired_token refuses the next call with token-expired and revokes that token; a fresh
    token is accepted."""
    with _faulty({"provider": "amadeus", "kind": "expired_token"}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        old = token(http, "/v1/security/oauth2/token")
        first = amadeus(http, bearer=old)
        again = amadeus(http, bearer=old)
        fresh = amadeus(http)
    assert first.status_code == 401 and first.json()["errors"][0]["code"] == 38192
    assert again.status_code == 401
    assert fresh.status_code == 200


def test_fault_not_found() -> None:
    """not_found answers the provider's 404."""
    with _faulty({"provider": "airfrance_klm", "kind": "not_found"}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        response = afklm(http)
    assert response.status_code == 404 and response.json()["errors"][0]["name"] == "NOT_FOUND"


def test_fault_connection_close() -> None:
    """connection_close drops the connection without an answer."""
    with _faulty({"provider": "flightaware", "kind": "connection_close"}) as sb, \
            httpx.Client(base_url=sb.base_url) as http, \
            pytest.raises(httpx.RemoteProtocolError):
        flightaware(http)


def test_fault_times_lets_retries_succeed_and_counts() -> None:
    """A fault with times: 2 fails the first two calls only; stats count requests, token
    requests and faults per provider, and reset zeroes them and re-arms the fault."""
    with _faulty({"provider": "lufthansa", "kind": "status_5xx", "times": 2}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        bearer = token(http, "/v1/oauth/token")
        codes = [lufthansa(http, bearer=bearer).status_code for _ in range(3)]
        stats = http.get("/_sandbox/stats").json()
        assert http.post("/_sandbox/reset").status_code == 200
        after = sb.stats()
        again = lufthansa(http, bearer=bearer).status_code
    assert codes == [503, 503, 200]
    assert stats["lufthansa"] == {"requests": 3, "token_requests": 1, "faults": 2}
    assert stats["amadeus"] == {"requests": 0, "token_requests": 0, "faults": 0}
    assert after["lufthansa"] == {"requests": 0, "token_requests": 0, "faults": 0}
    assert again == 503


def test_fault_for_one_flight_only() -> None:
    """A fault naming a flight leaves the provider's other flights alone."""
    with _faulty({"provider": "*", "kind": "not_found", "flight": "LH0400"}) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        assert flightaware(http, "LH400").status_code == 404
        assert flightaware(http, "LH401").status_code == 200


def test_fail_rate_is_seeded() -> None:
    """fail_rate answers that share of calls with 503, the same calls for the same seed."""
    def run() -> list[int]:
        config = SandboxConfig(now=NOW, fail_rate=0.5, seed=3)
        with Sandbox(config) as sb, httpx.Client(base_url=sb.base_url) as http:
            return [flightaware(http).status_code for _ in range(12)]

    first = run()
    assert first == run()
    assert set(first) == {200, 503}
    with Sandbox(SandboxConfig(now=NOW, fail_rate=1)) as sb, \
            httpx.Client(base_url=sb.base_url) as http:
        assert afklm(http).status_code == 503


def test_scenario_can_be_replaced_at_run_time(client: httpx.Client, sandbox: Sandbox) -> None:
    """POST /_sandbox/scenario swaps the faults in; an invalid body is a 400 naming the key."""
    assert british(client).status_code == 200
    posted = client.post("/_sandbox/scenario", json={"faults": [
        {"provider": "british_airways", "kind": "status_5xx"}]})
    assert posted.status_code == 200
    assert british(client).status_code == 503
    assert sandbox.config.now == NOW  # keys the body leaves out keep their value
    bad = client.post("/_sandbox/scenario", json={"faults": [{"provider": "x", "kind": "hang"}]})
    assert bad.status_code == 400 and "faults[0].provider" in bad.json()["error"]
    sandbox.set_scenario({"faults": []})
    assert british(client).status_code == 200


# -- scenario files and helpers -------------------------------------------------------------


def test_scenario_yaml_loads(tmp_path: Path) -> None:
    """A scenario file sets latency, failures, faults and overrides."""
    path = tmp_path / "scenario.yaml"
    path.write_text(
        "now: 2026-03-01T12:00:00Z\n"
        "default_latency_ms: 5\n"
        "latency_ms: {lufthansa: 100}\n"
        "fail_rate: 0.1\n"
        "faults:\n"
        "  - {provider: amadeus, kind: rate_limit, retry_after: 3, times: 2}\n"
        "overrides:\n"
        "  - {provider: flightaware, flight: LH400, fields: {departure_gate: Z9}}\n")
    config = SandboxConfig.from_yaml(path)
    assert config.now == NOW
    assert config.latency_for("lufthansa") == 100 and config.latency_for("amadeus") == 5
    assert config.faults[0].kind == "rate_limit" and config.faults[0].times == 2
    assert config.overrides[0].fields == {"departure_gate": "Z9"}


@pytest.mark.parametrize(("text", "line", "key"), [
    ("faults:\n  - provider: amadeus\n    kind: explode\n", 3, "faults[0].kind"),
    ("latency_ms:\n  amadeus: 10\n  nobody: 5\n", 3, "latency_ms.nobody"),
    ("fail_rate: 2\n", 1, "fail_rate"),
    ("seed: 1\nsurprise: true\n", 2, "surprise"),
    ("overrides:\n  - fields: {status: landed}\n", 2, "overrides[0].fields.status"),
    ("faults: [\n", 2, ""),
])
def test_bad_scenario_names_the_line(tmp_path: Path, text: str, line: int, key: str) -> None:
    """A bad scenario raises ConfigError naming the file, the line and the key."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        SandboxConfig.from_yaml(path)
    assert f"{path}:{line}:" in caught.value.message
    assert key in caught.value.message


def test_sandbox_environment_points_every_provider_at_the_sandbox() -> None:
    """The environment names every provider's base URL and credential variable."""
    env = sandbox_environment("http://127.0.0.1:1234/")
    assert env["AMADEUS_BASE_URL"] == "http://127.0.0.1:1234"
    assert env["FLIGHTAWARE_BASE_URL"] == "http://127.0.0.1:1234/aeroapi"
    for provider in registry.BUILTINS:
        for name in registry.get(provider).credential_env:
            assert env[name] == "sandbox", name
    assert {k for k in env if k.endswith("_BASE_URL")} == {
        k for k in ENV_VARS if k.endswith("_BASE_URL")}


def test_serve_announces_then_stops_on_sigterm() -> None:
    """serve() prints the base URL first, serves, and returns on SIGTERM with the port closed."""
    seen: list[int] = []
    urls: list[str] = []

    def announce(url: str) -> None:
        urls.append(url)
        seen.append(httpx.get(f"{url}/_sandbox/stats").status_code)
        os.kill(os.getpid(), signal.SIGTERM)

    serve(SandboxConfig(now=NOW), 0, announce=announce)
    assert seen == [200]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{urls[0]}/_sandbox/stats")


def test_serve_on_a_port_in_use_is_an_option_error(sandbox: Sandbox) -> None:
    """`sandbox serve --port P` with P already taken exits 2 with one line saying the port is
    in use (invalid_option), not an internal error."""
    port = int(sandbox.base_url.rsplit(":", 1)[1])
    result = CliRunner().invoke(app, ["sandbox", "serve", "--port", str(port)])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2, result.stderr
    assert errors == [f"error: port {port} on 127.0.0.1 is in use"]
    assert json.loads(result.stdout)["error"]["code"] == "invalid_option"
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").status_code == 200


def test_unknown_path_and_method() -> None:
    """Paths no provider has are 404; a known path with the wrong method is 405."""
    with Sandbox() as sb, httpx.Client(base_url=sb.base_url) as http:
        assert http.get("/nowhere").status_code == 404
        assert http.get("/v1/oauth/token").status_code == 405


@pytest.mark.parametrize("path", sorted(
    (Path(__file__).parent.parent / "benchmarks" / "scenarios").glob("*.yaml")),
    ids=lambda p: p.name)
def test_bundled_scenarios_load(path: Path) -> None:
    """Every example scenario under benchmarks/scenarios is valid."""
    config = SandboxConfig.from_yaml(path)
    assert config.faults or config.overrides or config.default_latency_ms > 0


def test_afklm_flight_by_id_matches_the_search(client: httpx.Client) -> None:
    """GET /opendata/flightstatus/{id} answers the flight the search listed under that id;
    an id of a carrier AF-KLM does not cover is 404."""
    listed = afklm(client).json()["operationalFlights"][0]
    by_id = client.get(f"/opendata/flightstatus/{listed['id']}", headers={"API-Key": "sandbox"})
    assert by_id.status_code == 200 and by_id.json() == listed
    missing = client.get("/opendata/flightstatus/20260302+LH+0400",
                         headers={"API-Key": "sandbox"})
    assert missing.status_code == 404


def test_status_follows_the_sandbox_clock(client: httpx.Client) -> None:
    """A flight days before the sandbox's "now" has landed in every format; one days after
    has not departed."""
    past, future = "2026-02-26", "2026-03-05"
    landed = lufthansa(client, day=past).json()["FlightStatusResource"]["Flights"]["Flight"]
    assert landed["FlightStatus"]["Code"] == "LD" and "ActualTimeUTC" in landed["Arrival"]
    assert flightaware(client, day=past).json()["flights"][0]["actual_in"] is not None
    leg = afklm(client, day=past).json()["operationalFlights"][-1]["flightLegs"][-1]
    assert leg["legStatusPublic"] == "ARRIVED"
    waiting = lufthansa(client, day=future).json()["FlightStatusResource"]["Flights"]["Flight"]
    assert waiting["FlightStatus"]["Code"] == "NA" and "EstimatedTimeUTC" in waiting["Departure"]
    assert flightaware(client, day=future).json()["flights"][0]["actual_out"] is None


def test_sandbox_env_prints_exports_for_every_provider() -> None:
    """`sandbox env URL` prints one shell export per variable the providers read, with the
    same values `--sandbox` uses (FlightAware's /aeroapi path included); a URL that is not
    what `serve` prints is exit 2."""
    result = CliRunner().invoke(app, ["sandbox", "env", "http://127.0.0.1:8080/"])
    assert result.exit_code == 0, result.output
    exported = dict(line.removeprefix("export ").split("=", 1)
                    for line in result.stdout.splitlines())
    assert exported == sandbox_environment("http://127.0.0.1:8080")
    assert exported["FLIGHTAWARE_BASE_URL"] == "http://127.0.0.1:8080/aeroapi"

    for bad in ("ftp://127.0.0.1:8080", "http://127.0.0.1:8080/aeroapi", "not a url"):
        refused = CliRunner().invoke(app, ["sandbox", "env", bad])
        assert refused.exit_code == 2, bad
