"""The libvirt domains a lab owns, found by the lab label in their metadata.

A lab labels everything it creates so that `flexlab clean` and `flexlab inspect` can
find it after a crash: namespaces by name, containers by the Docker label
``io.flexlab.lab``, and libvirt domains by a metadata element in this namespace whose
text is the lab id. The label is the lab's, so it lives here, below the VM machinery
that writes it into domain XML (harness.machines.vm.domain) and beside the cleanup
that reaps by it; nothing here needs libvirt until a function is called.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.errors import LabError

__all__ = [
    "LAB_METADATA_NS",
    "LIBVIRT_SOCKET",
    "LIBVIRT_URI",
    "destroy_domain",
    "domains_by_lab",
    "libvirt_running",
]

LAB_METADATA_NS = "https://flexlab.dev/ns/1"
LIBVIRT_URI = "qemu:///system"
LIBVIRT_SOCKET = Path("/run/libvirt/libvirt-sock")


def libvirt_running() -> bool:
    """libvirtd's socket exists (without it there are no domains to look for)."""
    return LIBVIRT_SOCKET.exists()


def domains_by_lab(conn: Any) -> dict[str, list[Any]]:
    """Every domain carrying flexlab's lab label, by lab id; unlabelled domains are not
    ours and are never returned (selection is by label, not by a name pattern)."""
    import libvirt

    found: dict[str, list[Any]] = {}
    for dom in conn.listAllDomains():
        try:
            xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, LAB_METADATA_NS)
        except libvirt.libvirtError:
            continue  # not a flexlab domain
        lab_id = (ET.fromstring(xml).text or "").strip()
        found.setdefault(lab_id, []).append(dom)
    return found


def destroy_domain(dom: Any) -> None:
    """Stop (if running) and undefine a domain, NVRAM included; LabError if libvirt
    refuses the undefine (a stopped-but-defined domain would block the next run's name)."""
    import libvirt

    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    try:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError as exc:
        raise LabError(f"undefine {dom.name()} failed: {exc}; run `flexlab clean`") from exc
