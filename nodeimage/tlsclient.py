"""The node's verifying HTTPS client: OpenSSL's `openssl s_client` and what it links.

busybox wget speaks TLS but never checks a certificate, so a node could hand
its join token to anyone on the path. Of Debian's clients that do verify,
`openssl` is the smallest whole closure: the binary, libssl3 (libssl +
libcrypto) and glibc — about 8.5 MB unpacked. curl pulls libcurl4 with Kerberos,
LDAP, SSH, RTMP, nghttp2, brotli, zstd and GnuTLS (for LDAP) on top of OpenSSL;
GNU wget pulls GnuTLS with nettle, gmp, p11-kit, libunistring, pcre2 and more.
`s_client -verify_return_error -CAfile ... -verify_hostname/-verify_ip` checks
the chain, the validity window and the name, and names the failure by its
X.509 verify code; nodeimage/files/https.sh speaks HTTP/1.0 over it.

Everything is copied from the unpacked .debs (never the host) and the build
fails when an ELF in the closure needs a library or loader the image lacks.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Mapping
from pathlib import Path

from nodeimage.errors import PackageError

TLS_PACKAGES: tuple[str, ...] = ("openssl", "libssl3", "libc6")
MULTIARCH = "x86_64-linux-gnu"
# package -> files taken from it (paths inside the package and the image)
TLS_FILES: dict[str, tuple[str, ...]] = {
    "openssl": ("usr/bin/openssl",),
    "libssl3": (f"usr/lib/{MULTIARCH}/libssl.so.3", f"usr/lib/{MULTIARCH}/libcrypto.so.3"),
    "libc6": (f"lib/{MULTIARCH}/libc.so.6", f"lib/{MULTIARCH}/ld-linux-x86-64.so.2"),
}
PROGRAM = "usr/bin/openssl"
# The ELF interpreter path every Debian amd64 binary names, as libc6 ships it.
LOADER_LINK = ("lib64/ld-linux-x86-64.so.2", f"../lib/{MULTIARCH}/ld-linux-x86-64.so.2")
# Where glibc's loader looks without an ld.so.cache (Debian's built-in multiarch dirs).
LIBRARY_DIRS: tuple[str, ...] = (f"lib/{MULTIARCH}", f"usr/lib/{MULTIARCH}", "lib", "usr/lib")

_PT_INTERP = 3
_SHT_DYNAMIC = 6
_DT_NEEDED = 1


def stage(root: Path, trees: Mapping[str, Path]) -> list[str]:
    """Copy the client's files from the unpacked packages into ``root``; return them.

    ``trees`` maps each of `TLS_PACKAGES` to its ``dpkg-deb -x`` directory.
    Raises `PackageError` when a file is missing from its package or the
    closure is incomplete.
    """
    copied: list[str] = []
    for package, paths in TLS_FILES.items():
        tree = trees.get(package)
        if tree is None:
            raise PackageError(f"the TLS client needs the {package} package; it was not unpacked")
        for rel in paths:
            source = tree / rel
            if not source.is_file():
                raise PackageError(f"{package} has no {rel} (looked in {tree}); has Debian "
                                   "moved it? update nodeimage/tlsclient.py TLS_FILES")
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            target.chmod(0o755)
            copied.append(rel)
    link = root / LOADER_LINK[0]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(LOADER_LINK[1])
    check_closure(root, PROGRAM)
    return copied


def elf_dependencies(path: Path) -> tuple[str | None, list[str]]:
    """(ELF interpreter or None, DT_NEEDED names) of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise PackageError(f"{path} is not a 64-bit little-endian ELF file")
    phoff, shoff = struct.unpack_from("<QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 0x36)
    interp = None
    for index in range(phnum):
        base = phoff + index * phentsize
        p_type, = struct.unpack_from("<I", data, base)
        if p_type == _PT_INTERP:
            offset, = struct.unpack_from("<Q", data, base + 0x08)
            size, = struct.unpack_from("<Q", data, base + 0x20)
            interp = data[offset:offset + size].rstrip(b"\0").decode()

    def section(index: int) -> tuple[int, int, int, int]:
        base = shoff + index * shentsize
        sh_type, = struct.unpack_from("<I", data, base + 0x04)
        offset, size = struct.unpack_from("<QQ", data, base + 0x18)
        link, = struct.unpack_from("<I", data, base + 0x28)
        return sh_type, offset, size, link

    needed: list[str] = []
    for index in range(shnum):
        sh_type, offset, size, link = section(index)
        if sh_type != _SHT_DYNAMIC:
            continue
        _, strtab, _, _ = section(link)
        for entry in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, entry)
            if tag == _DT_NEEDED:
                end = data.index(b"\0", strtab + value)
                needed.append(data[strtab + value:end].decode())
    return interp, needed


def _find_library(root: Path, name: str) -> Path | None:
    for directory in LIBRARY_DIRS:
        candidate = root / directory / name
        if candidate.is_file():
            return candidate
    return None


def check_closure(root: Path, program: str) -> list[str]:
    """Every file ``program`` needs to run inside ``root`` (loader and libraries), in order.

    Raises `PackageError` naming what is missing and which file needs it.
    """
    seen: list[str] = []
    queue = [root / program]
    while queue:
        current = queue.pop(0)
        interp, needed = elf_dependencies(current)
        if interp is not None:
            loader = root / interp.lstrip("/")
            if not loader.is_file():
                raise PackageError(f"{current.relative_to(root)} needs the loader {interp}, "
                                   "which the image lacks")
        for name in needed:
            found = _find_library(root, name)
            if found is None:
                raise PackageError(f"{current.relative_to(root)} needs {name}, which is in "
                                   f"none of {', '.join(LIBRARY_DIRS)} in the image; add its "
                                   "package to nodeimage/tlsclient.py")
            rel = str(found.relative_to(root))
            if rel not in seen:
                seen.append(rel)
                queue.append(found)
    return seen
