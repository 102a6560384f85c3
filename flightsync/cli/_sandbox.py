"""`sandbox serve`: the bundled providers in the foreground (docs/CONTRACTS.md section 1)."""

from __future__ import annotations

import errno
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._startup import resume_collector
from flightsync.cli._state import begin
from flightsync.errors import InputError

sandbox_app = typer.Typer(help="The bundled sandbox providers.", no_args_is_help=True)


@sandbox_app.command("serve")
def serve(
    ctx: typer.Context,
    *,
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, metavar="P",
        help="Port on 127.0.0.1 (0: an ephemeral one).")] = 0,
    latency_ms: Annotated[list[str] | None, typer.Option(
        "--latency-ms", metavar="N|NAME=N", show_default=False,
        help="Added latency in ms, for every provider (N) or one (NAME=N); repeatable.")
    ] = None,
    fail: Annotated[float | None, typer.Option(
        "--fail", min=0, max=1, metavar="RATE", show_default=False,
        help="Share of data calls answered with a random 5xx, 0 to 1.")] = None,
    scenario: Annotated[Path | None, typer.Option(
        "--scenario", metavar="FILE", dir_okay=False, show_default=False,
        help="Scenario YAML: clock, faults, latency, per-provider disagreements.")] = None,
) -> None:
    """Run the sandbox providers in the foreground until Ctrl-C; prints its base URL first.

    One port serves every provider's real paths; credentials sandbox/sandbox (API keys
    sandbox); GET /_sandbox/stats returns request counters. `flightsync sandbox env URL`
    prints the exports that point the providers at it.
    """
    begin(ctx)
    from flightsync import sandbox  # noqa: PLC0415

    config = sandbox.SandboxConfig.from_yaml(scenario) if scenario else sandbox.SandboxConfig()
    overlay: dict[str, Any] = {}
    if latency_ms:
        default, per_provider = _latencies(latency_ms)
        if default is not None:
            overlay["default_latency_ms"] = default
        if per_provider:
            overlay["latency_ms"] = {**config.latency_ms, **per_provider}
    if fail is not None:
        overlay["fail_rate"] = fail
    if overlay:
        config = sandbox.SandboxConfig.from_mapping(overlay, source="options", base=config)
    resume_collector()  # a server runs until stopped
    try:
        sandbox.serve(config, port, announce=_render.note_stdout)
    except OSError as exc:
        # The server runs on its own thread, so this can only come from the bind: a taken
        # port is a bad --port, not a bug.
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on 127.0.0.1 is in use",
                             code="invalid_option") from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise InputError(f"port {port} on 127.0.0.1 needs privileges this user lacks; "
                             "use a port above 1023 or 0 for any free one",
                             code="invalid_option") from exc
        raise


@sandbox_app.command("env")
def env(
    ctx: typer.Context,
    *,
    base_url: Annotated[str, typer.Argument(
        metavar="BASE_URL", show_default=False,
        help="The base URL `sandbox serve` printed, e.g. http://127.0.0.1:8080.")],
) -> None:
    """Print the shell exports that point every provider at a running sandbox:
    eval "$(flightsync sandbox env http://127.0.0.1:8080)"."""
    begin(ctx)
    from urllib.parse import urlsplit  # noqa: PLC0415

    from flightsync import sandbox  # noqa: PLC0415

    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
        raise InputError(f"base URL {base_url[:80]!r}: expected http://HOST:PORT as "
                         "`sandbox serve` prints it", code="invalid_option")
    for name, value in sandbox.sandbox_environment(base_url.rstrip("/")).items():
        _render.note_stdout(f"export {name}={shlex.quote(value)}")


def _latencies(values: list[str]) -> tuple[float | None, dict[str, float]]:
    default: float | None = None
    per_provider: dict[str, float] = {}
    for value in values:
        name, _, number = value.rpartition("=")
        try:
            ms = float(number)
        except ValueError:
            ms = -1.0
        if not ms >= 0:
            raise InputError(f"--latency-ms {value!r}: expected N or NAME=N with N >= 0 ms",
                             code="invalid_option")
        if name:
            per_provider[name.strip()] = ms
        else:
            default = ms
    return default, per_provider


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
