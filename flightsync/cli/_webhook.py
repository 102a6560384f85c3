"""`ingest-webhook`: apply pushed flight-status events (DESIGN.md section 6)."""

from __future__ import annotations

from typing import Annotated

import typer

from flightsync.cli._state import JsonOption, NoNotifyOption, begin, require_enabled
from flightsync.errors import NotImplementedYet


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
        "--spool", metavar="DIR", help="Apply every event file in this folder instead.",
        show_default=False)] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Accept events without a valid signature (testing only).")] = False,
    no_notify: NoNotifyOption = False,
    json_out: JsonOption = False,
) -> None:
    """Apply one pushed flight-status event, or every event in a spool folder.

    Signed per Standard Webhooks; idempotent by event id.
    """
    state = begin(ctx, json_out)
    require_enabled(state, state.settings(ctx), "ingest-webhook")
    raise NotImplementedYet("ingest-webhook arrives with the webhooks issue")


def register(app: typer.Typer) -> None:
    app.command("ingest-webhook")(ingest_webhook)
