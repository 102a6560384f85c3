"""`ingest-webhook`: apply pushed flight-status events (docs/CONTRACTS.md section 6)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._engine import engine_for
from flightsync.cli._errors import report
from flightsync.cli._state import JsonOption, NoNotifyOption, begin, require_enabled
from flightsync.errors import InputError, WebhookError


def ingest_webhook(
    ctx: typer.Context,
    *,
    file: Annotated[str | None, typer.Argument(
        metavar="[FILE|-]", help="The event's JSON payload; - reads stdin.",
        show_default=False)] = None,
    header: Annotated[list[str] | None, typer.Option(
        "--header", metavar="'NAME: VALUE'", show_default=False,
        help="A request header (repeatable): webhook-id, webhook-timestamp, "
        "webhook-signature.")] = None,
    spool: Annotated[str | None, typer.Option(
        "--spool", metavar="DIR", show_default=False,
        help="Apply every *.json event in this folder (headers from <name>.headers), oldest "
        "first; each moves to DIR/done or DIR/failed (reason in <name>.reason).")] = None,
    wait: Annotated[float | None, typer.Option(
        "--wait", min=0, metavar="SECONDS", show_default=False,
        help="With --spool: seconds to wait for another drainer (the server's) to finish "
        "(default 10); still busy: exit 5, nothing applied.")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Accept events without a valid signature (testing only).")] = False,
    no_notify: NoNotifyOption = False,
    json_out: JsonOption = False,
) -> None:
    """Apply one pushed flight-status event, or every event in a spool folder.

    Signed per Standard Webhooks; idempotent by event id. Exit 0 when applied or a
    duplicate, 2 when rejected; with --spool, 1 when some file failed, 5 when another
    drainer kept the spool past --wait.
    """
    state = begin(ctx, json_out)
    if (file is None) == (spool is None):
        raise typer.BadParameter("give a FILE (or - for stdin), or --spool DIR, not both",
                                 ctx=ctx, param_hint="FILE / --spool")
    settings = state.settings(ctx)
    require_enabled(state, settings, "ingest-webhook")
    if wait is not None and spool is None:
        raise typer.BadParameter("--wait applies to --spool only", ctx=ctx,
                                 param_hint="--wait")
    if spool is not None:
        if header:
            raise typer.BadParameter("--spool reads each event's headers from <name>.headers",
                                     ctx=ctx, param_hint="--header")
        with engine_for(ctx, state, "webhook") as engine:
            result = engine.ingest_spool(Path(spool), insecure=insecure, notify=not no_notify,
                                         wait_seconds=wait)
        _render.emit(state, result.to_json(), _spool_table)
        raise typer.Exit(result.exit_code)
    from flightsync.engine import parse_headers  # noqa: PLC0415 - keeps --help fast

    headers = parse_headers(header or [], where="--header")
    assert file is not None
    body = _read(file, settings.webhooks.max_bytes)
    with engine_for(ctx, state, "webhook") as engine:
        try:
            outcome = engine.ingest_webhook(body, headers, insecure=insecure,
                                            notify=not no_notify)
        except WebhookError as exc:
            # Rejected: the usual one-line error, and in JSON mode the event's outcome with
            # the same {"error": {code, message}} the error contract promises.
            event_id = exc.context.get("event_id")
            report(exc.code, exc.message, json_mode=False)
            if state.json_mode:
                _render.emit_json({"event_id": event_id, "status": "rejected",
                                   "changed_fields": [], "conflicts": [],
                                   "error": {"code": exc.code, "message": exc.message}})
            raise typer.Exit(exc.exit_code) from None
    _render.emit(state, outcome.to_json())


def _read(file: str, max_bytes: int) -> bytes:
    """The payload, read no further than one byte past the limit (the engine refuses it)."""
    from flightsync._read import read_at_most  # noqa: PLC0415

    if file == "-":
        return read_at_most(sys.stdin.buffer, max_bytes)
    try:
        return read_at_most(Path(file), max_bytes)
    except FileNotFoundError:
        raise InputError(f"{file}: no such file", code="invalid_webhook_file") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot be read: {exc.strerror}",
                         code="invalid_webhook_file") from None


def _spool_table(console: Any, data: dict[str, Any]) -> None:
    _render.records(console, [
        {"file": f["file"], "status": f["status"], "event_id": f["event_id"],
         "changed": ", ".join(f["changed_fields"]),
         "reason": (f.get("error") or {}).get("message")} for f in data["files"]],
        "spool", ["file", "status", "event_id", "changed", "reason"])
    console.print(" ".join(f"{k}={v}" for k, v in data["summary"].items()))


def register(app: typer.Typer) -> None:
    app.command("ingest-webhook")(ingest_webhook)
