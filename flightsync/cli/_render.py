"""Output: JSON on stdout for scripts, rich tables for people; messages on stderr.

Every renderer takes the JSON form (DESIGN.md section 3), so the two modes never disagree.
rich is imported only when a table is actually drawn.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from flightsync.cli._state import AppState

Human = Callable[["Console", Any], None]


def emit_json(data: Any) -> None:
    """One JSON document on stdout (indented at a terminal, one line otherwise)."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A one-line message for the person at the terminal, on stderr."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def emit(state: AppState, data: Any, human: Human | None = None) -> None:
    """``data`` as JSON in JSON mode, else through ``human`` (default: a key/value table)."""
    if state.json_mode:
        emit_json(data)
        return
    from rich.console import Console  # noqa: PLC0415

    console = Console(highlight=False)
    (human or generic)(console, data)


def generic(console: Console, data: Any) -> None:
    """A nested mapping as key/value rows; lists of mappings as tables."""
    from rich.table import Table  # noqa: PLC0415

    if isinstance(data, Mapping):
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            table.add_row(f"[bold]{key}[/bold]", _cell(value))
        console.print(table)
    elif isinstance(data, Sequence) and not isinstance(data, str):
        records(console, list(data))
    else:
        console.print(_cell(data))


def records(console: Console, rows: list[Any], title: str | None = None,
            columns: Sequence[str] | None = None) -> None:
    """A list of mappings as one table (columns: the given ones, else every key seen)."""
    from rich.table import Table  # noqa: PLC0415

    if not rows:
        console.print(f"(no {title or 'rows'})")
        return
    names = list(columns or dict.fromkeys(k for row in rows if isinstance(row, Mapping)
                                          for k in row))
    table = Table(title=title)
    for name in names:
        # Fold long names and URLs onto more lines rather than cutting them to "airfrance_k…".
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(name)) if isinstance(row, Mapping) else _cell(row)
                        for name in names))
    console.print(table)


def sync_result(console: Console, data: Mapping[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415

    for leg in data.get("legs") or []:
        title = (f"{leg['carrier']}{leg['flight_number']}{leg.get('suffix') or ''} "
                 f"{leg['departure_date']} leg {leg['leg_index']}: "
                 f"{leg['origin']} -> {leg.get('destination') or '?'}")
        table = Table(title=title, show_header=False)
        for key, value in leg.items():
            if value not in (None, [], "") and key not in ("carrier", "flight_number", "suffix"):
                table.add_row(key, _cell(value))
        console.print(table)
    sources = ", ".join(
        f"{s['name']} {'ok' if s['ok'] else s.get('error', 'failed')} ({s['ms']} ms"
        f"{', cached' if s.get('from_cache') else ''})" for s in data.get("sources", []))
    console.print(f"sync_status: [bold]{data.get('sync_status')}[/bold]"
                  f"{' (from cache)' if data.get('from_cache') else ''}; sources: {sources}")
    if data.get("conflicts"):
        records(console, data["conflicts"], "conflicts",
                ["field", "leg_index", "values", "chosen", "rule", "escalated"])
    if data.get("error"):
        console.print(f"[red]{data['error'].get('message')}[/red]")


def batch_result(console: Console, data: Mapping[str, Any]) -> None:
    rows = [{"flight": r["flight"]["carrier"] + str(r["flight"]["flight_number"])
             if r.get("flight") else "?", "status": r["sync_status"],
             "from_cache": r["from_cache"]} for r in data.get("successful", [])]
    records(console, rows, "synced")
    if data.get("failed"):
        records(console, [{"line": f.get("line"), "flight": f.get("flight"),
                           "date": f.get("date"), "error": f["error"]["message"]}
                          for f in data["failed"]], "failed")
    summary = data.get("summary", {})
    console.print(" ".join(f"{k}={v}" for k, v in summary.items())
                  + f" run_id={data.get('run_id')}")


def status(console: Console, data: Mapping[str, Any]) -> None:
    breakers = [{"provider": name, **view} for name, view in data.get("breakers", {}).items()]
    tokens = [{"provider": name, **view} for name, view in data.get("tokens", {}).items()]
    records(console, breakers, "breakers")
    records(console, tokens, "tokens")
    generic(console, {"cache": data.get("cache"), "database": data.get("database"),
                      "last_run": data.get("last_run")})
    for alert in data.get("alerts", []):
        console.print(f"[red]alert:[/red] {alert}")


def _cell(value: Any) -> str:
    from rich.markup import escape  # noqa: PLC0415

    if isinstance(value, list) and all(_scalar(v) for v in value):
        return escape(", ".join(_plain(v) for v in value)) or "-"
    if isinstance(value, Mapping) and all(_scalar(v) for v in value.values()):
        return escape(", ".join(f"{k}: {_plain(v)}" for k, v in value.items())) or "-"
    if isinstance(value, Mapping | list):
        return escape(json.dumps(value, ensure_ascii=False, default=str))
    return escape(_plain(value))


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _plain(value: Any) -> str:
    """A value as a cell shows it: null as "-", booleans as yes/no, the rest as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def note_stdout(message: str) -> None:
    """One line on stdout, flushed at once (a base URL another process waits to read)."""
    sys.stdout.write(message.rstrip("\n") + "\n")
    sys.stdout.flush()
