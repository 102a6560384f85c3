"""Import direction of docs/ARCHITECTURE.md, read from the source with ast:

    cli -> engine -> {providers, policy, resilience, store} -> {models, errors, config, logs,
                                                                plausibility}
    cli -> sandbox (which imports nothing from engine, providers or cli)

Imports under ``if TYPE_CHECKING:`` count too: a type-only import still couples the packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "flightsync"
MIDDLE = {"providers", "policy", "resilience", "store"}
FOUNDATION = {"models", "errors", "config", "logs", "plausibility"}
# part -> parts it must never import
FORBIDDEN: dict[str, set[str]] = {
    **{part: {"engine", "cli", "sandbox"} | (MIDDLE - {part}) for part in MIDDLE},
    "sandbox": {"engine", "providers", "cli", "policy", "resilience", "store"},
    "engine": {"cli", "sandbox"},
    **{part: {"engine", "cli", "sandbox"} | MIDDLE for part in FOUNDATION},
}
# server/ is a leaf beside cli/ (issue 15): it calls the engine as a command does, imports no
# command, and nothing below it imports it.
FORBIDDEN["server"] = {"cli", "sandbox"}
for _part in (*MIDDLE, *FOUNDATION, "engine", "sandbox"):
    FORBIDDEN[_part] = FORBIDDEN[_part] | {"server"}


def part_of(path: Path) -> str:
    """The architectural part a module belongs to: its subpackage or top-level module."""
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(path: Path) -> set[str]:
    """flightsync parts imported by the module at ``path`` (absolute and relative imports)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join((*base, node.module or ""))
                names = [module.rstrip(".")]
                if not node.module:
                    names = [f"{module}{alias.name}" for alias in node.names]
            else:
                module = node.module or ""
                names = [module]
                if module == "flightsync":
                    names = [f"flightsync.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "flightsync" and len(parts) > 1:
                found.add(parts[1])
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_scan_sees_the_package() -> None:
    """The scan finds modules in every part, so an empty walk cannot pass by accident."""
    parts = {part_of(path) for path in MODULES}
    assert {"cli", "engine", "config", "errors", "models"} <= parts
    assert "errors" in imported_parts(PACKAGE / "config.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_one_way(path: Path) -> None:
    """No module imports a part that ARCHITECTURE.md puts above or beside it."""
    part = part_of(path)
    bad = imported_parts(path) & FORBIDDEN.get(part, set())
    assert not bad, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(bad)}"


def test_nothing_imports_the_cli() -> None:
    """The CLI is a leaf: only the CLI itself and ``python -m flightsync`` import it."""
    importers = [str(path.relative_to(PACKAGE)) for path in MODULES
                 if part_of(path) not in ("cli", "__main__") and "cli" in imported_parts(path)]
    assert importers == []
