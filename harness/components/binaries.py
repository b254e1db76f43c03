"""Finding the daemons the lab runs, with one error shape for a missing one."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import DependencyError


def require_binary(binary: str, package: str) -> str:
    """Path of ``binary`` on PATH, else in /usr/sbin (root's PATH may lack it), or a
    one-line DependencyError naming the Debian ``package`` that installs it."""
    path = shutil.which(binary)
    if path is None and Path("/usr/sbin", binary).exists():
        path = str(Path("/usr/sbin", binary))
    if path is None:
        raise DependencyError(f"{binary} not found: apt-get install {package}")
    return path
