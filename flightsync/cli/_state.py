"""What one invocation carries from the global options to its command: output mode, logging,
settings (loaded once), the `--sandbox` server and the run id.

Heavy imports (pydantic through config, structlog, the sandbox) happen here on first use, never
at CLI import time, so `flightsync --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.core import Context as ClickContext

from flightsync.cli import _render

if TYPE_CHECKING:
    from flightsync.config import Settings
    from flightsync.models import FlightQuery

# `--json` after the command name, accepted by every command.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
NoNotifyOption = Annotated[bool, typer.Option(
    "--no-notify", help="Do not notify the configured subscribers of changes.")]


@dataclass
class AppState:
    config: Path | None = None
    json: bool = False
    sandbox: bool = False
    verbosity: int = 0
    run_id: str = ""
    _settings: Settings | None = field(default=None, repr=False)
    _logging_ready: bool = False

    @property
    def json_mode(self) -> bool:
        """JSON on stdout when asked for, and always when stdout is not a terminal."""
        return self.json or not _isatty(sys.stdout)

    def ensure_logging(self) -> None:
        if self._logging_ready:
            return
        from flightsync import logs  # noqa: PLC0415 - structlog costs ~100 ms to import

        if not self.run_id:
            self.run_id = logs.new_run_id()
        logs.configure_logging(verbosity=self.verbosity, json=not _isatty(sys.stderr),
                               run_id=self.run_id)
        self._logging_ready = True

    def settings(self, ctx: typer.Context, overrides: dict[str, Any] | None = None) -> Settings:
        """Settings from --config / FLIGHTSYNC_CONFIG, the environment, `--sandbox` and the
        command's own options (``overrides``); loaded once per invocation."""
        if self._settings is not None:
            return self._settings
        from flightsync import logs  # noqa: PLC0415
        from flightsync.config import load_settings  # noqa: PLC0415

        env = dict(os.environ)
        public: set[str] = set()
        if self.sandbox:
            sandbox_env = _start_sandbox(ctx)
            env.update(sandbox_env)
            # The sandbox's credentials are published ("sandbox"); masking them would only
            # mangle every log line that names the sandbox.
            public = set(sandbox_env.values())
        settings = load_settings(self.config, env, overrides)
        if self.sandbox:
            settings = sandboxed(settings)
        logs.register_settings_secrets(settings, env, public=public)
        self._settings = settings
        return settings


def state_of(ctx: ClickContext) -> AppState:
    """The invocation's AppState (created by the root callback; a bare one otherwise)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def begin(ctx: typer.Context, json_flag: bool = False) -> AppState:
    """Start a command: apply its own `--json`, configure logging, return the state."""
    state = state_of(ctx)
    if json_flag:
        state.json = True
    state.ensure_logging()
    return state


def parse_query(flight: str, date: str) -> FlightQuery:
    """``FlightQuery.parse``: InputError (exit 2) for a bad designator or date."""
    from flightsync.models import FlightQuery  # noqa: PLC0415 - regexes compile on import

    return FlightQuery.parse(flight, date)


def require_enabled(state: AppState, settings: Settings, command: str) -> None:
    """FLIGHT_SYNC_ENABLED=false turns sync, batch and ingest-webhook into a no-op (exit 0)."""
    if settings.enabled:
        return
    # The variable overrides the file, so a false from the file means the variable is unset.
    where = ("FLIGHT_SYNC_ENABLED=false" if "FLIGHT_SYNC_ENABLED" in os.environ
             else "enabled: false in the config file")
    reason = f"flightsync is switched off ({where})"
    _render.note(f"{command}: {reason}; nothing done")
    if state.json_mode:
        _render.emit_json({"skipped": True, "reason": reason})
    raise typer.Exit(0)


def sandboxed(settings: Settings) -> Settings:
    """The settings of a `--sandbox` run, kept apart from real use: the state directory's
    ``sandbox/`` folder as its state directory (cache, breakers, tokens, run lock) with its own
    SQLite database there, whatever database is configured, no metrics file and no
    subscribers to notify. Fake flights never reach the real database, its metrics or its
    subscribers, and the cache is the sandbox's own (README, "Commands"): never the shared
    Redis of ``state_url``, where fake answers would reach every host."""
    from flightsync import config  # noqa: PLC0415 - pydantic: loaded with the settings

    return settings.model_copy(update={
        "state_dir": config.state_dir(settings) / "sandbox", "database_url": None,
        "state_url": None, "metrics": config.MetricsSettings(), "notify": ()})


def _start_sandbox(ctx: typer.Context) -> dict[str, str]:
    """Start the bundled sandbox on an ephemeral loopback port until the invocation ends."""
    from flightsync.sandbox import Sandbox, SandboxConfig, sandbox_environment  # noqa: PLC0415

    server = Sandbox(SandboxConfig())
    base_url = server.start()
    ctx.find_root().call_on_close(server.stop)
    return sandbox_environment(base_url)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
