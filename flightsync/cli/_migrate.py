"""`migrate`: Alembic from code, no alembic.ini needed (docs/CONTRACTS.md section 1)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._state import AppState, JsonOption, begin

migrate_app = typer.Typer(
    help="Bring the database schema up to date (default: upgrade head).",
    invoke_without_command=True)


@migrate_app.callback()
def migrate_default(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """Bring the database schema up to date (default: upgrade head)."""
    if ctx.invoked_subcommand is None:
        _upgrade(ctx, begin(ctx, json_out), "head")
    elif json_out:
        begin(ctx, json_out)


@migrate_app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    rev: Annotated[str, typer.Argument(metavar="[REV]", help="Target revision.")] = "head",
    json_out: JsonOption = False,
) -> None:
    """Migrate up to REV (default head)."""
    _upgrade(ctx, begin(ctx, json_out), rev)


@migrate_app.command("downgrade")
def downgrade(
    ctx: typer.Context,
    rev: Annotated[str, typer.Argument(
        metavar="REV", help="Target revision; `base` empties the database.",
        show_default=False)],
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask first (asked only at a terminal).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Migrate down to REV; what later revisions added is dropped, with its data."""
    state = begin(ctx, json_out)
    store, url = _store(ctx, state)
    before = store.current(url)
    # At a terminal an operator confirms; scripts and cron (no terminal) run as they always did.
    if not yes and sys.stdin.isatty() and not typer.confirm(
            f"Downgrade {_safe_url(url)} from {before} to {rev}? What later revisions added "
            "is dropped, with its data.", default=False, err=True):
        _render.note("migrate downgrade: nothing done")
        raise typer.Exit(1)
    store.downgrade(url, rev)
    _render.emit(state, _report(url, "downgrade", rev, before, store.current(url)))


@migrate_app.command("current")
def current(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """The database's revision (null for an empty database)."""
    state = begin(ctx, json_out)
    store, url = _store(ctx, state)
    revision = store.current(url)
    heads = store.heads()
    _render.emit(state, {"database": _safe_url(url), "revision": revision, "heads": heads,
                         "up_to_date": revision is not None and revision.split(",") == heads})


@migrate_app.command("history")
def history(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """Every revision, newest first, marking the head and the database's current one."""
    state = begin(ctx, json_out)
    store, url = _store(ctx, state)
    rows = store.history(url)
    _render.emit(state, {"database": _safe_url(url), "revisions": rows},
                 lambda console, data: _render.records(console, data["revisions"], "revisions"))


def _upgrade(ctx: typer.Context, state: AppState, rev: str) -> None:
    store, url = _store(ctx, state)
    before = store.current(url)
    store.upgrade(url, rev)
    _render.emit(state, _report(url, "upgrade", rev, before, store.current(url)))


def _store(ctx: typer.Context, state: AppState) -> tuple[Any, str]:
    from flightsync.config import database_url  # noqa: PLC0415
    from flightsync.store import migrate  # noqa: PLC0415 - alembic is slow to import

    return migrate, database_url(state.settings(ctx))


def _report(url: str, action: str, target: str, before: str | None,
            after: str | None) -> dict[str, Any]:
    return {"database": _safe_url(url), "action": action, "target": target,
            "before": before, "revision": after}


def _safe_url(url: str) -> str:
    """The URL without its password (docs/CONTRACTS.md section 4: no secret in output)."""
    from flightsync.logs import redact_url  # noqa: PLC0415 - `--help` must not load structlog

    return redact_url(url)


def register(app: typer.Typer) -> None:
    app.add_typer(migrate_app, name="migrate")
