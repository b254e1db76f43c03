"""Stand-in package trees for the NTP client, from the host's own installed Debian files.

The builder tests run without apt; the host (Debian 12, like the image) has chrony and
its libraries installed from the same packages, so their files as ``dpkg -L`` lists
them, copied, give trees shaped like ``dpkg-deb -x`` output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness.pytest_plugin import require
from nodeimage.ntpclient import NTP_PACKAGES, PROGRAM

LIBC_EXTRA = "lib/x86_64-linux-gnu/libm.so.6"   # chronyd links libm, glibc's


def host_ntp_trees(where: Path) -> dict[str, Path]:
    """One directory per NTP package (but libc6, the TLS client's) with its program and
    libraries from the host; a package the host lacks is a missing requirement."""
    trees: dict[str, Path] = {}
    for package in NTP_PACKAGES:
        if package == "libc6":
            continue
        listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        require(listed.returncode == 0, f"the host lacks {package}: apt-get install {package}")
        tree = where / package
        for line in listed.stdout.splitlines():
            rel = line.lstrip("/")
            if rel != PROGRAM and ".so" not in Path(rel).name:
                continue
            source = Path("/") / rel
            if not source.is_file():
                continue
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tree / rel)
        trees[package] = tree
    return trees


def add_libc_extra(libc6_tree: Path) -> None:
    """Put glibc's libm in the TLS client's libc6 stand-in (the real .deb has it)."""
    source = Path("/") / LIBC_EXTRA
    require(source.is_file(), f"the host has no /{LIBC_EXTRA}: apt-get install libc6")
    (libc6_tree / LIBC_EXTRA).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, libc6_tree / LIBC_EXTRA)
