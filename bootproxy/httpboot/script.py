"""Render the per-machine iPXE script from the Control Plane's boot data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from bootproxy.httpboot.errors import BootDataError

_ARTIFACT = re.compile(r"^[A-Za-z0-9._+-]{1,200}$")


@dataclass(frozen=True)
class BootData:
    """What the Control Plane says a machine boots (``GET /api/v1/machines/{mac}/boot``).

    ``kernel`` and ``initrd`` are artifact names; ``cmdline`` is final (the
    Control Plane already filled in the join token).  The optional sha256s let
    the artifact cache notice that an artifact was replaced under the same name.
    """

    mac: str
    hostname: str
    kernel: str
    initrd: str
    cmdline: str
    kernel_sha256: str | None = None
    initrd_sha256: str | None = None


def _check_line(value: str, field: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise BootDataError(f"boot data field {field!r} contains a control character; "
                            "fix the boot profile in the Control Plane")


CA_INITRD_PATH = "/trust/cp-ca.cpio"


def render_script(boot: BootData, base_url: str, ca_initrd: bool = False) -> str:
    """The iPXE script: fetch kernel and initrd from ``base_url``/artifacts/, boot with cmdline.

    The initrd is named ``initrd`` and the kernel gets ``initrd=initrd`` so
    EFI kernels (which load it via the EFI file protocol) find it too. With
    ``ca_initrd`` a second initrd, ``cpca`` (the proxy's ``--cp-ca`` as a cpio,
    bootproxy.cainitrd), follows it: Linux unpacks both into one initramfs, so
    the node trusts the CA its Boot Proxy trusts.
    """
    for field, value in (("kernel", boot.kernel), ("initrd", boot.initrd)):
        if not _ARTIFACT.match(value):
            raise BootDataError(f"artifact name {value!r} in field {field!r} is not a plain "
                                "file name; fix the boot profile in the Control Plane")
    for field, value in (("cmdline", boot.cmdline), ("hostname", boot.hostname)):
        _check_line(value, field)
    base = base_url.rstrip("/")
    kernel_url = f"{base}/artifacts/{quote(boot.kernel)}"
    initrd_url = f"{base}/artifacts/{quote(boot.initrd)}"
    ca_arg = " initrd=cpca" if ca_initrd else ""
    ca_line = f"initrd --name cpca {base}{CA_INITRD_PATH}\n" if ca_initrd else ""
    return (
        "#!ipxe\n"
        f"# flexlab Boot Proxy: {boot.hostname} ({boot.mac})\n"
        f"echo Booting {boot.hostname} from {base}\n"
        f"kernel {kernel_url} initrd=initrd{ca_arg} {boot.cmdline}\n"
        f"initrd --name initrd {initrd_url}\n"
        f"{ca_line}"
        "boot\n"
    )
