"""Inputs that used to crash (exit 70) or be accepted wrongly, each refused or handled now
(issue 19, items 4 to 6): one `error:` line, a documented exit code, nothing written.

Most run the CLI in process; the unbounded inputs (/dev/urandom, /dev/zero) also run as a
real process, where reading without a bound would show as memory or time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3
import time
from pathlib import Path

import diskcache
import pytest

from tests._e2e import Outcome, invoke, migrated_template, row_counts, run, seed_database

KEY = b"refusals-test-webhook-key-0123456789"
SECRET = "whsec_" + base64.b64encode(KEY).decode()


@pytest.fixture
def db(tmp_path: Path, state_dir: Path) -> Path:
    return seed_database(migrated_template(tmp_path / "template"), state_dir)


def refused(outcome: Outcome, db: Path, before: dict[str, int], *, needle: str) -> None:
    """Exit 2, exactly one line on stderr (the run is -q), naming the problem; no row."""
    outcome.assert_clean()
    assert outcome.exit_code == 2, outcome.stderr
    assert outcome.stderr.strip().splitlines() == outcome.error_lines(), outcome.stderr
    assert len(outcome.error_lines()) == 1
    assert needle in outcome.error_lines()[0], outcome.error_lines()
    assert row_counts(db) == before


# --- batch ---------------------------------------------------------------------------------

def test_a_csv_field_past_the_csv_module_limit_is_a_bad_line(db: Path, tmp_path: Path) -> None:
    """A field of 140,000 characters (over csv's 131,072 limit, which raised _csv.Error, exit
    70) is reported as line 2, too long; --strict refuses the file (exit 2)."""
    path = tmp_path / "big.csv"
    path.write_text("flight,date\nLH400," + "x" * 140_000 + "\n")
    before = row_counts(db)
    outcome = invoke(["-q", "batch", str(path), "--dry-run"])
    outcome.assert_clean()
    assert outcome.exit_code == 1
    [line] = outcome.json["failed"]
    assert (line["line"], line["error"]["code"]) == (2, "line_too_long")
    refused(invoke(["-q", "batch", str(path), "--strict"]), db, before,
            needle="1 bad line(s), nothing run")


def test_an_open_quote_does_not_swallow_the_lines_after_it(db: Path, tmp_path: Path) -> None:
    """Each CSV line is read on its own: a quote left open on line 2 makes line 2 bad, not
    lines 2 to the end (one huge field)."""
    path = tmp_path / "quote.csv"
    path.write_text('flight,date\n"LH400,2026-03-01\nLH401,2026-03-01\n')
    outcome = invoke(["-q", "batch", str(path), "--dry-run"])
    assert outcome.exit_code == 1, outcome.stderr
    assert [f["flight"] for f in outcome.json["flights"]] == ["LH401"]
    assert [f["line"] for f in outcome.json["failed"]] == [2]


def test_batch_input_over_8_mib_is_refused(db: Path) -> None:
    """stdin of 8 MiB + 1 byte is refused by its size (exit 2), read no further."""
    before = row_counts(db)
    outcome = invoke(["-q", "batch", "-"], stdin=b"flight,date\n" + b"\n" * (8 * 1024 * 1024))
    refused(outcome, db, before, needle="-: larger than 8 MiB, the limit of a batch input")


def test_batch_from_an_endless_device_is_refused_as_a_process(db: Path) -> None:
    """`batch /dev/urandom` (grew to 1.8 GB before) stops at the limit: exit 2."""
    before = row_counts(db)
    outcome = run(["-q", "batch", "/dev/urandom"], {}, timeout=60)
    refused(outcome, db, before, needle="/dev/urandom: larger than 8 MiB")


# --- designators ---------------------------------------------------------------------------

@pytest.mark.parametrize("designator", ["\u00dfA400", "\ufb01400", "\uff2c\uff28400",
                                        "LH\u0660400", "LH\u3000400"])
def test_non_ascii_designators_are_refused(db: Path, tmp_path: Path, designator: str) -> None:
    """Letters that upper-case into ASCII (ß -> SS: SSA400, ﬁ -> FI: FI400), full-width
    letters, Arabic-Indic digits and an ideographic space: `sync` exits 2, a batch line is
    bad, nothing synced."""
    before = row_counts(db)
    refused(invoke(["-q", "sync", designator, "--date", "2026-03-01"]), db, before,
            needle="only ASCII letters, digits and spaces")
    path = tmp_path / "batch.csv"
    path.write_text(f"flight,date\n{designator},2026-03-01\n", encoding="utf-8")
    outcome = invoke(["-q", "batch", str(path), "--dry-run"])
    assert outcome.exit_code == 1
    assert outcome.json["flights"] == []
    assert outcome.json["failed"][0]["error"]["code"] == "invalid_flight"


# --- webhooks ------------------------------------------------------------------------------

def _signed(body: bytes, msg_id: str) -> list[str]:
    stamp = int(time.time())
    mac = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return ["--header", f"webhook-id: {msg_id}", "--header", f"webhook-timestamp: {stamp}",
            "--header", f"webhook-signature: v1,{base64.b64encode(mac).decode()}"]


@pytest.mark.parametrize(("where", "value"), [
    ("occurred_at", "0001-01-01T00:00:00+14:00"),
    ("occurred_at", "9999-12-31T23:59:59-14:00"),
    ("estimated_departure", "0001-01-01T00:00:00+14:00"),
    ("actual_arrival", "9999-12-31T23:59:59Z"),
    ("scheduled_departure", "1969-12-31T23:59:59Z"),
])
def test_extreme_event_times_are_refused(db: Path, tmp_path: Path, where: str,
                                         value: str) -> None:
    """Valid ISO 8601 times without a UTC form (overflow, exit 70 before) or outside 1970 to
    2100: the event is rejected (exit 2), nothing written."""
    event = {"type": "flight.updated", "provider": "flightaware", "flight": "UA900",
             "date": "2026-03-02", "occurred_at": "2026-03-01T10:00:00Z", "origin": "JFK",
             "changes": {"departure_gate": "B1"}}
    if where == "occurred_at":
        event["occurred_at"] = value
    else:
        event["changes"] = {where: value}
    body = json.dumps(event).encode()
    path = tmp_path / "event.json"
    path.write_bytes(body)
    before = row_counts(db)
    outcome = invoke(["-q", "ingest-webhook", str(path), *_signed(body, "evt_time")],
                     {"FLIGHTSYNC_WEBHOOK_SECRET": SECRET})
    refused(outcome, db, before, needle=f"{where}: ")


def test_control_characters_in_event_values_are_refused(db: Path, tmp_path: Path) -> None:
    """A NUL (JSON \\u0000) in a gate, which PostgreSQL cannot store: rejected, exit 2."""
    body = json.dumps({"type": "flight.updated", "provider": "flightaware", "flight": "UA900",
                       "date": "2026-03-02", "occurred_at": "2026-03-01T10:00:00Z",
                       "origin": "JFK", "changes": {"departure_gate": "B\u00001"}}).encode()
    path = tmp_path / "event.json"
    path.write_bytes(body)
    before = row_counts(db)
    outcome = invoke(["-q", "ingest-webhook", str(path), *_signed(body, "evt_nul")],
                     {"FLIGHTSYNC_WEBHOOK_SECRET": SECRET})
    refused(outcome, db, before, needle="changes.departure_gate")


def test_a_webhook_file_from_an_endless_device_is_refused(db: Path) -> None:
    """`ingest-webhook /dev/zero` reads one byte past webhooks.max_bytes and refuses."""
    before = row_counts(db)
    outcome = invoke(["-q", "ingest-webhook", "/dev/zero", "--insecure"])
    refused(outcome, db, before, needle="payload exceeds the limit of 65536 bytes")


# --- config and policy ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "needle"), [
    ("http:\n  max_workers: " + "9" * 5000 + "\n", "a number too long to read"),
    ("batch: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 32 levels deep"),
    ("".join("  " * depth + f"k{depth}:\n" for depth in range(40)) + "  " * 40 + "v: 1\n",
     "nested more than 32 levels deep"),
    ("alerts:\n  unsynced_for_seconds: .inf\n", "alerts.unsynced_for_seconds"),
    ("alerts:\n  unsynced_departing_hours: 1e300\n", "alerts.unsynced_departing_hours"),
    ("alerts:\n  unsynced_for_seconds: -2.3e+205\n", "alerts.unsynced_for_seconds"),
    ("batch:\n  lease_seconds: 1.0e+300\n", "batch.lease_seconds"),
    ("cache:\n  ttl_active_seconds: .nan\n", "cache.ttl_active_seconds"),
    ("webhooks:\n  max_bytes: " + "9" * 4000 + "\n", "webhooks.max_bytes"),
])
def test_extreme_config_values_are_refused(db: Path, tmp_path: Path, text: str,
                                           needle: str) -> None:
    """Integers of thousands of digits, YAML nested thousands deep, and durations that would
    overflow a datetime later (.inf, 1e300, .nan): exit 2 naming the file, for `status`
    too (which crashed on the alert thresholds)."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    before = row_counts(db)
    for command in (["status"], ["sync", "LH400", "--date", "2026-03-01"]):
        outcome = invoke(["-q", "--config", str(path), *command])
        refused(outcome, db, before, needle=needle)
        assert f"config file {path}" in outcome.stderr


@pytest.mark.parametrize(("text", "needle"), [
    ("time_tolerance_minutes: " + "9" * 5000 + "\n", "a number too long to read"),
    ("time_tolerance_minutes: .inf\n", "expected a number of minutes >= 0 and <= 1440"),
    ("fields: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "nested more than 32 levels"),
])
def test_extreme_policy_values_are_refused(db: Path, tmp_path: Path, text: str,
                                           needle: str) -> None:
    """The same for a policy file (named by the config): exit 2 naming the policy file."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    config = tmp_path / "config.yaml"
    config.write_text(f"policy: {policy}\n")
    before = row_counts(db)
    outcome = invoke(["-q", "--config", str(config), "sync", "LH400", "--date", "2026-03-01"])
    refused(outcome, db, before, needle=needle)
    assert str(policy) in outcome.stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_config_file_from_an_endless_device_is_refused_as_a_process(db: Path,
                                                                      device: str) -> None:
    """`--config /dev/zero` (killed by the kernel before) stops at 1 MiB: exit 2."""
    before = row_counts(db)
    outcome = run(["-q", "--config", device, "status"], {}, timeout=60)
    refused(outcome, db, before, needle=f"config file {device}: larger than 1 MiB")


def test_a_policy_file_from_an_endless_device_is_refused(db: Path, tmp_path: Path) -> None:
    """A policy file that never ends is refused at 1 MiB: exit 2."""
    config = tmp_path / "config.yaml"
    config.write_text("policy: /dev/zero\n")
    before = row_counts(db)
    outcome = invoke(["-q", "--config", str(config), "sync", "LH400", "--date", "2026-03-01"])
    refused(outcome, db, before, needle="/dev/zero: larger than 1 MiB")


# --- damaged state -------------------------------------------------------------------------

def _damage(state_dir: Path) -> None:
    """A breaker row of the wrong shape, one of the wrong types, one whose bytes no longer
    unpickle, and a counter whose bytes no longer unpickle."""
    with diskcache.Cache(str(state_dir / "breakers")) as breakers:
        breakers.set("lufthansa", ("open", "x", "y", None, None))
        breakers.set("amadeus", ("open", 1, "not a time", None, None))
        breakers.set("flightaware", ("open", 1, 1.0, 1.0, None))
    with diskcache.Cache(str(state_dir / "counters")) as counters:
        counters.set("cache.misses", 5)
    for name, key in (("breakers", "flightaware"), ("counters", "cache.misses")):
        with sqlite3.connect(state_dir / name / "cache.db") as conn:
            conn.execute("UPDATE Cache SET mode = 4, value = x'deadbeef' WHERE key = ?", (key,))
        conn.close()


def test_damaged_breakers_and_counters_read_as_closed_and_reset(db: Path,
                                                                 state_dir: Path) -> None:
    """Damaged breaker and counter entries made every sync and `status` exit 70. Now
    `status` shows the breakers closed and the counter at 0, a sync runs its providers,
    each with a state.unreadable warning, and the counter starts again."""
    _damage(state_dir)
    status = invoke(["status"])
    status.assert_clean()
    assert status.exit_code == 0, status.stderr
    breakers = status.json["breakers"]
    assert {name: breakers[name]["state"] for name in ("lufthansa", "amadeus", "flightaware")} \
        == dict.fromkeys(("lufthansa", "amadeus", "flightaware"), "closed")
    assert status.json["cache"]["misses"] == 0
    warned = {(e["part"], e["key"]) for e in status.events("state.unreadable")}
    assert warned == {("breakers", "lufthansa"), ("breakers", "amadeus"),
                      ("breakers", "flightaware"), ("counters", "cache.misses")}
    assert row_counts(db)["sync_run"] == 0


def test_a_sync_runs_through_damaged_state(db: Path, state_dir: Path,
                                           tmp_path: Path) -> None:
    """`sync --sandbox` with damaged breakers and counters syncs the flight (exit 0) from
    every provider; the damaged miss counter starts again from this sync's misses, and a
    later `status` reads it without a warning. (`--sandbox` runs keep their state in the
    state directory's `sandbox/` folder: that is the state damaged here.)"""
    _damage(state_dir / "sandbox")
    synced = invoke(["--sandbox", "sync", "LH400", "--date", "2026-03-01", "--no-notify"])
    synced.assert_clean()
    assert synced.exit_code == 0, synced.stderr
    assert synced.json["sync_status"] in ("synced", "conflict")
    assert {s["name"] for s in synced.json["sources"] if s["ok"]} >= {
        "lufthansa", "amadeus", "flightaware"}
    assert synced.events("state.unreadable")
    status = invoke(["--sandbox", "status"])
    assert status.exit_code == 0
    assert not [e for e in status.events("state.unreadable") if e["part"] == "counters"]
    assert status.json["cache"]["misses"] == len(synced.json["sources"])
