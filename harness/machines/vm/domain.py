"""A typed VM spec that renders libvirt domain XML.

Declare, then build: a :class:`DomainSpec` is plain validated data and
:meth:`DomainSpec.to_xml` is a pure function of it, so the unit tier checks the
XML against reference files and only the builder talks to libvirt.

Network attachment follows MACHINE-NOTES: each NIC is an unmanaged tap
(``<interface type='ethernet'>`` with ``<target dev=... managed='no'/>``) that
the builder creates beforehand; the domain is started paused, the tap is moved
into the lab's namespace, then the domain is resumed. A bridge interface would
put the tap in the root namespace, where Docker's FORWARD DROP applies.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.lab.vm_labels import LAB_METADATA_NS
from harness.machines.vm.errors import VmSpecError
from harness.macs import MacError, normalize_mac

FLEXLAB_NS = LAB_METADATA_NS  # the lab label libvirt domains carry (harness/lab/vm_labels.py)
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE.fd")
OVMF_VARS_TEMPLATE = Path("/usr/share/OVMF/OVMF_VARS.fd")
QEMU_EMULATOR = Path("/usr/bin/qemu-system-x86_64")
GIB = 1024**3

_LAB_ID_RE = re.compile(r"^[a-z0-9]{3,12}$")
_MACHINE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_TAP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # IFNAMSIZ 16 incl. NUL


class Accel(StrEnum):
    """How QEMU runs the guest: KVM, or TCG emulation (the only one that works here)."""

    KVM = "kvm"
    TCG = "tcg"

    @property
    def domain_type(self) -> str:
        """libvirt's ``<domain type=...>`` for this accelerator."""
        return "kvm" if self is Accel.KVM else "qemu"


class Firmware(StrEnum):
    """The machine's firmware: SeaBIOS (legacy PXE) or OVMF (UEFI PXE / HTTP boot)."""

    BIOS = "bios"
    UEFI = "uefi"


class NicModel(StrEnum):
    """NIC models whose PXE ROMs and Linux drivers the lab exercises."""

    VIRTIO = "virtio"
    E1000 = "e1000"
    E1000E = "e1000e"
    RTL8139 = "rtl8139"


@dataclass(frozen=True)
class Nic:
    """One NIC: a pre-created unmanaged tap, its MAC and the emulated model.

    ``rom=False`` removes the NIC's option ROM; with OVMF that makes the
    firmware's own PXE stack boot instead of the ROM's iPXE (MACHINE-NOTES).
    """

    tap: str
    mac: str
    model: NicModel = NicModel.VIRTIO
    rom: bool = True

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mac", normalize_mac(self.mac, "NIC MAC"))
        except MacError as exc:
            raise VmSpecError(str(exc)) from exc
        if not _TAP_RE.match(self.tap):
            raise VmSpecError(
                f"tap name {self.tap!r} is not a valid interface name (1-15 characters, "
                "letters, digits, '-', '_', '.'); shorten it"
            )


@dataclass(frozen=True)
class DataDisk:
    """The sparse data disk the node agent formats for bulk data (≥ 10 GB to qualify)."""

    path: Path
    size_bytes: int = 12 * GIB
    format: str = "qcow2"
    bus: str = "virtio"

    def __post_init__(self) -> None:
        if self.format not in ("qcow2", "raw"):
            raise VmSpecError(f"disk format {self.format!r} unsupported; use qcow2 or raw")
        if self.bus not in ("virtio", "sata"):
            raise VmSpecError(f"disk bus {self.bus!r} unsupported; use virtio or sata")
        if self.size_bytes <= 0:
            raise VmSpecError("disk size_bytes must be positive")

    @property
    def target(self) -> str:
        """The guest device name libvirt is asked for (vda / sda)."""
        return "vda" if self.bus == "virtio" else "sda"


@dataclass(frozen=True)
class DirectBoot:
    """Direct kernel boot (``<os><kernel>``): skips firmware and PXE, for smoke tests."""

    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0 panic=-1"


@dataclass(frozen=True)
class DomainSpec:
    """Everything that defines one lab VM; renders libvirt domain XML.

    ``uefi_vars`` is this VM's own copy of the OVMF variable store; libvirt
    creates it from ``uefi_vars_template`` when it does not exist yet, and
    :func:`harness.machines.vm.disk.fresh_uefi_vars` makes a fresh one.
    """

    lab_id: str
    machine: str
    nics: tuple[Nic, ...]
    serial_log: Path
    vcpus: int = 2
    memory_mib: int = 4096
    accel: Accel = Accel.TCG
    firmware: Firmware = Firmware.BIOS
    uefi_vars: Path | None = None
    uefi_code: Path = OVMF_CODE
    uefi_vars_template: Path = OVMF_VARS_TEMPLATE
    data_disk: DataDisk | None = None
    direct_boot: DirectBoot | None = None
    emulator: Path = QEMU_EMULATOR
    # Like QEMU -no-reboot: a guest reboot ends the domain (iPXE has no poweroff).
    on_reboot: str = "destroy"
    extra_metadata: dict[str, str] = field(default_factory=dict)
    # QEMU fw_cfg entries (libvirt <sysinfo type='fwcfg'>), e.g. OVMF's
    # opt/org.tianocore/IPv4PXESupport=n, which leaves only its HTTP boot options.
    fw_cfg: tuple[tuple[str, str], ...] = ()
    # The guest architecture: x86_64 (pc/q35), or aarch64 (QEMU virt + AAVMF, TCG only;
    # set emulator, uefi_code and uefi_vars_template to the ARM files).
    arch: str = "x86_64"
    # Seconds the guest's RTC starts off UTC (facts.clock_skew_s): libvirt's
    # <clock offset='variable' adjustment=N>, i.e. QEMU -rtc base=<UTC + N s>.
    clock_offset_s: int = 0

    def __post_init__(self) -> None:
        if not _LAB_ID_RE.match(self.lab_id):
            raise VmSpecError(f"lab id {self.lab_id!r} must be 3-12 lower-case letters/digits")
        if not _MACHINE_RE.match(self.machine):
            raise VmSpecError(
                f"machine name {self.machine!r} must be lower-case letters, digits and '-'"
            )
        if not self.nics and self.direct_boot is None:
            raise VmSpecError("a VM without NICs cannot PXE boot; add a Nic or use DirectBoot")
        if len({n.mac for n in self.nics}) != len(self.nics):
            raise VmSpecError("two NICs share a MAC; give each NIC its own")
        if len({n.tap for n in self.nics}) != len(self.nics):
            raise VmSpecError("two NICs share a tap; give each NIC its own")
        if self.vcpus < 1:
            raise VmSpecError("vcpus must be at least 1")
        if self.memory_mib < 128:
            raise VmSpecError("memory_mib must be at least 128 (the node agent needs RAM)")
        if self.firmware is Firmware.UEFI and self.uefi_vars is None:
            raise VmSpecError(
                "UEFI needs a per-VM variable store: set uefi_vars to a path in the lab's "
                "temp dir (never share OVMF_VARS.fd between VMs)"
            )
        if self.on_reboot not in ("destroy", "restart"):
            raise VmSpecError("on_reboot must be 'destroy' or 'restart'")
        if self.arch not in ("x86_64", "aarch64"):
            raise VmSpecError(f"arch {self.arch!r} unsupported; use x86_64 or aarch64")
        if self.arch == "aarch64" and (self.firmware is not Firmware.UEFI
                                       or self.accel is not Accel.TCG):
            raise VmSpecError("an aarch64 guest boots UEFI (AAVMF) under TCG only")
        for name, _ in self.fw_cfg:
            if not name.startswith("opt/"):
                raise VmSpecError(f"fw_cfg name {name!r} must start with 'opt/' (QEMU's rule)")
        for key in self.extra_metadata:
            if not _MACHINE_RE.match(key) or key in ("machine", "xmlns"):
                raise VmSpecError(f"metadata key {key!r} must be lower-case letters and '-'")

    @property
    def name(self) -> str:
        """The libvirt domain name; carries the lab id so `flexlab clean` finds it."""
        return f"flexlab-{self.lab_id}-{self.machine}"

    @property
    def machine_type(self) -> str:
        """QEMU machine type: q35 for OVMF (pflash, as MACHINE-NOTES measured), pc for SeaBIOS."""
        if self.arch == "aarch64":
            return "virt"
        return "q35" if self.firmware is Firmware.UEFI else "pc"

    def to_xml(self) -> str:
        """Render the libvirt domain XML (deterministic: same spec, same text)."""
        dom = ET.Element("domain", type=self.accel.domain_type)
        ET.SubElement(dom, "name").text = self.name
        dom.append(self._metadata())
        ET.SubElement(dom, "memory", unit="MiB").text = str(self.memory_mib)
        ET.SubElement(dom, "vcpu").text = str(self.vcpus)
        dom.append(self._os())
        features = ET.SubElement(dom, "features")
        ET.SubElement(features, "acpi")  # without it libvirt cannot power the guest off
        if self.arch == "x86_64":
            ET.SubElement(features, "apic")
        else:
            ET.SubElement(features, "gic", version="3")
        if self.accel is Accel.KVM:
            ET.SubElement(dom, "cpu", mode="host-passthrough")
        elif self.arch == "aarch64":  # TCG has no host CPU to pass through: name one
            cpu = ET.SubElement(dom, "cpu", mode="custom", match="exact")
            ET.SubElement(cpu, "model", fallback="allow").text = "cortex-a57"
        if self.fw_cfg:
            sysinfo = ET.SubElement(dom, "sysinfo", type="fwcfg")
            for name, value in self.fw_cfg:
                ET.SubElement(sysinfo, "entry", name=name).text = value
        if self.clock_offset_s:
            ET.SubElement(dom, "clock", offset="variable", basis="utc",
                          adjustment=str(self.clock_offset_s))
        else:
            ET.SubElement(dom, "clock", offset="utc")
        ET.SubElement(dom, "on_poweroff").text = "destroy"
        ET.SubElement(dom, "on_reboot").text = self.on_reboot
        ET.SubElement(dom, "on_crash").text = "destroy"
        dom.append(self._devices())
        ET.indent(dom, space="  ")
        return ET.tostring(dom, encoding="unicode") + "\n"

    def _metadata(self) -> ET.Element:
        # libvirt keeps one top-level element per metadata namespace, so the machine
        # name and extra keys ride as attributes of the single flexlab:lab element.
        # Plain prefixed names with a local xmlns attribute keep the declaration on
        # the element itself (ElementTree would otherwise hoist it to <domain>).
        meta = ET.Element("metadata")
        attrs = {"xmlns:flexlab": FLEXLAB_NS, "machine": self.machine}
        attrs.update(sorted(self.extra_metadata.items()))
        ET.SubElement(meta, "flexlab:lab", attrs).text = self.lab_id
        return meta

    def _os(self) -> ET.Element:
        os_el = ET.Element("os")
        ET.SubElement(os_el, "type", arch=self.arch, machine=self.machine_type).text = "hvm"
        if self.firmware is Firmware.UEFI:
            ET.SubElement(os_el, "loader", readonly="yes", type="pflash").text = str(
                self.uefi_code
            )
            ET.SubElement(os_el, "nvram", template=str(self.uefi_vars_template)).text = str(
                self.uefi_vars
            )
        if self.direct_boot is not None:
            ET.SubElement(os_el, "kernel").text = str(self.direct_boot.kernel)
            ET.SubElement(os_el, "initrd").text = str(self.direct_boot.initrd)
            ET.SubElement(os_el, "cmdline").text = self.direct_boot.cmdline
        if self.firmware is Firmware.BIOS:
            # SeaBIOS and iPXE print to the serial console (QEMU -machine graphics=off).
            ET.SubElement(os_el, "bios", useserial="yes")
        return os_el

    def _devices(self) -> ET.Element:
        devices = ET.Element("devices")
        ET.SubElement(devices, "emulator").text = str(self.emulator)
        boot_order = 1
        # Network first: NICs get the lowest boot orders, the data disk comes after.
        nic_elements = []
        for nic in self.nics:
            iface = ET.Element("interface", type="ethernet")
            ET.SubElement(iface, "mac", address=nic.mac)
            ET.SubElement(iface, "target", dev=nic.tap, managed="no")
            ET.SubElement(iface, "model", type=nic.model.value)
            if self.direct_boot is None:
                ET.SubElement(iface, "boot", order=str(boot_order))
                boot_order += 1
            if not nic.rom:
                ET.SubElement(iface, "rom", enabled="no")
            nic_elements.append(iface)
        if self.data_disk is not None:
            disk = ET.SubElement(devices, "disk", type="file", device="disk")
            ET.SubElement(disk, "driver", name="qemu", type=self.data_disk.format)
            ET.SubElement(disk, "source", file=str(self.data_disk.path))
            ET.SubElement(disk, "target", dev=self.data_disk.target, bus=self.data_disk.bus)
            if self.direct_boot is None:
                ET.SubElement(disk, "boot", order=str(boot_order))
        devices.extend(nic_elements)
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=str(self.serial_log), append="off")
        ET.SubElement(serial, "target", port="0")
        ET.SubElement(devices, "memballoon", model="none")
        # A hardware random source, as real servers have (RDRAND, a TPM): without one the
        # guest kernel's RNG waits seconds under TCG for jitter entropy, and everything
        # reading /dev/urandom early (mke2fs's UUID, openssl, chronyd) waits with it.
        rng = ET.SubElement(devices, "rng", model="virtio")
        ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
        # No USB controller: libvirt adds one unless told, and nothing in a lab VM uses it;
        # under TCG the kernel's early handoff of it alone took 0.32-0.41 s of every boot
        # ("quirk_usb_early_handoff took N usecs", bench/results/vmboot-console-phases.json),
        # and the firmware enumerates it too.
        ET.SubElement(devices, "controller", type="usb", model="none")
        return devices
