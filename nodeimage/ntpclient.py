"""The node's NTP client: chrony's ``chronyd -q`` and what it links, from Debian packages.

The guide wants every node's clock within a second of the site's, set by NTP from the
site's time source (DHCP option 42). Debian's busybox builds (busybox-static and
busybox alike) leave out busybox's ``ntpd`` applet, so the image brings a real NTP
client instead: ``chronyd -q 'server <option 42> iburst'`` measures the offset against
the server, steps the clock once and exits — the same software as the site's own time
source. Its closure (GnuTLS for NTS and what that links, libcap, libseccomp) is about
7 MB unpacked beside glibc, which the TLS client already brings.

Files are copied from the unpacked .debs (never the host): the program, then every
library its ELF closure names, looked up in the unpacked packages; the build fails
when a library is in none of them.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from nodeimage.errors import PackageError
from nodeimage.tlsclient import LIBRARY_DIRS, check_closure, elf_dependencies

PROGRAM = "usr/sbin/chronyd"
# chrony and every package its closure's libraries come from (Debian 12 names);
# libc6 is the TLS client's (glibc is staged once, from the same package)
NTP_PACKAGES: tuple[str, ...] = (
    "chrony", "libcap2", "libgnutls30", "libnettle8", "libhogweed6", "libseccomp2",
    "libp11-kit0", "libidn2-0", "libunistring2", "libtasn1-6", "libgmp10", "libffi8",
    "libc6")
# what the agent's chronyd needs besides its files: root in /etc/passwd (chronyd looks
# its user up even when it stays root) and its run directory
PASSWD = "root:x:0:0:root:/root:/bin/sh\n"


def _find(trees: Mapping[str, Path], name: str) -> tuple[Path, str] | None:
    for tree in trees.values():
        for directory in LIBRARY_DIRS:
            candidate = tree / directory / name
            if candidate.exists():
                return candidate.resolve(), f"{directory}/{name}"
    return None


def stage(root: Path, trees: Mapping[str, Path]) -> list[str]:
    """Copy chronyd and its library closure from the unpacked packages into ``root``.

    ``trees`` maps each of :data:`NTP_PACKAGES` to its ``dpkg-deb -x`` directory; a
    library already in ``root`` (glibc, from the TLS client) is kept. Returns the files
    copied; raises :class:`PackageError` when something is missing.
    """
    missing = [p for p in NTP_PACKAGES if p not in trees]
    if missing:
        raise PackageError(f"the NTP client needs {', '.join(missing)}; not unpacked")
    source = trees["chrony"] / PROGRAM
    if not source.is_file():
        raise PackageError(f"chrony has no {PROGRAM}; has Debian moved it? update "
                           "nodeimage/ntpclient.py")
    copied = [PROGRAM]
    (root / PROGRAM).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, root / PROGRAM)
    (root / PROGRAM).chmod(0o755)
    queue = [root / PROGRAM]
    while queue:
        _interp, needed = elf_dependencies(queue.pop(0))
        for name in needed:
            if any((root / d / name).exists() for d in LIBRARY_DIRS):
                continue
            found = _find(trees, name)
            if found is None:
                raise PackageError(f"{PROGRAM} needs {name}, which none of "
                                   f"{', '.join(NTP_PACKAGES)} ships; add its package to "
                                   "nodeimage/ntpclient.py NTP_PACKAGES")
            path, rel = found
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            target.chmod(0o755)
            copied.append(rel)
            queue.append(target)
    passwd = root / "etc/passwd"
    if not passwd.exists():
        passwd.parent.mkdir(parents=True, exist_ok=True)
        passwd.write_text(PASSWD)
    (root / "run/chrony").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/chrony").mkdir(parents=True, exist_ok=True)
    check_closure(root, PROGRAM)
    return copied
