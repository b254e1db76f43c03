"""Run a :class:`DomainSpec` under libvirt: define, start paused, resume, always clean up.

Start paused exists for the network: QEMU opens each unmanaged tap at start,
and only then can the builder move the tap into the lab namespace (MACHINE-NOTES);
resuming lets the firmware run with its NIC already on the lab segment.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from harness.machines.vm.domain import FLEXLAB_NS, DomainSpec
from harness.machines.vm.errors import VmError

DEFAULT_URI = "qemu:///system"


class LibvirtError(VmError):
    """libvirt refused an operation; the message carries libvirt's own reason."""


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:  # pragma: no cover - depends on the host
        raise LibvirtError(
            "python libvirt bindings missing: apt-get install libvirt-dev, then "
            "pip install libvirt-python (the vm extra)"
        ) from exc
    return libvirt


def connect(uri: str = DEFAULT_URI) -> Any:
    """Open a libvirt connection, with a message that says what to start if it fails."""
    libvirt = _libvirt()
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"cannot connect to {uri}: {exc}; is libvirtd running?") from exc


@contextlib.contextmanager
def started_domain(conn: Any, spec: DomainSpec, *, paused: bool = True) -> Iterator[Any]:
    """Define and start ``spec``'s domain (paused by default); destroy and undefine on exit.

    Cleanup runs on every path, including a start that fails halfway.
    """
    libvirt = _libvirt()
    dom = None
    try:
        try:
            dom = conn.defineXMLFlags(spec.to_xml(), libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
        except libvirt.libvirtError as exc:
            raise LibvirtError(f"starting {spec.name} failed: {exc}") from exc
        yield dom
    finally:
        if dom is not None:
            teardown(dom)


def teardown(dom: Any) -> None:
    """Destroy (if running) and undefine a domain, NVRAM included."""
    libvirt = _libvirt()
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()
    flags = libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    try:
        dom.undefineFlags(flags)
    except libvirt.libvirtError as exc:
        raise LibvirtError(f"undefine {dom.name()} failed: {exc}; run `flexlab clean`") from exc


def domains_of_lab(conn: Any, lab_id: str) -> list[Any]:
    """All domains labelled with ``lab_id`` in their flexlab metadata (what `flexlab clean` reaps).

    Selection is by the metadata label, never by a name pattern.
    """
    libvirt = _libvirt()
    found = []
    for dom in conn.listAllDomains():
        try:
            xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, FLEXLAB_NS)
        except libvirt.libvirtError:
            continue  # not a flexlab domain
        if ET.fromstring(xml).text == lab_id:
            found.append(dom)
    return found
