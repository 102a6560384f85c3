"""README.md documents every command and starts with the quick start and the test command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from flightsync import errors
from flightsync.cli import app
from flightsync.config import ENV_VARS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def command_paths() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, prefix: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(get_command(app), ())
    return paths


@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    """Each command and subcommand appears in README.md as `flightsync <words>` or, for a
    subcommand, inside its group's line of the commands table."""
    words = " ".join(path)
    if f"flightsync {words}" in README:
        return
    group_lines = [line for line in README.splitlines() if f"flightsync {path[0]}" in line]
    assert any(f" {path[-1]}" in line or f"[{path[-1]}" in line for line in group_lines), words


def test_readme_starts_with_quick_start_then_tests() -> None:
    """Line 1 is the quick start (installs, then runs flightsync against the sandbox); line 2
    is the test command, identical to the one .ci/run executes."""
    first, second = README.splitlines()[:2]
    assert first.startswith("python3 -m venv .venv && ")
    assert ".venv/bin/flightsync --sandbox sync " in first
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert second in ci


def test_every_exit_code_is_documented() -> None:
    """Every exit code an error class can produce is in the README's exit code table."""
    pending: list[type[errors.FlightsyncError]] = [errors.FlightsyncError]
    codes = set()
    while pending:
        cls = pending.pop()
        codes.add(cls.exit_code)
        pending.extend(cls.__subclasses__())
    for code in codes | {1, 3}:
        assert f"| {code} |" in README, code


def test_every_environment_variable_is_documented() -> None:
    """Every variable the config loader reads is named in the README."""
    missing = [name for name in ENV_VARS if f"`{name}`" not in README]
    assert missing == []


def test_no_file_cites_documents_outside_the_repository() -> None:
    """The repository stands on its own: no tracked file cites the design, provider or style
    notes that lived beside it (`../shared/DESIGN.md`, `PROVIDERS.md`, `STYLE.md`); citations
    go to the README or to docs/ (CONTRACTS.md, PROVIDERS.md, SANDBOX.md, ARCHITECTURE.md)."""
    import re  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    outside = re.compile(r"\.\./shared/\w+\.md|(?<![/\w])(DESIGN|STYLE|PROVIDERS)\.md")
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.split()
    assert "flightsync/cli/_app.py" in listed  # the walk sees the repository
    citing = []
    for name in listed:
        if name == "tests/test_docs.py":  # this test names the patterns it looks for
            continue
        try:
            text = (REPO / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if outside.search(line):
                citing.append(f"{name}:{number}: {line.strip()[:80]}")
    assert citing == []
    for page in ("CONTRACTS.md", "PROVIDERS.md", "SANDBOX.md"):
        assert (REPO / "docs" / page).is_file(), page
