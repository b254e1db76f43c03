"""Run a :class:`DomainSpec` under libvirt: define, start paused, resume, always clean up.

Start paused exists for the network: QEMU opens each unmanaged tap at start,
and only then can the builder move the tap into the lab namespace (MACHINE-NOTES);
resuming lets the firmware run with its NIC already on the lab segment.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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


def teardown_all(doms: Sequence[Any]) -> list[str]:
    """:func:`teardown` every domain at once; the error of each one that failed.

    libvirt takes 1.2-1.6 s to destroy a domain here even though QEMU exits on SIGTERM in
    milliseconds (it polls the process and cleans up after it), so a lab's VMs one after
    the other cost that per VM. The bindings release the GIL and libvirtd serves a
    connection's calls concurrently, so the domains go down side by side."""
    if len(doms) <= 1:
        return [error for dom in doms if (error := _teardown_error(dom))]
    with ThreadPoolExecutor(max_workers=len(doms), thread_name_prefix="vm-teardown") as pool:
        return [error for error in pool.map(_teardown_error, doms) if error]


def _teardown_error(dom: Any) -> str | None:
    try:
        teardown(dom)
    except Exception as exc:  # every domain still gets its turn; the caller reports all
        return str(exc)
    return None


def domains_of_lab(conn: Any, lab_id: str) -> list[Any]:
    """All domains labelled with ``lab_id`` in their flexlab metadata (what `flexlab clean` reaps).

    Selection is by the metadata label, never by a name pattern.
    """
    _libvirt()
    return domains_by_lab(conn).get(lab_id, [])
