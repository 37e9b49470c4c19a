"""What every ``cove`` command writes besides its result: the one-line failure, and aligned tables."""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["fail", "note", "table"]


def fail(message: str, err: TextIO | None = None, code: int = 1) -> int:
    """Print ``cove: message`` (on one line) on standard error and return ``code``, the exit status."""
    print(f"cove: {' '.join(str(message).split())}", file=err or sys.stderr)  # resolved at call time (tests)
    return code


def note(message: str, err: TextIO | None = None) -> None:
    """Print ``cove: message`` on standard error: something said on the side (the result goes to standard output)."""
    print(f"cove: {message}", file=err or sys.stderr)


def table(rows: list[list[str]], out: TextIO, right: frozenset[int] = frozenset()) -> None:
    """Write ``rows`` as columns padded to their widest cell; ``right`` columns aligned right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        out.write("  ".join(cells).rstrip() + "\n")
