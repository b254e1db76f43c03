"""The Control Plane CA as a tiny initrd the node image's agent trusts.

Linux unpacks every cpio archive it is handed, in order, into one initramfs;
iPXE hands over every `initrd` it loaded and QEMU/libvirt direct boot take the
archives concatenated. So a node learns which CA signs the Control Plane from a
second archive holding one file, `CA_PATH`, next to the unchanged node image:
the image stays the same for every lab, the trust anchor comes with the boot.
The node agent (nodeimage/files/agent.sh) reads exactly this path.

Standard library only (the Boot Proxy image has nothing else); the archive is
reproducible: fixed mtime, owner 0:0, inode numbers by position.
"""

from __future__ import annotations

from bootproxy.errors import ConfigError

__all__ = ["CA_PATH", "ca_initrd"]

CA_PATH = "flexlab/cp-ca.pem"
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _entry(ino: int, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> bytes:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    header = b"070701" + b"".join(f"{value:08X}".encode() for value in fields)
    return header + encoded + _pad4(len(header) + len(encoded)) + data + _pad4(len(data))


def ca_initrd(pem: bytes) -> bytes:
    """An uncompressed newc cpio archive with `pem` at `CA_PATH` (and its directory).

    `ConfigError` when `pem` holds no PEM certificate: a node given garbage as
    its trust anchor would only fail later and less clearly.
    """
    if _PEM_BEGIN not in pem:
        raise ConfigError("the Control Plane CA is not a PEM certificate "
                          f"(no {_PEM_BEGIN.decode()} line); give the CA file itself")
    directory = CA_PATH.rsplit("/", 1)[0]
    return (
        _entry(1, directory, 0o040755, nlink=2)
        + _entry(2, CA_PATH, 0o100644, pem)
        + _entry(0, "TRAILER!!!", 0, nlink=1)
    )
