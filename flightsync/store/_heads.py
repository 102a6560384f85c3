"""The migration head(s), read from the revision scripts' source without importing Alembic.

Alembic takes ~0.3 s to import; every command checks the schema before it runs, so that check
reads ``revision`` and ``down_revision`` itself. An empty answer means "could not tell" and
sends the caller to Alembic; ``tests/test_benchmarks_smoke.py`` holds it equal to
``migrate.heads()``.
"""

from __future__ import annotations

import ast
import functools
from importlib import resources
from pathlib import Path


def _versions_folder() -> Path:
    try:
        return Path(str(resources.files("flightsync.migrations"))) / "versions"
    except ModuleNotFoundError:  # a source checkout used without installing
        return Path(__file__).resolve().parents[2] / "migrations" / "versions"


def _assigned(tree: ast.Module) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in tree.body:
        target = value = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(value) if value is not None else None
    return values


@functools.cache
def script_heads() -> list[str]:
    """Sorted head revisions of the shipped scripts, or [] when they cannot be read plainly."""
    revisions: set[str] = set()
    downs: set[str] = set()
    try:
        for script in sorted(_versions_folder().glob("*.py")):
            values = _assigned(ast.parse(script.read_text(encoding="utf-8")))
            revision = values.get("revision")
            if revision is None:
                continue  # not a revision script (__init__.py)
            down = values.get("down_revision")
            if not isinstance(revision, str):
                return []
            revisions.add(revision)
            if isinstance(down, str):
                downs.add(down)
            elif isinstance(down, tuple | list):
                downs.update(str(d) for d in down)
            elif down is not None:
                return []
    except (OSError, SyntaxError, ValueError, TypeError, UnicodeDecodeError):
        return []
    return sorted(revisions - downs)
