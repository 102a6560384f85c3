"""The console script builds only the command it runs (a startup-time measure); the trimmed
app must behave exactly like the whole one."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flightsync.cli._app import _for_command, app

COMMANDS = ["sync", "batch", "ingest-webhook", "status", "migrate", "conflicts", "explain",
            "breaker", "cache", "providers", "sources", "sandbox"]


@pytest.mark.parametrize("argv", [
    *([name, "--help"] for name in COMMANDS),
    ["--json", "sync", "--help"],
    ["--config", "x.yaml", "status", "--help"],
    ["conflicts", "resolve", "--help"],
    ["sync", "NOT-A-FLIGHT", "--date", "2026-02-25"],
])
def test_trimmed_app_matches_the_whole_app(argv: list[str]) -> None:
    """For a command named exactly, the trimmed app prints the same output and exit code."""
    trimmed = _for_command(argv)
    assert trimmed is not app
    runner = CliRunner()
    whole = runner.invoke(app, argv)
    only = runner.invoke(trimmed, argv)
    assert (only.exit_code, only.output) == (whole.exit_code, whole.output)


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["snyc"], ["--json"], ["--", "sync"]])
def test_anything_else_gets_the_whole_app(argv: list[str]) -> None:
    """Root help, no command or a misspelt one (whose error lists the others) use every
    command."""
    assert _for_command(argv) is app
