"""Bounded reads of files and streams (config, policy, batch, webhook and spool files).

Every input is read to at most one byte past its limit: the extra byte tells the caller the
input is over it, without reading the rest (``/dev/zero`` or a runaway pipe never ends).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO


def read_at_most(source: Path | BinaryIO, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of ``source``; OSError as ``open``/``read`` raise it."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return handle.read(limit + 1)
    return source.read(limit + 1)


def mebibytes(limit: int) -> str:
    """``limit`` for a message: ``8 MiB``, ``64 KiB`` or ``100 bytes``."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"
