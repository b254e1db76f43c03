"""HTTP byte ranges (RFC 9110 §14): parse a Range header against a known size."""

from __future__ import annotations

import re

from bootproxy.httpboot.errors import HttpBootError

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(HttpBootError):
    """The range is syntactically fine but lies outside the file: answer 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return ``(start, end_inclusive)`` for a single satisfiable byte range.

    None means "serve the whole file" (no header, another unit, several ranges
    or bad syntax: RFC 9110 lets a server ignore those).  Raises
    :class:`Unsatisfiable` when the range cannot be served.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _SPEC.match(spec)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable(spec)
        return max(0, size - length), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable(spec)
    end = int(last) if last else size - 1
    if end < start:
        return None
    return start, min(end, size - 1)
