"""Fixed-width patterns as GLOB: ``T[0-9]{9}`` is ``T[0-9][0-9]...``, a cheaper test.

A pattern made only of ASCII letters, digits and character classes of them, each
repeated a fixed number of times, matches a text exactly when the GLOB does: both
read the whole text, and a character outside ASCII matches neither. Any other
pattern (alternatives, optional or repeated parts, anchors, dots) stays a regular
expression.
"""

from __future__ import annotations

import re

__all__ = ["as_glob"]

# One atom: a class of letters, digits and ranges of them, a letter or digit, or \d;
# then an optional fixed count.
_ATOM = re.compile(r"(\[(?:[A-Za-z0-9](?:-[A-Za-z0-9])?)+\]|[A-Za-z0-9]|\\d)(?:\{([0-9]{1,2})\})?")
_RANGE = re.compile(r"([A-Za-z0-9])-([A-Za-z0-9])")
# Longer GLOBs stop paying off; such patterns are rare.
_MAX_WIDTH = 64


def _ranges_ordered(atom: str) -> bool:
    return all(low <= high for low, high in _RANGE.findall(atom))


def as_glob(pattern: str) -> str | None:
    """The GLOB equal to full-matching ``pattern``, or None when there is none."""
    parts: list[str] = []
    width = 0
    position = 0
    while position < len(pattern):
        match = _ATOM.match(pattern, position)
        if match is None:
            return None
        atom, count = match.group(1), int(match.group(2) or 1)
        if atom == "\\d":
            atom = "[0-9]"
        if atom.startswith("[") and not _ranges_ordered(atom):
            return None
        parts.append(atom * count)
        width += count
        position = match.end()
    return "".join(parts) if 0 < width <= _MAX_WIDTH else None
