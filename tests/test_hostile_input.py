"""Hostile input (issue 8), generated with hypothesis: flight designators, dates, batch files,
webhook payloads and provider payloads.

The promise: only clean errors. Through the real CLI: an exit code of docs/CONTRACTS.md section 2,
at most one `error:` line, never a traceback, and when the input is refused (exit 2) not one
row written. Through each adapter's parser: only ProviderError subclasses escape.

Example counts are small so the suite stays fast; `--heavy` multiplies them by 20.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightsync.config import ProviderSettings
from flightsync.engine import read_batch
from flightsync.errors import InputError, ProviderError
from flightsync.models import FlightQuery
from flightsync.providers import registry
from tests._e2e import (
    PROVIDERS,
    Outcome,
    invoke,
    migrated_template,
    row_counts,
    seed_database,
)

FIXTURES = Path(__file__).parent / "fixtures"
HEAVY_FACTOR = 20
WEBHOOK_KEY = b"hostile-input-webhook-key-0123456789"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(WEBHOOK_KEY).decode()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=5),
    max_leaves=25)
designators = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A[A-Za-z0-9]{2,3} ?[0-9]{0,6}[A-Za-z]?\Z"),
    st.sampled_from(["LH400", "lh 1", "LH0000", "LH99999", "L", "", " ", "LH-400", "LH400AB",
                     "\u041b\u0425400", "LH\uff14\uff10\uff10", "LH\n400", "--force", "LH400\x00"]),
)
dates = st.one_of(
    st.text(max_size=30),
    st.dates().map(str),
    st.sampled_from(["2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31", "2026-2-5",
                     "20260225", "2026-02-25T00:00", "2026-02-25\n", "-1"]),
)


def examples(heavy: bool, default: int) -> settings:
    return settings(max_examples=default * (HEAVY_FACTOR if heavy else 1), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)


@pytest.fixture
def db(tmp_path: Path, state_dir: Path) -> Path:
    """A migrated database where the CLI will look for it."""
    return seed_database(migrated_template(tmp_path / "template"), state_dir)


def assert_refused_cleanly(outcome: Outcome, before: dict[str, int], db: Path,
                           allowed: set[int]) -> None:
    outcome.assert_clean()
    assert outcome.exit_code in allowed, (outcome.exit_code, outcome.stderr[-1500:])
    if outcome.exit_code == 2:
        assert len(outcome.error_lines()) == 1, outcome.stderr
        assert row_counts(db) == before


# --- designators and dates -----------------------------------------------------------------

def test_flight_query_parse_raises_only_input_errors(heavy: bool) -> None:
    """FlightQuery.parse either accepts a designator and date or raises InputError (exit 2)
    with a one-line message; an accepted designator normalizes to itself."""

    @examples(heavy, 300)
    @given(designators, dates)
    def check(designator: str, day: str) -> None:
        try:
            query = FlightQuery.parse(designator, day)
        except InputError as exc:
            assert exc.exit_code == 2 and "\n" not in exc.message.strip()
            return
        again = FlightQuery.parse(query.designator, query.departure_date)
        assert again == query

    check()


def test_sync_refuses_bad_designators_and_dates(db: Path, heavy: bool) -> None:
    """`sync` with any designator and date and no provider configured exits 2 with one
    `error:` line (invalid flight, invalid date, usage or no provider) and writes nothing."""
    before = row_counts(db)

    @examples(heavy, 15)
    @given(designators, dates)
    def check(designator: str, day: str) -> None:
        outcome = invoke(["sync", designator, "--date", day], {})
        assert_refused_cleanly(outcome, before, db, {2})

    check()


# --- batch files ---------------------------------------------------------------------------

def _csv(rows: list[tuple[str, str]]) -> bytes:
    return ("flight,date\n" + "".join(f"{f},{d}\n" for f, d in rows)).encode()


def _jsonl(items: list[Any]) -> bytes:
    return "".join(json.dumps(item) + "\n" for item in items).encode()


batch_bodies = st.one_of(
    st.binary(max_size=300),
    st.lists(st.tuples(designators, dates), max_size=6).map(_csv),
    st.lists(st.one_of(json_values, st.fixed_dictionaries(
        {"flight": designators, "date": dates})), max_size=6).map(_jsonl),
    st.text(max_size=200).map(lambda t: t.encode("utf-16")),
    st.text(max_size=200).map(lambda t: t.encode("latin-1", "replace")),
    st.integers(5000, 20000).map(lambda n: b'{"flight": "' + b"L" * n + b'", "date": "x"}\n'),
    st.integers(5000, 20000).map(lambda n: b"flight,date\nLH400," + b"9" * n + b"\n"),
)


def test_read_batch_raises_only_input_errors(heavy: bool) -> None:
    """Any bytes as a batch file: parsed into queries and numbered rejected lines, or one
    InputError (exit 2); --strict never returns a rejected line."""

    @examples(heavy, 300)
    @given(batch_bodies, st.booleans())
    def check(body: bytes, strict: bool) -> None:
        try:
            parsed = read_batch(body, name="hostile.csv", strict=strict, limit=1000)
        except InputError as exc:
            assert exc.exit_code == 2 and "\n" not in exc.message.strip()
            return
        assert not (strict and parsed.rejected)
        for rejected in parsed.rejected:
            assert rejected["error"]["message"].startswith(f"line {rejected['line']}:")

    check()


def test_batch_command_handles_hostile_files(db: Path, tmp_path: Path, heavy: bool) -> None:
    """`batch FILE` (and `--strict`) on hostile files exits 0, 1 or 2, cleanly; a refused
    file (exit 2) writes nothing."""

    @examples(heavy, 15)
    @given(batch_bodies, st.booleans())
    def check(body: bytes, strict: bool) -> None:
        before = row_counts(db)
        path = tmp_path / "hostile-batch"
        path.write_bytes(body)
        args = ["batch", str(path), *(["--strict"] if strict else [])]
        assert_refused_cleanly(invoke(args, {}), before, db, {0, 1, 2})

    check()


# --- webhooks ------------------------------------------------------------------------------

VALID_EVENT = {"type": "flight.updated", "provider": "lufthansa", "flight": "LH400",
               "date": "2026-03-01", "occurred_at": "2026-03-01T09:30:00Z",
               "changes": {"departure_gate": "C16", "status": "delayed",
                           "estimated_departure": "2026-03-01T09:45:00Z"}}


def _sign(event_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(WEBHOOK_KEY, signed, hashlib.sha256).digest()
                                    ).decode()


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with up to three random edits: a value replaced, a key dropped or added."""
    value = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        containers = _containers(value)
        if not containers:
            return draw(json_values)
        holder = draw(st.sampled_from(containers))
        keys = list(holder) if isinstance(holder, dict) else list(range(len(holder)))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "add" or not keys:
            if isinstance(holder, dict):
                holder[draw(st.text(max_size=12))] = draw(json_values)
            else:
                holder.append(draw(json_values))
        elif action == "drop":
            del holder[draw(st.sampled_from(keys))]
        else:
            holder[draw(st.sampled_from(keys))] = draw(json_values)
    return value


def _containers(value: Any) -> list[Any]:
    found = []
    if isinstance(value, dict | list):
        found.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            found.extend(_containers(child))
    return found


webhook_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated(VALID_EVENT).map(lambda v: json.dumps(v).encode()),
    st.integers(70_000, 90_000).map(lambda n: b'{"type": "' + b"x" * n + b'"}'),
)
header_values = st.text(max_size=60).filter(lambda t: "\n" not in t and "\r" not in t)


def test_ingest_webhook_refuses_hostile_events(db: Path, tmp_path: Path, heavy: bool) -> None:
    """Signed-but-mutated events, random bodies and forged or garbled headers: exit 0 (applied
    or a duplicate) or 2 (refused, nothing written), one `error:` line, no traceback."""
    env = {"FLIGHTSYNC_WEBHOOK_SECRET": WEBHOOK_SECRET}

    @examples(heavy, 20)
    @given(webhook_bodies, st.sampled_from(["signed", "forged", "garbled", "none"]),
           st.text(min_size=1, max_size=30).filter(str.isprintable), header_values)
    def check(body: bytes, signing: str, event_id: str, garbage: str) -> None:
        before = row_counts(db)
        path = tmp_path / "event.json"
        path.write_bytes(body)
        now = str(int(time.time()))
        headers: list[str] = []
        if signing == "signed":
            headers = [f"webhook-id: {event_id}", f"webhook-timestamp: {now}",
                       f"webhook-signature: {_sign(event_id, now, body)}"]
        elif signing == "forged":
            headers = [f"webhook-id: {event_id}", f"webhook-timestamp: {now}",
                       f"webhook-signature: {_sign(event_id, now, body + b' ')}"]
        elif signing == "garbled":
            headers = [f"webhook-id: {garbage}", f"webhook-timestamp: {garbage}",
                       f"webhook-signature: {garbage}", garbage]
        args = ["ingest-webhook", str(path)]
        for header in headers:
            args += ["--header", header]
        outcome = invoke(args, env)
        allowed = {0, 1, 2} if signing == "signed" else {2}
        assert_refused_cleanly(outcome, before, db, allowed)

    check()


# --- provider payloads ---------------------------------------------------------------------

SEEDS = {  # a recorded payload per provider and the query it answers
    "amadeus": ("amadeus/flight_tp487_spec.json", "TP487", "2023-08-01"),
    "lufthansa": ("lufthansa/flightstatus_lh400.json", "LH400", "2017-09-07"),
    "airfrance_klm": ("airfrance_klm/flight_af7711.json", "AF7711", "2021-09-23"),
    "british_airways": ("british_airways/ba117_departed.json", "BA117", "2026-07-15"),
    "flightaware": ("flightaware/kl419_multi_leg.json", "KL419", "2026-02-25"),
    "cirium": ("cirium/fr111_answered_by_ldm111.json", "FR111", "2019-11-29"),
    "aerodatabox": ("aerodatabox/kl1167_older_schema_codeshares.json", "KL1167", "2023-01-10"),
    "aviationstack": ("aviationstack/flights_issue2_tr428.json", "TR428", "2020-02-04"),
}


class _StaticTokens:
    """A TokenSource (the real protocol) that always has a token."""

    def token(self) -> str:
        return "fuzz-token"

    def invalidate(self, rejected: str) -> None:
        return None


def _adapter(provider: str, answer: Callable[[], bytes]) -> Any:
    cls = registry.get(provider)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answer(),
                              headers={"Content-Type": "application/json"})

    client = httpx.Client(base_url="https://provider.invalid",
                          transport=httpx.MockTransport(handle))
    credentials = {"client_id": "fuzz-id", "client_secret": "fuzz-secret",
                   "api_key": "fuzz-key", "app_id": "fuzz-app-id", "app_key": "fuzz-app-key"}
    tokens = _StaticTokens() if cls.uses_oauth else None
    return cls(client, ProviderSettings(credentials=credentials), tokens), client


@pytest.mark.parametrize("provider", PROVIDERS)
def test_adapters_raise_only_provider_errors(provider: str, heavy: bool) -> None:
    """Random JSON, random bytes and mutations of a real payload through the adapter's
    parser: an Observation or a ProviderError, never anything else."""
    name, flight, day = SEEDS[provider]
    seed = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if provider == "airfrance_klm":  # the fixture holds one flight of the search answer
        seed = {"operationalFlights": [seed]}
    query = FlightQuery.parse(flight, day)
    body = {"bytes": b""}
    adapter, client = _adapter(provider, lambda: body["bytes"])

    @examples(heavy, 120)
    @given(st.one_of(
        mutated(seed).map(lambda v: json.dumps(v).encode()),
        mutated(seed).map(lambda v: json.dumps(v).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200)))
    def check(payload: bytes) -> None:
        body["bytes"] = payload
        with contextlib.suppress(ProviderError):  # the only exceptions allowed out
            adapter.fetch(query)

    try:
        body["bytes"] = json.dumps(seed).encode()
        assert adapter.fetch(query).legs, "the seed payload itself must parse"
        check()
    finally:
        client.close()
