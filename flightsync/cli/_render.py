"""Output: JSON on stdout for scripts, rich tables for people; messages on stderr.

Every renderer takes the JSON form (docs/CONTRACTS.md section 3), so the two modes never disagree.
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
    from flightsync.engine import BatchResult

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
        cells = [(str(key), _cell(value)) for key, value in data.items()]
        table.add_column(no_wrap=True)
        table.add_column(overflow="ellipsis", min_width=min(
            max((_longest_token(cell) for _, cell in cells), default=0), KEEP_WHOLE))
        for key, cell in cells:
            table.add_row(f"[bold]{key}[/bold]", cell)
        console.print(table)
    elif isinstance(data, Sequence) and not isinstance(data, str):
        records(console, list(data))
    else:
        console.print(_cell(data))


def records(console: Console, rows: list[Any], title: str | None = None,
            columns: Sequence[str] | None = None) -> None:
    """A list of mappings as one table (columns: the given ones, else every key seen).

    No value is ever cut mid-token: cells wrap between words only, a column keeps the width of
    its longest short token (ISO times, codes, provider names) and a token longer than the
    column allows (a URL at 80 columns) ends in an ellipsis instead of running on a new line.
    """
    from rich.table import Table  # noqa: PLC0415

    if not rows:
        console.print(f"(no {title or 'rows'})")
        return
    names = list(columns or dict.fromkeys(k for row in rows if isinstance(row, Mapping)
                                          for k in row))
    cells = [[_cell(row.get(name)) if isinstance(row, Mapping) else _cell(row)
              for name in names] for row in rows]
    widths = _widths(names, cells, console.width - (3 * len(names) + 1))
    if widths is None:
        # Too narrow for whole values side by side: one block per row, as psql's expanded
        # display does, rather than columns that cut times and names apart.
        _expanded(console, names, cells, title)
        return
    table = Table(title=title)
    for name, width in zip(names, widths, strict=True):
        table.add_column(name, overflow="ellipsis", width=width)
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _expanded(console: Console, names: Sequence[str], cells: list[list[str]],
              title: str | None) -> None:
    from rich.table import Table  # noqa: PLC0415

    for number, row in enumerate(cells, 1):
        table = Table(title=f"{title or 'row'} {number}/{len(cells)}", show_header=False,
                      title_justify="left")
        table.add_column(no_wrap=True)
        table.add_column(overflow="ellipsis")
        for name, cell in zip(names, row, strict=True):
            table.add_row(name, cell)
        console.print(table)


# Tokens up to this long keep their column wide enough to show them whole: an ISO time with
# an offset is 25, a provider name under 20; longer ones (URLs) may end in an ellipsis.
KEEP_WHOLE = 25


def _widths(names: Sequence[str], cells: list[list[str]], room: int) -> list[int] | None:
    """Column widths within ``room`` characters of content: each column first gets its
    longest token (up to ``KEEP_WHOLE``), then what is left goes to the columns, left to
    right, up to their longest line. None when even the tokens do not fit."""
    tokens = [min(max(max((_longest_token(row[i]) for row in cells), default=0), len(name)),
                  KEEP_WHOLE) for i, name in enumerate(names)]
    if sum(tokens) > room:
        return None
    spare = room - sum(tokens)
    widths = []
    for i, name in enumerate(names):
        natural = max([len(name), *(len(line) for row in cells
                                    for line in row[i].splitlines())])
        extra = max(0, min(spare, natural - tokens[i]))
        spare -= extra
        widths.append(tokens[i] + extra)
    return widths


def _longest_token(text: str) -> int:
    return max((len(token) for token in text.split()), default=0)


def sync_result(console: Console, data: Mapping[str, Any], *, summary: bool = True) -> None:
    """Each leg as a field/value table, then the sources line and the conflicts."""
    for leg in data.get("legs") or []:
        title = (f"{leg['carrier']}{leg['flight_number']}{leg.get('suffix') or ''} "
                 f"{leg['departure_date']} leg {leg['leg_index']}: "
                 f"{leg['origin']} -> {leg.get('destination') or '?'}")
        fields = [{"field": key, "value": value} for key, value in leg.items()
                  if value not in (None, [], "") and key not in ("carrier", "flight_number",
                                                                  "suffix")]
        records(console, fields, title, ["field", "value"])
    if not summary:
        return
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


# Above this many flights a batch prints counts per outcome instead of one row per flight.
BATCH_ROWS_MAX = 10


def batch_result_out(state: AppState, result: BatchResult) -> None:
    """A batch's result: its JSON written a flight at a time (a `batch --due` of 40,000 never
    holds its whole document), or the view for a person, which reads no more rows than it
    shows."""
    if state.json_mode:
        result.write_json(sys.stdout, indent=2 if sys.stdout.isatty() else None)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    from rich.console import Console  # noqa: PLC0415

    batch_result(Console(highlight=False), result.to_json(rows=BATCH_ROWS_MAX + 1),
                 by_status=result.log.by_status)


def batch_result(console: Console, data: Mapping[str, Any], *,
                 by_status: Mapping[str, int] | None = None) -> None:
    """One row per flight for a handful (``BATCH_ROWS_MAX``), counts per outcome above that;
    the failed ones are listed either way (the first ``BATCH_ROWS_MAX``), then the summary.
    ``by_status``: the successful flights per sync status, when ``data`` lists only some."""
    successful = data.get("successful", [])
    if len(successful) <= BATCH_ROWS_MAX:
        rows = [{"flight": r["flight"]["carrier"] + str(r["flight"]["flight_number"])
                 if r.get("flight") else "?", "status": r["sync_status"],
                 "from_cache": r["from_cache"]} for r in successful]
        records(console, rows, "synced")
    else:
        if by_status is None:
            counted: dict[str, int] = {}
            for r in successful:
                counted[r["sync_status"]] = counted.get(r["sync_status"], 0) + 1
            by_status = counted
        console.print("synced: " + ", ".join(f"{count} {name}" for name, count
                                             in sorted(by_status.items())))
    summary = data.get("summary", {})
    failed = data.get("failed") or []
    if failed:
        records(console, [{"line": f.get("line"), "flight": f.get("flight"),
                           "date": f.get("date"), "error": f["error"]["message"]}
                          for f in failed[:BATCH_ROWS_MAX]], "failed")
        total = max(len(failed), summary.get("failed") or 0)
        if total > BATCH_ROWS_MAX:
            console.print(f"... and {total - BATCH_ROWS_MAX} more failed (--json "
                          "lists every one)")
    console.print(" ".join(f"{k}={v}" for k, v in summary.items())
                  + f" run_id={data.get('run_id')}")


def dry_run(console: Console, data: Mapping[str, Any]) -> None:
    """``batch --dry-run``: the flights as a table, then the counts."""
    records(console, data.get("flights", []), "would sync", ["flight", "date"])
    if data.get("failed"):
        records(console, [{"line": f.get("line"), "error": (f.get("error") or {}).get("message")}
                          for f in data["failed"]], "bad lines", ["line", "error"])
    console.print(f"requested={data.get('requested')} duplicates={data.get('duplicates')} "
                  f"failed={len(data.get('failed') or [])}")


def status(console: Console, data: Mapping[str, Any], *, alerts: bool = True) -> None:
    """Breakers, tokens, cache, database, last run; the alerts unless the caller prints them
    itself (``status --check`` names each on stderr: at a terminal they would show twice)."""
    breakers = [{"provider": name, **view} for name, view in data.get("breakers", {}).items()]
    tokens = [{"provider": name, **view} for name, view in data.get("tokens", {}).items()]
    records(console, breakers, "breakers")
    records(console, tokens, "tokens")
    budget_table(console, data.get("budgets") or {})
    database = dict(data.get("database") or {})
    rows = database.pop("rows", None) or {}  # rows per table: a table of its own
    generic(console, {"cache": data.get("cache"), "database": database,
                      "last_run": data.get("last_run")})
    records(console, [{"table": name, **count} for name, count in rows.items()],
            "rows per table (estimate: PostgreSQL's statistics)")
    for alert in data.get("alerts", []) if alerts else ():
        console.print(f"[red]alert:[/red] {escape_markup(str(alert))}")


def budget_table(console: Console, budgets: Mapping[str, Any]) -> None:
    """One row per provider with a budget: calls and spend per calendar period, each limit
    as used/amount, and the quota block (README "Provider budgets")."""
    if not budgets:
        return
    rows = [{"provider": name, "calls": view["calls"], "spend": {
                period: f"{spent:g}" + (f" of {view['budget'][period]:g}"
                                        if period in view["budget"] else "")
                for period, spent in view["spend"].items()},
             "limits": [f"{lim['limit']}: {lim['used']} used, {lim['remaining']} left"
                        for lim in view["limits"]],
             "quota_exhausted_until": view["quota_exhausted_until"]}
            for name, view in budgets.items()]
    records(console, rows, "budgets")


def escape_markup(text: str) -> str:
    from rich.markup import escape  # noqa: PLC0415

    return escape(text)


def _cell(value: Any) -> str:
    """A value as a cell: lists one item per line, mappings one ``key: value`` per line,
    never raw JSON (a list of mappings: one line per mapping)."""
    from rich.markup import escape  # noqa: PLC0415

    if isinstance(value, list):
        return escape("\n".join(_inline(v) for v in value)) or "-"
    if isinstance(value, Mapping):
        return escape("\n".join(f"{k}: {_inline(v)}" for k, v in value.items())) or "-"
    return escape(_plain(value))


def _inline(value: Any) -> str:
    """A value inside a list or mapping cell, on one line."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_inline(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_inline(v) for v in value)
    return _plain(value)


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
