"""`config show`: the effective settings and where each value came from, secrets masked."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flightsync.cli import _render
from flightsync.cli._state import JsonOption, begin

if TYPE_CHECKING:
    from rich.console import Console

    from flightsync.config import Settings

config_app = typer.Typer(help="The effective configuration.", no_args_is_help=True)
DEFAULT = "default"
SANDBOX = "option --sandbox"


@config_app.callback()
def _json_after_group(ctx: typer.Context, json_out: JsonOption = False) -> None:
    # `--json` right after the group's name (`config --json show`), as after a command's.
    if json_out:
        begin(ctx, json_out)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    json_out: JsonOption = False,
    all_: Annotated[bool, typer.Option(
        "--all", help="Also the providers nothing configures (their adapters' defaults).")
    ] = False,
) -> None:
    """Every setting in effect, where it came from (default, file, environment, option) and
    secrets masked as ***. The configuration precedence: option > environment > file >
    default."""
    state = begin(ctx, json_out)
    settings = state.settings(ctx)
    from flightsync import config  # noqa: PLC0415 - pydantic: loaded with the settings

    origins = config.value_origins(state.config, os.environ)
    rows = _rows(settings, origins, sandbox=state.sandbox)
    if not all_:
        rows = [r for r in rows if not (r["key"].startswith("providers.")
                                        and r["origin"] == DEFAULT)]
    config_file = state.config or os.environ.get("FLIGHTSYNC_CONFIG") or None
    _render.emit(state, {"config_file": str(config_file) if config_file else None,
                         "settings": rows}, _table)


def _rows(settings: Settings, origins: dict[str, str], *, sandbox: bool) -> list[dict[str, Any]]:
    from flightsync import config, logs  # noqa: PLC0415

    def origin_of(key: str) -> str:
        # A value set as a whole (a list, a mapping) is listed under its own key.
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            found = origins.get(".".join(parts[:end]))
            if found:
                return found
        return DEFAULT

    rows: list[dict[str, Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
            return
        shown = logs.redact_text(value) if isinstance(value, str) else value
        rows.append({"key": prefix, "value": shown, "origin": origin_of(prefix)})

    data = settings.model_dump(mode="json")
    # The two paths a run derives when they are not set: show what it will use.
    data["state_dir"] = str(config.state_dir(settings))
    data["database_url"] = config.database_url(settings)
    walk("", data)
    for name, provider in settings.providers.items():
        for key in sorted(provider.credentials):
            path = f"providers.{name}.credentials.{key}"
            rows.append({"key": path, "value": logs.MASK, "origin": origin_of(path)})
    for secret in ("webhook_secret", "flightaware_alert_token"):
        if getattr(settings, secret):
            rows.append({"key": secret, "value": logs.MASK, "origin": origin_of(secret)})
    if sandbox:  # the sandbox's own folder, database and providers (README, "Commands")
        for row in rows:
            key = row["key"]
            if key in ("state_dir", "database_url") or (key.startswith("providers.") and (
                    key.endswith(".base_url") or ".credentials." in key)):
                row["origin"] = SANDBOX
    return sorted(rows, key=lambda row: row["key"])


def _table(console: Console, data: dict[str, Any]) -> None:
    _render.records(console, data["settings"], "configuration", ["key", "value", "origin"])
    console.print(f"config file: {data['config_file'] or 'none (built-in defaults)'}")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
