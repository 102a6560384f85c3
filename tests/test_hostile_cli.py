"""Property-based hostile input through the real CLI (issue 19): designators, dates,
timestamps, config values and batch lines, generated with hypothesis.

Whatever the input, the command ends with an exit code of the README's table (never 70), no
traceback, and a refusal (exit 2) is one line on stderr (`-q`: nothing but errors there)
with not one row written. The generators lean on what broke before: letters that upper-case
into ASCII, ISO times at the ends of the calendar with extreme offsets, integers of thousands
of digits, YAML nested deeper than Python's stack, CSV fields past the csv module's limit.

Example counts are modest so the suite stays fast; `--heavy` multiplies them by 20. Most
examples run in process (Typer's runner); `test_the_real_process_refuses_hostile_config`
runs a few as real processes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests._e2e import Outcome, invoke, migrated_template, row_counts, run, seed_database

HEAVY_FACTOR = 20
DOCUMENTED = {0, 1, 2, 3, 4, 5}
KEY = b"hostile-cli-webhook-key-0123456789"
SECRET = "whsec_" + base64.b64encode(KEY).decode()

# Letters whose upper case is ASCII (U+00DF -> SS, U+FB01 -> FI, U+017F -> S, U+0131 -> I),
# look-alikes, non-ASCII digits and spaces, beside the ASCII a designator is made of.
_FOLDING = "\u00df\ufb01\ufb00\u017f\u0131\u0130\uff2c\uff28\u0660\u0966\u3000\u00a0\u2007"
designators = st.one_of(
    st.from_regex(r"\A[A-Za-z0-9]{2,3} ?[0-9]{1,4}[A-Za-z]?\Z"),
    st.text(alphabet=st.sampled_from("ABLHZ0149 " + _FOLDING), min_size=1, max_size=10),
    st.text(max_size=20),
)
dates = st.one_of(st.dates().map(str), st.text(alphabet="0123456789-\u0660\uff10", max_size=12),
                  st.text(max_size=12))
_OFFSETS = st.sampled_from(["Z", "+14:00", "-14:00", "+23:59", "-23:59", "+00:00", "+05:30"])
iso_times = st.one_of(
    st.builds(lambda d, t, z: f"{d.isoformat()}T{t.isoformat()}{z}",
              st.dates(), st.times(), _OFFSETS),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                     "1969-12-31T23:59:59Z", "2101-01-01T00:00:00Z", "2026-03-01T10:00:00",
                     "2026-02-30T10:00:00Z", "2026-03-01T24:00:00Z"]),
    st.text(max_size=30),
)
timestamps = st.one_of(st.integers(-(10**30), 10**30).map(str),
                       st.sampled_from(["9" * 5000, "-0", "1e9", " 1", "\u0661\u0662"]),
                       st.text(max_size=20))
huge_ints = st.integers(4000, 6000).map(lambda n: "9" * n)
yaml_scalars = st.one_of(
    st.integers(-(10**40), 10**40).map(str), huge_ints,
    st.sampled_from([".inf", "-.inf", ".nan", "1e300", "1.0e+300", "-1", "0", "0.0", "true",
                     "null", "~", "''", "[]", "{}", "0x7fffffff", "1_000", "0o17",
                     "!!binary aGk="]),
    st.floats().map(repr), st.text(alphabet="abc019.:-[]{} ", max_size=15))
config_keys = st.sampled_from([
    ("cache", "ttl_active_seconds"), ("cache", "ttl_arrived_seconds"),
    ("breaker", "failure_threshold"), ("breaker", "reset_timeout_seconds"),
    ("retry", "attempts"), ("batch", "size"), ("batch", "max_requests"),
    ("batch", "lease_seconds"), ("webhooks", "tolerance_seconds"), ("webhooks", "max_bytes"),
    ("alerts", "breaker_open_seconds"), ("alerts", "open_conflicts_max"),
    ("alerts", "unsynced_departing_hours"), ("alerts", "unsynced_for_seconds"),
    ("alerts", "batch_success_rate_min"), ("http", "max_workers")])


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """A YAML config: a known key set to a hostile value, or a document nested deeply."""
    if draw(st.integers(0, 5)) == 0:
        depth = draw(st.integers(20, 3000))
        return "batch: " + "[" * depth + "1" + "]" * depth + "\n"
    section, key = draw(config_keys)
    return f"{section}:\n  {key}: {draw(yaml_scalars)}\n"


def _csv_line(flight: str, day: str) -> str:
    return f"{flight},{day}"


batch_lines = st.one_of(
    st.builds(_csv_line, designators, dates),
    st.integers(4000, 140_000).map(lambda n: "LH400," + "x" * n),
    st.sampled_from(['"LH400,2026-03-01', "LH400,2026-03-01,extra", ",", '""', '"a""b",c']),
    st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t),
)


def examples(heavy: bool, default: int) -> settings:
    return settings(max_examples=default * (HEAVY_FACTOR if heavy else 1), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture],
                    database=None)


@pytest.fixture
def db(tmp_path: Path, state_dir: Path) -> Path:
    return seed_database(migrated_template(tmp_path / "template"), state_dir)


def assert_clean(outcome: Outcome, db: Path, before: dict[str, int],
                 allowed: set[int]) -> None:
    """A documented exit code among ``allowed``, no traceback; a refusal is exactly one
    `error:` line on stderr and writes nothing."""
    text = outcome.stdout + outcome.stderr
    assert "Traceback" not in text, text[-2000:]
    assert outcome.exit_code in allowed & DOCUMENTED, (outcome.exit_code, outcome.stderr[-1500:])
    assert len(outcome.error_lines()) <= 1, outcome.stderr[-1500:]
    if outcome.exit_code == 2:
        lines = outcome.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr[-1500:]
        assert row_counts(db) == before


def test_designators_and_dates(db: Path, heavy: bool) -> None:
    """`sync` with hostile designators and dates and no provider: refused, exit 2 (a bad
    designator or date, or no provider for a valid one), one line, nothing written."""
    before = row_counts(db)

    @examples(heavy, 25)
    @given(designators, dates)
    def check(designator: str, day: str) -> None:
        # --date=VALUE and -- keep a value that starts with "-" from reading as an option.
        outcome = invoke(["-q", "sync", f"--date={day}", "--", designator])
        assert_clean(outcome, db, before, {2})
        if not designator.isascii():
            assert "only ASCII" in outcome.stderr, outcome.stderr

    check()


def test_event_times(db: Path, tmp_path: Path, heavy: bool) -> None:
    """Webhook events whose occurred_at and one changed time are hostile ISO strings:
    applied (exit 0) or refused (exit 2, nothing written), never a crash."""
    path = tmp_path / "event.json"

    @examples(heavy, 20)
    @given(iso_times, iso_times, st.sampled_from(["estimated_departure", "actual_arrival"]))
    def check(occurred: str, changed: str, field: str) -> None:
        before = row_counts(db)
        path.write_text(json.dumps({
            "type": "flight.updated", "provider": "flightaware", "flight": "UA900",
            "date": "2026-03-02", "occurred_at": occurred, "origin": "JFK",
            "id": f"evt_{hashlib.sha256((occurred + changed).encode()).hexdigest()[:16]}",
            "changes": {field: changed}}))
        outcome = invoke(["-q", "ingest-webhook", str(path), "--insecure", "--no-notify"])
        assert_clean(outcome, db, before, {0, 2})

    check()


def test_signature_timestamps(db: Path, tmp_path: Path, heavy: bool) -> None:
    """A correctly signed event whose webhook-timestamp is hostile (huge, negative, not a
    number, non-ASCII digits): refused (exit 2) unless it is a current Unix time."""
    body = json.dumps({"type": "flight.updated", "provider": "flightaware", "flight": "UA900",
                       "date": "2026-03-02", "occurred_at": "2026-03-01T10:00:00Z",
                       "origin": "JFK", "changes": {"departure_gate": "B1"}}).encode()
    path = tmp_path / "event.json"
    path.write_bytes(body)

    @examples(heavy, 20)
    @given(timestamps)
    def check(stamp: str) -> None:
        before = row_counts(db)
        value = " ".join(stamp.split())  # one header line
        mac = hmac.new(KEY, f"evt_ts.{value}.".encode() + body, hashlib.sha256).digest()
        outcome = invoke(["-q", "ingest-webhook", str(path), "--no-notify",
                          "--header", "webhook-id: evt_ts",
                          "--header", f"webhook-timestamp: {value}",
                          "--header", f"webhook-signature: v1,{base64.b64encode(mac).decode()}"],
                         {"FLIGHTSYNC_WEBHOOK_SECRET": SECRET})
        digits = value.strip()
        current = digits.isascii() and digits.isdigit() and len(digits) < 20 \
            and abs(int(digits) - time.time()) < 300
        assert_clean(outcome, db, before, {0, 2} if current else {2})

    check()


def test_config_values(db: Path, tmp_path: Path, heavy: bool) -> None:
    """A config file with a hostile value (thousands of digits, .inf, .nan, 1e300, deep
    nesting): `status` either runs (exit 0) or refuses the file (exit 2, one line naming it),
    never a crash at some later arithmetic."""
    path = tmp_path / "config.yaml"

    @examples(heavy, 25)
    @given(config_texts())
    def check(text: str) -> None:
        before = row_counts(db)
        path.write_text(text)
        outcome = invoke(["-q", "--config", str(path), "status"])
        assert_clean(outcome, db, before, {0, 2})
        if outcome.exit_code == 2:
            assert f"config file {path}" in outcome.stderr

    check()


def test_batch_lines(db: Path, tmp_path: Path, heavy: bool) -> None:
    """A CSV batch of hostile lines (--dry-run: nothing synced): each bad line reported by
    number (exit 1) or the file refused (exit 2), never a crash; with --strict any bad line
    refuses the whole file."""
    path = tmp_path / "batch.csv"

    @examples(heavy, 20)
    @given(st.lists(batch_lines, min_size=1, max_size=5), st.booleans())
    def check(lines: list[str], strict: bool) -> None:
        before = row_counts(db)
        path.write_text("flight,date\n" + "\n".join(lines) + "\n", encoding="utf-8")
        outcome = invoke(["-q", "batch", str(path), "--dry-run",
                          *(["--strict"] if strict else [])])
        assert_clean(outcome, db, before, {0, 1, 2})
        if outcome.exit_code in (0, 1):
            report: dict[str, Any] = outcome.json
            assert all(f["line"] >= 2 for f in report["failed"])
            assert not (strict and report["failed"])

    check()


def test_the_real_process_refuses_hostile_config(db: Path, tmp_path: Path,
                                                 heavy: bool) -> None:
    """A few of the config examples through the installed `flightsync` as a process: the
    same clean outcome as in process."""
    path = tmp_path / "config.yaml"

    @examples(heavy, 3)
    @given(config_texts())
    def check(text: str) -> None:
        before = row_counts(db)
        path.write_text(text)
        assert_clean(run(["-q", "--config", str(path), "status"], {}), db, before, {0, 2})

    check()
