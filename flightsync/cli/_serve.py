"""`serve`: the webhook server (README, "Webhook server")."""

from __future__ import annotations

from typing import Annotated

import typer

from flightsync.cli._state import begin


def serve(
    ctx: typer.Context,
    *,
    host: Annotated[str | None, typer.Option(
        "--host", metavar="ADDRESS", show_default=False,
        help="Address to listen on (default: server.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", metavar="PORT", min=0, max=65535, show_default=False,
        help="Port to listen on; 0 picks a free one (default: server.port, 8080).")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", metavar="N", min=1, max=64,
        help="Worker processes sharing the socket.")] = 1,
) -> None:
    """Serve POST /webhooks/flightsync, POST /webhooks/flightaware/TOKEN, GET /healthz and
    GET /metrics until SIGINT or SIGTERM.

    Prints `listening on http://HOST:PORT` once the socket is bound. An event is answered
    2xx only once it is committed to the database, or spooled (202) while the database is
    unavailable; the spool is drained in order when it is back.
    """
    state = begin(ctx)
    settings = state.settings(ctx)
    from flightsync.server import serve as run  # noqa: PLC0415 - starlette, uvicorn

    def announce(line: str) -> None:
        typer.echo(line)

    try:
        run(settings, host=host or settings.server.host,
            port=settings.server.port if port is None else port, workers=workers,
            run_id=state.run_id or "serve", announce=announce, verbosity=state.verbosity)
    except OSError as exc:
        from flightsync.errors import ConfigError  # noqa: PLC0415

        raise ConfigError(f"cannot listen on {host or settings.server.host}:"
                          f"{settings.server.port if port is None else port}: "
                          f"{exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
