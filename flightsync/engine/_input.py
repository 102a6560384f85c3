"""Batch input: CSV with header ``flight,date`` or JSON Lines ``{"flight": …, "date": …}``.

Bad lines are collected with their line numbers (or, strict, refuse the whole input); input that
cannot be read at all (binary, wrong encoding, no header) is an InputError.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Any

from flightsync._read import mebibytes
from flightsync.errors import InputError
from flightsync.models import FlightQuery

MAX_LINE = 4096  # no legitimate line comes close; longer ones are refused, not parsed
# A whole input: 1000 flights (the default limit) take ~20 KB; 8 MiB leaves room for a raised
# --limit and stops `batch /dev/urandom` (or a runaway pipe) before it eats the memory.
MAX_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class BatchInput:
    queries: tuple[FlightQuery, ...]
    rejected: tuple[dict[str, Any], ...]   # {"line", "flight", "date", "error": {code, message}}
    duplicates: int


def read_batch(data: bytes, *, name: str, strict: bool, limit: int) -> BatchInput:
    """Parse a batch file's bytes (``name`` is for messages: a path or ``-``). Callers read
    at most ``MAX_BATCH_BYTES + 1`` bytes; more than ``MAX_BATCH_BYTES`` is refused."""
    if len(data) > MAX_BATCH_BYTES:
        raise InputError(f"{name}: larger than {mebibytes(MAX_BATCH_BYTES)}, the limit of a "
                         "batch input; split it", code="invalid_batch_file")
    if b"\x00" in data:
        raise InputError(f"{name}: binary data, expected CSV or JSON Lines text",
                         code="invalid_batch_file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start})",
                         code="invalid_batch_file") from exc
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if not first:
        raise InputError(f"{name}: empty input, expected a CSV header `flight,date` or JSON "
                         "Lines", code="invalid_batch_file")
    rows = _json_lines(lines) if first.startswith("{") else _csv_rows(lines, name)
    queries: list[FlightQuery] = []
    rejected: list[dict[str, Any]] = []
    for number, flight, day, bad in rows:
        problem = bad
        if problem is None:
            try:
                queries.append(FlightQuery.parse(flight, day))
                continue
            except InputError as exc:
                problem = (exc.code, exc.message)
        code, message = problem
        rejected.append({"line": number, "flight": flight[:40], "date": day[:40],
                         "error": {"code": code, "message": f"line {number}: {message}"}})
    if strict and rejected:
        first_bad = rejected[0]["error"]["message"]
        raise InputError(f"{name}: {len(rejected)} bad line(s), nothing run; first: {first_bad}",
                         code="invalid_batch_line")
    unique = list(dict.fromkeys(queries))
    if len(unique) > limit:
        raise InputError(f"{name}: {len(unique)} flights, more than the limit of {limit} "
                         "per run (--limit, else batch.max_requests); nothing run: raise the "
                         "limit or split the file", code="batch_too_large")
    return BatchInput(tuple(unique), tuple(rejected), len(queries) - len(unique))


Row = tuple[int, str, str, tuple[str, str] | None]


def _json_lines(lines: list[str]) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            rows.append((number, "", "", ("line_too_long", f"longer than {MAX_LINE} characters")))
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append((number, "", "", ("invalid_json", f"invalid JSON: {exc.msg}")))
            continue
        problem = _json_line_problem(item)
        if problem is not None:
            known = item if isinstance(item, dict) else {}
            flight, day = (v if isinstance(v, str) else "" for v in
                           (known.get("flight"), known.get("date")))
            rows.append((number, flight, day, ("invalid_line", problem)))
            continue
        rows.append((number, item["flight"], item["date"], None))
    return rows


def _json_line_problem(item: Any) -> str | None:
    """What is wrong with one JSON Lines object, named; None when it has the two strings."""
    shape = 'expected {"flight": "LH400", "date": "YYYY-MM-DD"}'
    if not isinstance(item, dict):
        return f"{shape}, got a JSON {type(item).__name__}"
    missing = [key for key in ("flight", "date") if key not in item]
    if missing:
        return f"missing {' and '.join(repr(k) for k in missing)}; {shape}"
    extra = sorted(str(key) for key in item if key not in ("flight", "date"))
    if extra:
        return f"unknown key(s) {', '.join(repr(k[:40]) for k in extra[:3])}; {shape}"
    for key in ("flight", "date"):
        if not isinstance(item[key], str):
            return f"{key!r} must be a string, got {type(item[key]).__name__}"
    return None


def _csv_rows(lines: list[str], name: str) -> list[Row]:
    """Each physical line parsed on its own: a line longer than MAX_LINE is refused before the
    csv module sees it (its own field limit, 131,072 characters, raises instead of reporting
    a line), and a quote left open cannot swallow the lines after it."""
    header: list[str] | None = None
    rows: list[Row] = []
    for number, line in enumerate(lines, start=1):
        record, problem = _csv_record(line)
        if problem is None and not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in record]
            if problem is not None or header[:2] != ["flight", "date"]:
                raise InputError(f"{name}: line {number}: expected the CSV header "
                                 "`flight,date`", code="invalid_batch_file")
        elif problem is not None:
            rows.append((number, "", "", problem))
        elif len(record) != len(header):
            rows.append((number, record[0], record[1] if len(record) > 1 else "", (
                "invalid_line", f"expected {len(header)} fields (flight,date), got "
                                f"{len(record)}")))
        else:
            rows.append((number, record[0], record[1], None))
    if header is None:
        raise InputError(f"{name}: no CSV header `flight,date`", code="invalid_batch_file")
    return rows


def _csv_record(line: str) -> tuple[list[str], tuple[str, str] | None]:
    """One line's cells, or the (code, message) of why it cannot be read."""
    if len(line) > MAX_LINE:
        return [], ("line_too_long", f"longer than {MAX_LINE} characters")
    try:
        return next(csv.reader([line]), []), None
    except csv.Error as exc:
        return [], ("invalid_line", f"malformed CSV: {exc}")
