"""Run a :class:`DomainSpec` under libvirt: define, start paused, resume, always clean up.

Start paused exists for the network: QEMU opens each unmanaged tap at start,
and only then can the builder move the tap into the lab namespace (MACHINE-NOTES);
resuming lets the firmware run with its NIC already on the lab segment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from harness.errors import LabError
from harness.lab.vm_labels import LIBVIRT_URI, destroy_domain, domains_by_lab
from harness.machines.vm.domain import DomainSpec
from harness.machines.vm.errors import VmError

DEFAULT_URI = LIBVIRT_URI


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
    _libvirt()  # the bindings' how-to if they are missing
    try:
        destroy_domain(dom)
    except LabError as exc:
        raise LibvirtError(str(exc)) from exc


def domains_of_lab(conn: Any, lab_id: str) -> list[Any]:
    """All domains labelled with ``lab_id`` in their flexlab metadata (what `flexlab clean` reaps).

    Selection is by the metadata label, never by a name pattern.
    """
    _libvirt()
    return domains_by_lab(conn).get(lab_id, [])
