"""Stand-in package trees for the TLS client, copied from the host's own Debian files.

The builder tests run without apt; the host (Debian 12, like the image) has the
same openssl, libssl3 and libc6 files at the same paths, so copying them gives
trees shaped exactly like ``dpkg-deb -x`` output.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.pytest_plugin import require
from nodeimage.tlsclient import TLS_FILES


def host_tls_trees(where: Path) -> dict[str, Path]:
    """One directory per TLS package holding its files from the host; a file the host lacks
    is a missing requirement (skip with the package to install; under CI, a failure)."""
    trees: dict[str, Path] = {}
    for package, paths in TLS_FILES.items():
        tree = where / package
        for rel in paths:
            source = Path("/") / rel
            require(source.is_file(), f"the host has no /{rel}: apt-get install {package}")
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tree / rel)
        trees[package] = tree
    return trees
