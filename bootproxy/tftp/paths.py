"""Confine requested file names to the boot root (CONFORMANCE TFTP-9).

Shared with the HTTP boot server, which has the same threat model: a client
names a file, and nothing outside the root may ever be opened.
"""

from __future__ import annotations

import os
from pathlib import Path

from bootproxy.tftp.errors import PathError

NOT_FOUND = 1
ACCESS_VIOLATION = 2


def resolve_in_root(root: Path, name: str) -> Path:
    """Return the real path of ``name`` inside ``root`` or raise :class:`PathError`.

    Refuses absolute names, ``..`` components, NUL bytes and anything whose
    resolved path (symlinks followed) leaves the root.  Backslashes are taken
    as separators because some Windows-built ROM configs send them.  The
    result is checked to be a regular file, so directories and devices are
    refused too.
    """
    if "\0" in name:
        raise PathError(f"file name {name!r} contains NUL", ACCESS_VIOLATION)
    clean = name.replace("\\", "/")
    if clean.startswith("/"):
        raise PathError(f"absolute file name {name!r} refused", ACCESS_VIOLATION)
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if not parts:
        raise PathError(f"empty file name {name!r}", ACCESS_VIOLATION)
    if ".." in parts:
        raise PathError(f"file name {name!r} climbs out with '..'", ACCESS_VIOLATION)
    real_root = Path(os.path.realpath(root))
    candidate = Path(os.path.realpath(real_root.joinpath(*parts)))
    if candidate != real_root and real_root not in candidate.parents:
        raise PathError(f"file name {name!r} resolves outside the boot root", ACCESS_VIOLATION)
    if not candidate.exists():
        raise PathError(f"file {name!r} not found in the boot root", NOT_FOUND)
    if not candidate.is_file():
        raise PathError(f"{name!r} is not a regular file", ACCESS_VIOLATION)
    if not os.access(candidate, os.R_OK):
        raise PathError(f"file {name!r} is not readable", ACCESS_VIOLATION)
    return candidate
