"""`sync` and `batch`: the commands that fetch from providers and write flights."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flightsync.cli import _render
from flightsync.cli._dates import DateOption, query_for
from flightsync.cli._engine import engine_for
from flightsync.cli._errors import INTERRUPTED
from flightsync.cli._interrupt import interrupts_stop
from flightsync.cli._state import (
    AppState,
    JsonOption,
    NoNotifyOption,
    begin,
    require_enabled,
)
from flightsync.errors import InputError

if TYPE_CHECKING:
    from flightsync.config import Settings
    from flightsync.engine import BatchResult

FlightArgument = Annotated[str, typer.Argument(
    metavar="FLIGHT", show_default=False,
    help="Flight designator: LH400, LH0400, 'lh 400' or LH400A (operational suffix).")]


def sync(
    ctx: typer.Context,
    *,
    flight: FlightArgument,
    date: DateOption = None,
    force: Annotated[bool, typer.Option("--force", help="Skip the cache.")] = False,
    track: Annotated[bool, typer.Option(
        "--track", help="Sync (and so track) a flight further ahead than "
        "sync.max_days_ahead days, which is refused without it.")] = False,
    source: Annotated[list[str] | None, typer.Option(
        "--source", metavar="NAME", help="Only ask this provider (repeatable).",
        show_default=False)] = None,
    no_notify: NoNotifyOption = False,
    json_out: JsonOption = False,
) -> None:
    """Sync one flight from every provider that covers it. Exit 1 when none answered."""
    state = begin(ctx, json_out)
    settings = state.settings(ctx)
    require_enabled(state, settings, "sync")
    query = query_for(ctx, state, flight, date)
    if not track:
        from flightsync.engine import refuse_far_future  # noqa: PLC0415 - keeps --help fast

        refuse_far_future(query, max_days_ahead=settings.sync.max_days_ahead,
                          today=datetime.now(UTC).date())
    result = None
    if not force:
        # A whole cached result needs neither the database nor the HTTP stack.
        from flightsync.engine import sync_from_cache  # noqa: PLC0415 - keeps --help fast

        result = sync_from_cache(settings, query, sources=source or None, run_id=state.run_id)
    if result is None:
        with engine_for(ctx, state, "sync") as engine, interrupts_stop(engine):
            result = engine.sync(query, force=force, sources=source or None,
                                 notify=not no_notify)
    _render.emit(state, result.to_json(), _render.sync_result)
    if any(s.error == "interrupted" for s in result.sources):
        _render.note(f"interrupted: {query.designator} on {query.departure_date}: "
                     + ("written with the answers that had arrived" if result.success
                        else "no provider had answered; nothing written"))
        raise typer.Exit(INTERRUPTED)
    if not result.success:
        # docs/CONTRACTS.md §2: a failure also leaves its one `error:` line on stderr, which is
        # all a cron job's mail shows when stdout is JSON.
        message = (result.error or {}).get("message") or "the sync failed"
        _render.note(f"error: {' '.join(message.split())}")
        # Refused credentials are a configuration problem (README, "Exit codes").
        refused = (result.error or {}).get("code") == "provider_auth"
        raise typer.Exit(2 if refused else 1)


def batch(
    ctx: typer.Context,
    *,
    file: Annotated[str | None, typer.Argument(
        metavar="[FILE|-]", help="CSV with header flight,date or JSON Lines; - reads stdin.",
        show_default=False)] = None,
    due: Annotated[bool, typer.Option(
        "--due", help="Sync tracked flights whose refresh is due, most urgent first.")] = False,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, metavar="N",
        help="At most this many flights per run; a larger FILE is refused, --due stops "
             "there (default: batch.max_requests, 1000).",
        show_default=False)] = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, max=256, metavar="N",
        help="Parallel provider calls (default: http.max_workers).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Check the input and list the flights; write nothing.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse the whole input when any line is bad (exit 2).")] = False,
    wait: Annotated[float | None, typer.Option(
        "--wait", min=0, metavar="SECONDS",
        help="With --due: seconds to wait for another run's lock.",
        show_default=False)] = None,
    no_notify: NoNotifyOption = False,
    json_out: JsonOption = False,
) -> None:
    """Sync many flights from a file, stdin, or the tracked flights that are due.

    Bad lines are reported with their line numbers and skipped (exit 1 at the end).
    """
    state = begin(ctx, json_out)
    if (file is None) == (not due):
        problem = "not both" if due else "one of them"
        raise typer.BadParameter(f"give a FILE (or - for stdin) or --due: {problem}",
                                 ctx=ctx, param_hint="FILE / --due")
    overrides = {"http": {"max_workers": concurrency}} if concurrency else None
    settings = state.settings(ctx, overrides)
    require_enabled(state, settings, "batch")
    max_flights = limit or settings.batch.max_requests
    if wait is not None and not due:
        raise typer.BadParameter("--wait applies to --due only", ctx=ctx, param_hint="--wait")
    if due:
        if dry_run:
            with engine_for(ctx, state, "batch_due_preview") as engine:
                due_now = engine.due_preview(limit=max_flights)
            _render.emit(state, {
                "dry_run": True, "requested": len(due_now),
                "flights": [{"flight": q.designator, "date": q.departure_date.isoformat()}
                            for q in due_now],
                "duplicates": 0, "failed": []}, _render.dry_run)
            raise typer.Exit(0)
        result = _batch_due(ctx, state, settings, limit=max_flights, wait=wait,
                            notify=not no_notify)
    else:
        from flightsync.engine import read_batch  # noqa: PLC0415

        assert file is not None
        parsed = read_batch(_read_input(file), name=file, strict=strict, limit=max_flights)
        if dry_run:
            _render.emit(state, {
                "dry_run": True, "requested": len(parsed.queries) + len(parsed.rejected),
                "flights": [{"flight": q.designator, "date": q.departure_date.isoformat()}
                            for q in parsed.queries],
                "duplicates": parsed.duplicates, "failed": list(parsed.rejected)},
                _render.dry_run)
            raise typer.Exit(1 if parsed.rejected else 0)
        with engine_for(ctx, state, "batch") as engine, interrupts_stop(engine), \
                _progress(state, len(parsed.queries)) as step:
            result = engine.batch(parsed.queries, notify=not no_notify, progress=step)
        result = result.with_rejected(parsed.rejected)
    _render.batch_result_out(state, result)
    if result.interrupted:
        _render.note(f"interrupted: {result.written} of {result.flights} flights synced; the "
                     "others were not written")
    raise typer.Exit(result.exit_code)


def _batch_due(ctx: typer.Context, state: AppState, settings: Settings, *, limit: int,
               wait: float | None, notify: bool) -> BatchResult:
    """The cron job: under the host's run lock, or exit 0 at once when another run holds it
    (a slow run must not make the next one pile up behind it)."""
    import structlog  # noqa: PLC0415

    from flightsync.config import state_dir  # noqa: PLC0415
    from flightsync.engine import BUSY_MESSAGE, RunLockBusy, run_lock  # noqa: PLC0415

    try:
        with run_lock(state_dir(settings), wait_seconds=wait, owner=f"run_id={state.run_id}"), \
                engine_for(ctx, state, "batch_due") as engine, interrupts_stop(engine), \
                _progress(state, None) as step:
            return engine.batch_due(limit=limit, notify=notify, progress=step)
    except RunLockBusy as exc:
        structlog.get_logger("flightsync.cli").warning(
            "batch.due.skipped", reason=BUSY_MESSAGE, holder=exc.holder, lock=str(exc.path),
            waited_seconds=wait or 0)
        if state.json_mode:
            _render.emit_json({"skipped": True, "reason": BUSY_MESSAGE})
        else:
            _render.note(f"batch --due: {BUSY_MESSAGE}; nothing done")
        raise typer.Exit(0) from None


def _read_input(file: str) -> bytes:
    """The input, read no further than one byte past the limit (read_batch refuses it)."""
    from flightsync._read import read_at_most  # noqa: PLC0415
    from flightsync.engine._input import MAX_BATCH_BYTES  # noqa: PLC0415

    if file == "-":
        return read_at_most(sys.stdin.buffer, MAX_BATCH_BYTES)
    try:
        return read_at_most(Path(file), MAX_BATCH_BYTES)
    except FileNotFoundError:
        raise InputError(f"{file}: no such file", code="invalid_batch_file") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot be read: {exc.strerror}",
                         code="invalid_batch_file") from None


@contextmanager
def _progress(state: AppState, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr at a terminal; no callback at all otherwise."""
    if state.verbosity < 0 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    # Count, percentage, rate and ETA; `--due` learns its total only as it claims flights,
    # so until then the count stands alone.
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("syncing", total=total, rate="")

        def step(done: int) -> None:
            bar.advance(task, done)
            speed = bar.tasks[task].speed
            bar.update(task, rate=f"{speed:.1f}/s" if speed else "")

        yield step


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
    app.command("batch")(batch)
