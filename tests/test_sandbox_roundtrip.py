"""Every real adapter fetches from the running sandbox over loopback and reads the same truth:
the sandbox and the adapters are independent implementations of docs/PROVIDERS.md, so agreement
here means both follow the documented formats the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from flightsync.config import load_settings
from flightsync.errors import (
    FlightNotFound,
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from flightsync.models import FlightQuery, Observation
from flightsync.providers import ProviderSet, build_providers, registry
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment
from flightsync.sandbox._truth import flight_truth

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = date(2026, 3, 2)
ALL = tuple(registry.BUILTINS)
# The providers that cover every carrier, whatever the flight.
EVERY_CARRIER = frozenset(name for name in ALL if registry.get(name).default_carriers is None)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(now=NOW)) as running:
        yield running


@pytest.fixture
def providers(sandbox: Sandbox, state_dir: Path) -> Iterator[ProviderSet]:
    settings = load_settings(None, sandbox_environment(sandbox.base_url))
    built = build_providers(settings, state_dir)
    try:
        yield built
    finally:
        built.close()


def _view(observation: Observation) -> list[tuple[Any, ...]]:
    return [(leg.origin, leg.destination, leg.scheduled_departure, leg.scheduled_arrival,
             leg.departure_gate) for leg in observation.legs]


def _truth(carrier: str, number: int, day: date) -> list[tuple[Any, ...]]:
    return [(leg.origin, leg.destination, leg.scheduled_departure.astimezone(UTC),
             leg.scheduled_arrival.astimezone(UTC), leg.departure_gate)
            for leg in flight_truth(carrier, number, day).legs]


def test_every_adapter_is_ready_against_the_sandbox(providers: ProviderSet) -> None:
    """With the sandbox environment every provider is configured, none skipped."""
    assert sorted(providers.adapters) == sorted(ALL), providers.skipped


@pytest.mark.parametrize(("designator", "own"), [
    ("LH400", {"lufthansa"}),
    ("LX18", {"lufthansa"}),
    ("AF1001", {"airfrance_klm"}),
    ("KL1001", {"airfrance_klm"}),
    ("BA117", {"british_airways"}),
    ("UA900", set()),
])
def test_covering_adapters_read_the_same_truth(providers: ProviderSet, designator: str,
                                               own: set[str]) -> None:
    """Every adapter covering the carrier reports the sandbox's route, scheduled UTC times and
    departure gate for the flight."""
    query = FlightQuery.parse(designator, DAY)
    covering = {name for name in providers.adapters if providers.covers(name, query.carrier)}
    assert covering == own | EVERY_CARRIER
    truth = _truth(query.carrier, query.number, DAY)
    views = {name: _view(providers.adapters[name].fetch(query)) for name in sorted(covering)}
    for name, view in views.items():
        assert view == truth, name


def test_multi_leg_flight_reads_the_same_in_every_format(providers: ProviderSet) -> None:
    """A three-leg KL flight comes back as the same three legs, in order, from every adapter
    that covers KL."""
    query = FlightQuery.parse("KL419", DAY)
    truth = _truth("KL", 419, DAY)
    assert len(truth) == 3
    for name in ("airfrance_klm", *sorted(EVERY_CARRIER - {"aerodatabox"})):
        assert _view(providers.adapters[name].fetch(query)) == truth, name
    # AeroDataBox files each leg under its own local departure date: it gives the legs that
    # leave on the flight's date, in order; the later ones come from the other providers.
    cut = _view(providers.adapters["aerodatabox"].fetch(query))
    assert 1 <= len(cut) < len(truth)
    assert cut == truth[:len(cut)]


def test_oauth_adapters_count_one_token_for_many_calls(providers: ProviderSet,
                                                       sandbox: Sandbox) -> None:
    """OAuth adapters fetch a token once and reuse it across calls."""
    for number in (400, 401, 402):
        providers.adapters["lufthansa"].fetch(FlightQuery.parse(f"LH{number}", DAY))
    stats = sandbox.stats()["lufthansa"]
    assert stats == {"requests": 3, "token_requests": 1, "faults": 0}


_FLIGHT_OF = {"amadeus": "LH400", "lufthansa": "LH400", "airfrance_klm": "KL1001",
              "british_airways": "BA117", "flightaware": "LH400",
              "cirium": "LH400", "aviationstack": "LH400", "aerodatabox": "LH400"}


_FAULTS: tuple[tuple[dict[str, Any], type[ProviderError]], ...] = (
    ({"kind": "status_5xx", "status": 502}, ProviderUnavailable),
    ({"kind": "rate_limit", "retry_after": 4}, ProviderRateLimited),
    ({"kind": "not_found"}, FlightNotFound),
    ({"kind": "malformed_json"}, ProviderBadResponse),
    ({"kind": "wrong_shape"}, ProviderBadResponse),
    ({"kind": "connection_close"}, ProviderUnavailable),
)


@pytest.mark.parametrize("provider", ALL)
def test_adapters_map_sandbox_faults(providers: ProviderSet, sandbox: Sandbox,
                                     provider: str) -> None:
    """Each scripted fault reaches the adapter as the matching ProviderError."""
    query = FlightQuery.parse(_FLIGHT_OF.get(provider, "LH400"), DAY)
    for fault, error in _FAULTS:
        sandbox.set_scenario({"faults": [{"provider": provider, **fault}]})
        with pytest.raises(error) as caught:
            providers.adapters[provider].fetch(query)
        if isinstance(caught.value, ProviderRateLimited):
            assert caught.value.retry_after == 4


@pytest.mark.parametrize("provider", ["amadeus", "lufthansa"])
def test_oauth_adapters_survive_an_expired_token(providers: ProviderSet, sandbox: Sandbox,
                                                 provider: str) -> None:
    """After the provider says the token expired, the adapter gets a new token and the next
    fetch succeeds (in the same call or on a retry)."""
    query = FlightQuery.parse("LH400", DAY)
    adapter = providers.adapters[provider]
    adapter.fetch(query)
    sandbox.set_scenario({"faults": [{"provider": provider, "kind": "expired_token"}]})
    try:
        observation = adapter.fetch(query)
    except ProviderAuthError:
        observation = adapter.fetch(query)
    assert _view(observation) == _truth("LH", 400, DAY)
    assert sandbox.stats()[provider]["token_requests"] == 2
