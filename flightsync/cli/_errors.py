"""The one error boundary of the CLI (docs/CONTRACTS.md section 2).

``FlightsyncError`` -> ``error: <message>`` (one line, stderr), plus ``{"error": {"code",
"message"}}`` on stdout in JSON mode, and the class's exit code. Usage errors -> Typer's usage
line, the same ``error:`` line and JSON, exit 2. Anything else is a bug: exit 70, one line, the
traceback in the log; with ``FLIGHTSYNC_RAISE_ERRORS=1`` it propagates instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from typer._click.core import Context as ClickContext
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from flightsync.cli import _render
from flightsync.cli._state import state_of
from flightsync.errors import FlightsyncError

INTERNAL_ERROR = 70
USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a Ctrl-C


def report(code: str, message: str, *, json_mode: bool) -> None:
    """Print one error: a single ``error:`` line on stderr, and JSON on stdout in JSON mode."""
    from flightsync.logs import redact_text  # noqa: PLC0415

    line = redact_text(" ".join(message.split()))  # one line, whatever the message held
    _render.note(f"error: {line}")
    if json_mode:
        _render.emit_json({"error": {"code": code, "message": line}})


@contextmanager
def boundary(ctx: ClickContext) -> Iterator[None]:
    """Translate whatever the command raises into the docs/CONTRACTS.md section 2 contract."""
    try:
        yield
    except (typer.Exit, typer.Abort, NoArgsIsHelpError):
        raise
    except KeyboardInterrupt:
        # A Ctrl-C outside a run's own handling (cli/_interrupt.py), or a second one.
        report("interrupted", "interrupted", json_mode=state_of(ctx).json_mode)
        raise typer.Exit(INTERRUPTED) from None
    except UsageError as exc:
        if exc.ctx is not None:
            _render.note(exc.ctx.get_usage())
        report("usage", exc.format_message(), json_mode=state_of(ctx).json_mode)
        raise typer.Exit(USAGE_ERROR) from None
    except FlightsyncError as exc:
        state = state_of(ctx)
        report(exc.code, exc.message, json_mode=state.json_mode)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if os.environ.get("FLIGHTSYNC_RAISE_ERRORS") == "1":
            raise
        state = state_of(ctx)
        state.ensure_logging()
        import structlog  # noqa: PLC0415

        structlog.get_logger("flightsync.cli").error(
            "cli.internal_error", error_type=type(exc).__name__, exc_info=exc)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        report("internal_error",
               f"internal error ({type(exc).__name__}{': ' + first if first else ''}); "
               f"details in the log (run_id {state.run_id})", json_mode=state.json_mode)
        raise typer.Exit(INTERNAL_ERROR) from None


class BoundaryGroup(TyperGroup):
    """The root command group: parsing and invocation run inside :func:`boundary`."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: Any = None, **extra: Any) -> Any:
        # Errors in the global options surface here, before any command's invoke.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except (NoArgsIsHelpError, typer.Exit):
            raise
        except UsageError as exc:
            if exc.ctx is not None:
                _render.note(exc.ctx.get_usage())
            report("usage", exc.format_message(), json_mode=_json_requested(args))
            raise typer.Exit(USAGE_ERROR) from None

    def invoke(self, ctx: ClickContext) -> Any:
        with boundary(ctx):
            return super().invoke(ctx)


def _json_requested(args: Sequence[str]) -> bool:
    return "--json" in args or not sys.stdout.isatty()
