"""Hand a node image its Control Plane CA for a direct kernel boot.

Over PXE the Boot Proxy serves the CA as a second initrd (bootproxy.cainitrd);
QEMU's ``-initrd`` and libvirt's ``<initrd>`` take one file, so here the same
archive is appended to the image's initrd. Linux unpacks concatenated archives
one after the other, compressed or not, into the same initramfs.
"""

from __future__ import annotations

from pathlib import Path

from bootproxy.cainitrd import CA_PATH, ca_initrd

__all__ = ["CA_PATH", "initrd_with_ca"]


def initrd_with_ca(initrd: Path, ca_cert: Path, dest: Path) -> Path:
    """Write ``initrd`` followed by the CA archive for ``ca_cert`` to ``dest``; return it.

    Linux reads an archive after a compressed one only at a 4-byte aligned offset
    (NULs in between are skipped), so the image is padded first; images built
    since the TLS client came are padded already.
    """
    image = initrd.read_bytes()
    dest.write_bytes(image + b"\0" * (-len(image) % 4) + ca_initrd(ca_cert.read_bytes()))
    return dest
