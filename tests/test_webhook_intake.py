"""`flightsync ingest-webhook` end to end: flights are seeded by a real sync against the
sandbox, events go through the real CLI, and the database is read back to see what was (or
was not) written. Signatures are computed here from the Standard Webhooks definition."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from typer.testing import CliRunner

from flightsync.cli import app
from flightsync.engine import read_event
from flightsync.engine._inbound import _Changes
from flightsync.errors import WebhookPayloadError
from flightsync.models import OBSERVED_FIELDS
from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment

runner = CliRunner()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = "2026-03-02"
KEY = b"flightsync-intake-test-key-01234"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
SEEDED = (("LH400", DAY), ("KL419", DAY))   # KL419 flies three legs: AMS, IAD, GRU



@pytest.fixture(scope="module")
def sandbox_env() -> Iterator[dict[str, str]]:
    with Sandbox(SandboxConfig(now=NOW)) as running:
        yield sandbox_environment(running.base_url)


@pytest.fixture(scope="module")
def seeded_db(sandbox_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding SEEDED, synced once per module through the real CLI."""
    state = tmp_path_factory.mktemp("seed")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**sandbox_env, "FLIGHTSYNC_STATE_DIR": str(state)}.items():
            patch.setenv(name, value)
        for flight, day in SEEDED:
            result = runner.invoke(app, ["sync", flight, "--date", day])
            assert result.exit_code == 0, result.stderr
    structlog.reset_defaults()
    return state / "flightsync.db"


@pytest.fixture
def env(sandbox_env: dict[str, str], seeded_db: Path, state_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's state directory, holding a copy of the seeded database, with the sandbox
    environment and a webhook secret set. Returns the database path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(seeded_db, state_dir / "flightsync.db")
    for name, value in sandbox_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FLIGHTSYNC_WEBHOOK_SECRET", SECRET)
    return state_dir / "flightsync.db"


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "flight.updated", "provider": "lufthansa", "flight": "LH400", "date": DAY,
        "occurred_at": datetime.now(UTC).isoformat(),  # after the seeding sync
        "changes": {"departure_gate": "A26"},
    }
    body.update(overrides)
    return body


def signature(key: bytes, msg_id: str, stamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_args(body: bytes, msg_id: str, *, key: bytes = KEY, stamp: int | None = None,
                extra_signatures: tuple[str, ...] = ()) -> list[str]:
    when = int(time.time()) if stamp is None else stamp
    signatures = " ".join((*extra_signatures, signature(key, msg_id, when, body)))
    return ["--header", f"webhook-id: {msg_id}", "--header", f"webhook-timestamp: {when}",
            "--header", f"webhook-signature: {signatures}"]


def ingest(body: bytes, *args: str) -> Any:
    return runner.invoke(app, ["ingest-webhook", "-", *args], input=body)


def ingest_signed(payload: dict[str, Any] | bytes, msg_id: str = "evt_1", **kwargs: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return ingest(body, *signed_args(body, msg_id, **kwargs))


def rows(db: Path, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())
    finally:
        engine.dispose()


def leg(db: Path, carrier: str, number: int, origin: str | None = None) -> Any:
    found = rows(db, "SELECT * FROM flight WHERE carrier = :c AND flight_number = :n "
                 "ORDER BY leg_index", c=carrier, n=number)
    return next(r for r in found if origin is None or r.origin == origin)


def snapshot(db: Path) -> tuple[Any, ...]:
    """Everything an event could write: events, flights' versions and values, observations."""
    return (rows(db, "SELECT count(*) FROM webhook_event")[0][0],
            rows(db, "SELECT id, version, departure_gate, status FROM flight ORDER BY id"),
            rows(db, "SELECT count(*) FROM source_observation")[0][0],
            rows(db, "SELECT count(*) FROM flight_change")[0][0])


def error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- signatures -------------------------------------------------------------------------------

def test_a_signed_event_is_applied_and_recorded(env: Path) -> None:
    """A correctly signed event from the operating airline changes the stored gate, bumps the
    version, writes an audit row and the webhook_event row, and reports it as applied."""
    before = leg(env, "LH", 400)
    assert before.departure_gate != "A26"
    result = ingest_signed(event())
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "applied"
    assert out["event_id"] == "evt_1"
    assert out["changed_fields"] == ["departure_gate"]
    assert out["flight"]["departure_gate"] == "A26"
    after = leg(env, "LH", 400)
    assert (after.departure_gate, after.version) == ("A26", before.version + 1)
    events = rows(env, "SELECT event_id, source, outcome, flight_id FROM webhook_event")
    assert [tuple(e) for e in events] == [("evt_1", "lufthansa", "applied", after.id)]
    audit = rows(env, "SELECT source, new FROM flight_change WHERE field = 'departure_gate' "
                 "AND flight_id = :id ORDER BY id DESC", id=after.id)
    assert tuple(audit[0]) == ("lufthansa", '"A26"')


def test_a_replayed_event_is_a_duplicate_and_applies_nothing(env: Path) -> None:
    """The same event (id and body) again exits 0, reports duplicate and writes nothing; the
    same id with another body is no replay: rejected as webhook_id_reused (exit 2), nothing
    written (issue 19: it used to pass as a plain duplicate)."""
    first = event()
    assert ingest_signed(first).exit_code == 0
    state = snapshot(env)
    again = ingest_signed(first)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["status"] == "duplicate"
    assert snapshot(env) == state
    reused = ingest_signed(event(changes={"departure_gate": "B1"}))
    assert reused.exit_code == 2, reused.stderr
    out = json.loads(reused.stdout.strip().splitlines()[-1])
    assert (out["status"], out["error"]["code"]) == ("rejected", "webhook_id_reused")
    assert [line for line in reused.stderr.splitlines() if line.startswith("error:")] == [
        "error: webhook-id 'evt_1' was applied before with a different body: not a replay "
        "of that event and not applied; a new event needs a new id"]
    assert snapshot(env) == state


def test_a_rotated_signature_list_is_accepted(env: Path) -> None:
    """webhook-signature with an old secret's signature first and the current one second
    verifies (secret rotation)."""
    body = json.dumps(event()).encode()
    old = signature(b"an-older-secret-key", "evt_rot", int(time.time()), body)
    result = ingest(body, *signed_args(body, "evt_rot", extra_signatures=(old,)))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "applied"


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"key": b"the-wrong-key"}, "no v1 signature"),
    ({"stamp": int(time.time()) - 3600}, "outside the 300 s tolerance"),
])
def test_bad_or_expired_signatures_exit_2_and_write_nothing(
        env: Path, kwargs: dict[str, Any], problem: str) -> None:
    """A wrong signature or an expired timestamp: exit 2, one error line naming it, the
    rejected outcome in JSON, nothing written."""
    state = snapshot(env)
    result = ingest_signed(event(), **kwargs)
    assert result.exit_code == 2
    assert problem in error_line(result)
    out = json.loads(result.stdout)
    assert out["status"] == "rejected"
    assert out["error"]["code"] == "invalid_signature"
    assert snapshot(env) == state


def test_missing_signature_headers_are_rejected(env: Path) -> None:
    """With a secret configured, an event without signature headers is refused."""
    state = snapshot(env)
    result = ingest(json.dumps(event(id="evt_x")).encode())
    assert result.exit_code == 2
    assert "missing header" in error_line(result)
    assert snapshot(env) == state


def test_without_a_secret_every_event_is_refused_unless_insecure(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No FLIGHTSYNC_WEBHOOK_SECRET: refused with a message naming the variable and
    --insecure; with --insecure and no headers the id comes from the body's `id`."""
    monkeypatch.delenv("FLIGHTSYNC_WEBHOOK_SECRET")
    body = json.dumps(event(id="evt_body")).encode()
    refused = ingest(body)
    assert refused.exit_code == 2
    assert "FLIGHTSYNC_WEBHOOK_SECRET" in error_line(refused)
    assert "--insecure" in error_line(refused)
    accepted = ingest(body, "--insecure")
    assert accepted.exit_code == 0, accepted.stderr
    assert json.loads(accepted.stdout)["event_id"] == "evt_body"
    assert leg(env, "LH", 400).departure_gate == "A26"


# --- payload validation -----------------------------------------------------------------------

def test_the_schema_accepts_exactly_the_observed_fields() -> None:
    """The changes schema covers every field a provider can report and nothing else."""
    assert set(_Changes.model_fields) == set(OBSERVED_FIELDS)


BIG = "x" * 70_000
MALFORMED = [
    (b'{"type": "flight.updated", "provider": ', "malformed JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (event(extra="x"), "unknown key 'extra'"),
    (event(changes={"departure_gat": "A1"}), "unknown flight field 'departure_gat'"),
    (event(changes={"last_synced_at": "2026-03-02T10:00:00Z"}),
     "unknown flight field 'last_synced_at'"),
    (event(changes={"departure_gate": 12}), "changes.departure_gate"),
    (event(changes={"operating_flight_number": "400"}), "changes.operating_flight_number"),
    (event(changes={"codeshares": "LX7171"}), "changes.codeshares"),
    (event(changes={"destination": "Copenhagen"}), "changes.destination"),
    (event(changes={"estimated_departure": "2026-03-02T17:30:00"}), "timezone"),
    (event(changes={"estimated_departure": "half past five"}), "changes.estimated_departure"),
    (event(occurred_at="yesterday"), "occurred_at"),
    (event(changes={"status": "late"}), "changes.status"),
    (event(changes={"departure_gate": None}), "null"),
    (event(changes={}), "changes is empty"),
    (event(provider="aerodatabox"), "unknown provider 'aerodatabox'"),
    (event(flight="L"), "invalid flight designator"),
    (event(date="02.03.2026"), "invalid date"),
    (event(type="flight.deleted"), "type"),
    ({k: v for k, v in event().items() if k != "provider"}, "missing key 'provider'"),
    (event(changes={"departure_gate": BIG}), "exceeds the limit"),
]


@pytest.mark.parametrize(("payload", "problem"), MALFORMED)
def test_each_class_of_malformed_payload_is_refused(payload: dict[str, Any] | bytes,
                                                    problem: str) -> None:
    """Bad JSON, a non-object, unknown key or flight field, wrong types, naive or unparseable
    times, a status outside the vocabulary, null, no changes, an unknown provider, a bad
    designator or date, a wrong type, a missing key, an oversized body: each is a
    WebhookPayloadError (exit 2) with one line naming the problem."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(WebhookPayloadError) as caught:
        read_event(body, {"webhook-id": "evt_1"}, secret=None, tolerance_seconds=300,
                   max_bytes=65536, insecure=True, known_providers=("lufthansa", "flightaware"),
                   now=datetime.now(UTC))
    assert problem in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("payload", "problem"), [
    (MALFORMED[0][0], "malformed JSON"),
    (event(extra="x"), "unknown key 'extra'"),
    (event(changes={"departure_gat": "A1"}), "unknown flight field 'departure_gat'"),
    (event(changes={"estimated_departure": "2026-03-02T17:30:00"}), "timezone"),
    (event(changes={"departure_gate": BIG}), "exceeds the limit"),
    (event(origin="MUC"), "origin MUC is not a leg"),
])
def test_malformed_payloads_exit_2_and_write_nothing(
        env: Path, payload: dict[str, Any] | bytes, problem: str) -> None:
    """Through the CLI a malformed signed event is exit 2 with one error line naming the
    problem, the rejected outcome in JSON, and nothing written."""
    state = snapshot(env)
    result = ingest_signed(payload)
    assert result.exit_code == 2, result.stdout
    assert problem in error_line(result)
    out = json.loads(result.stdout)
    assert (out["status"], out["error"]["code"]) == ("rejected", "invalid_payload")
    assert snapshot(env) == state


def test_a_multi_leg_flight_needs_an_origin(env: Path) -> None:
    """KL419 has three stored legs: an event without origin is refused naming them; with
    origin IAD it changes only the second leg."""
    first = ingest_signed(event(provider="airfrance_klm", flight="KL419",
                                changes={"arrival_gate": "Q1"}), "evt_kl")
    assert first.exit_code == 2
    assert "origin is required" in error_line(first)
    assert "AMS, IAD, GRU" in error_line(first)
    legs_before = {r.origin: r.arrival_gate for r in rows(
        env, "SELECT origin, arrival_gate FROM flight WHERE carrier = 'KL'")}
    second = ingest_signed(event(provider="airfrance_klm", flight="KL419", origin="IAD",
                                 changes={"arrival_gate": "Q1"}), "evt_kl")
    assert second.exit_code == 0, second.stderr
    assert json.loads(second.stdout)["flight"]["leg_index"] == 1
    legs_after = {r.origin: r.arrival_gate for r in rows(
        env, "SELECT origin, arrival_gate FROM flight WHERE carrier = 'KL'")}
    assert legs_after == {**legs_before, "IAD": "Q1"}


# --- the conflict policy ------------------------------------------------------------------------

def test_a_webhook_loses_to_a_higher_priority_provider(env: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a priority policy a FlightAware gate cannot overwrite Lufthansa's: the event is
    applied (recorded as FlightAware's observation) but the stored gate stays, and the
    disagreement is reported as a conflict chosen by priority."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("mode: priority\n")
    config = tmp_path / "fs.yaml"
    config.write_text(f"policy: {policy}\n")
    monkeypatch.setenv("FLIGHTSYNC_CONFIG", str(config))
    before = leg(env, "LH", 400)
    result = ingest_signed(event(provider="flightaware", changes={"departure_gate": "Z99"}))
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "applied"
    assert out["changed_fields"] == []
    gate = next(c for c in out["conflicts"] if c["field"] == "departure_gate")
    assert gate["values"]["flightaware"] == "Z99"
    assert gate["chosen"] == before.departure_gate
    assert gate["rule"] == "priority"
    after = leg(env, "LH", 400)
    assert (after.departure_gate, after.version) == (before.departure_gate, before.version)
    explained = runner.invoke(app, ["explain", "LH400", "--date", DAY])
    fields = {f["field"]: f for f in json.loads(explained.stdout)["legs"][0]["fields"]}
    assert fields["departure_gate"]["observations"]["flightaware"] == "Z99"


def test_an_event_keeps_the_providers_other_fields(env: Path) -> None:
    """An event is a delta on the provider's own latest observation: a gate-only Lufthansa
    event leaves every other stored field as it was."""
    before = leg(env, "LH", 400)
    assert ingest_signed(event()).exit_code == 0
    after = leg(env, "LH", 400)
    unchanged = [name for name in OBSERVED_FIELDS if name != "departure_gate"]
    assert [getattr(after, n) for n in unchanged] == [getattr(before, n) for n in unchanged]


def test_a_change_drops_the_flights_cache_entries(env: Path) -> None:
    """After a webhook changes a flight, the next sync cannot answer from the cache."""
    assert json.loads(runner.invoke(app, ["sync", "LH400", "--date", DAY]).stdout)[
        "from_cache"] is False
    assert json.loads(runner.invoke(app, ["sync", "LH400", "--date", DAY]).stdout)[
        "from_cache"] is True
    assert json.loads(ingest_signed(event()).stdout)["changed_fields"] == ["departure_gate"]
    assert json.loads(runner.invoke(app, ["sync", "LH400", "--date", DAY]).stdout)[
        "from_cache"] is False


def test_an_event_for_an_unknown_flight_creates_it_when_it_names_the_origin(env: Path) -> None:
    """A flight never synced is created (tracked, due for a full sync) from an event that
    names its origin; without the origin it is refused."""
    changes = {"destination": "ORD", "scheduled_departure": "2026-03-02T15:00:00Z",
               "status": "scheduled", "departure_gate": "B20"}
    refused = ingest_signed(event(provider="flightaware", flight="UA900", changes=changes))
    assert refused.exit_code == 2
    assert "give its origin" in error_line(refused)
    created = ingest_signed(event(provider="flightaware", flight="UA900", origin="JFK",
                                  changes=changes), "evt_new")
    assert created.exit_code == 0, created.stderr
    row = leg(env, "UA", 900)
    assert (row.origin, row.destination, row.departure_gate, row.tracked) == (
        "JFK", "ORD", "B20", 1)
    assert json.loads(created.stdout)["changed_fields"]
