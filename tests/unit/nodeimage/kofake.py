"""Minimal ELF64 kernel-module stand-ins (just a .modinfo section) for builder tests."""

from __future__ import annotations

import struct
from pathlib import Path


def write_fake_module(path: Path, depends: list[str]) -> Path:
    """Write an ELF64 file whose .modinfo says ``depends=a,b``."""
    modinfo = f"license=GPL\0depends={','.join(depends)}\0name={path.stem}\0".encode()
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    ehdr_size, shentsize = 64, 64
    modinfo_off = ehdr_size
    shstr_off = modinfo_off + len(modinfo)
    shoff = shstr_off + len(shstrtab)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, ehdr_size, 0, 0,
                               shentsize, 3, 2)

    def shdr(name: int, kind: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, 0, 0, offset, size, 0, 0, 1, 0)

    sections = (shdr(0, 0, 0, 0) + shdr(1, 1, modinfo_off, len(modinfo))
                + shdr(10, 3, shstr_off, len(shstrtab)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ehdr + modinfo + shstrtab + sections)
    return path
