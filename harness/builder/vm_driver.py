"""The vm tier's machine driver: libvirt/QEMU VMs behind the runner's :class:`MachineDriver`.

Each machine copy is one libvirt domain named ``<lab id>-<key>`` (so
``flexlab clean`` finds it by prefix), with a sparse data disk, an OVMF
variable store when it is UEFI, and a serial log, all under the lab's temp
dir. Its NIC is an unmanaged tap: created in the root namespace, opened by the
domain started paused, moved into the lab's switch namespace and enslaved to
``br-<segment>``, then the domain is resumed (MACHINE-NOTES: a libvirt bridge
interface would put the VM behind Docker's FORWARD DROP).

Progress comes from the serial console (firmware and iPXE text, then the node
agent's ``FLEXLAB-AGENT:`` lines) and the domain state. A copy is finished when
the agent reported Ready or Rejected (or its run ended), the firmware gave up,
the domain stopped, or its deadline (scaled for TCG) passed.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import FlexlabError
from harness.lab import Lab
from harness.lab import names as lab_names
from harness.lab.process import run_once
from harness.machines.vm.accel import AccelDecision, choose_accel
from harness.machines.vm.console import AgentEvent, agent_events
from harness.machines.vm.disk import create_sparse_disk
from harness.machines.vm.domain import (
    Accel,
    DataDisk,
    DomainSpec,
    Firmware,
    Nic,
    NicModel,
)
from harness.machines.vm.errors import VmError
from harness.machines.vm.libvirt_vm import connect, teardown_all
from harness.plan.cmdline import NODE_CMDLINE
from harness.scenario.drivers import MachinePlan, MachineProgress, TimelineEvent
from harness.scenario.model import Scenario

# A VM's power-on to Ready under working KVM; the per-VM deadline is this times the
# accelerator's timeout scale (TCG measured ~4x here), capped by the scenario timeout.
KVM_BOOT_BUDGET_S = 75.0
KVM_PROBE_TIMEOUT_S = 10.0
# The boot profile's cmdline VMs boot with: the scenario profile's (harness.plan.cmdline,
# which also says why the agent's clock sync flexlab.timeurl is in it).
VM_CMDLINE = NODE_CMDLINE.template()

# OVMF's fw_cfg switches for its PXE boot options: off, only its HTTP boot options remain.
_NO_PXE = (("opt/org.tianocore/IPv4PXESupport", "n"),
           ("opt/org.tianocore/IPv6PXESupport", "n"))

# scenario firmware -> (libvirt firmware, keep the NIC's iPXE option ROM)
FIRMWARE_OF: dict[str, tuple[Firmware, bool]] = {
    "seabios-ipxe": (Firmware.BIOS, True),
    "uefi-x64": (Firmware.UEFI, False),    # OVMF's own PXE stack (works with virtio only)
    "ovmf-ipxe": (Firmware.UEFI, True),    # OVMF running iPXE EFI from the NIC ROM
    "uefi-http": (Firmware.UEFI, False),   # OVMF's own HTTP boot, its PXE switched off
    "uefi-arm64": (Firmware.UEFI, False),  # AAVMF's own PXE stack on an aarch64 guest
}
# fw_cfg entries a firmware profile needs. AAVMF: only IPv4 PXE matters to the lab, and
# each boot option it fails through costs minutes under TCG.
FW_CFG_OF: dict[str, tuple[tuple[str, str], ...]] = {
    "uefi-http": _NO_PXE,
    "uefi-arm64": (("opt/org.tianocore/IPv6PXESupport", "n"),),
}
# Firmware profiles of another architecture: (arch, emulator, UEFI code, UEFI vars template).
# They cannot run the x86-64 node image, so such a copy is finished once its firmware has
# given up, like a stranger (the Control Plane learns its arch from the Boot Proxy).
FOREIGN_ARCH: dict[str, tuple[str, Path, Path, Path]] = {
    "uefi-arm64": ("aarch64", Path("/usr/bin/qemu-system-aarch64"),
                   Path("/usr/share/AAVMF/AAVMF_CODE.fd"), Path("/usr/share/AAVMF/AAVMF_VARS.fd")),
}


@dataclass(frozen=True)
class ExtraNic:
    """A NIC a machine has besides its boot NIC, ahead of it in the boot order.

    The scenario model gives a machine one NIC; a test that needs a multi-NIC machine
    (the first NIC on a segment without a Boot Proxy) passes these to :class:`VmDriver`.
    """

    segment: str
    mac: str
    model: str = "virtio"

# Console text (regular expressions) that moves a copy's phase forward, in boot order
# (the latest stage seen wins).
_PHASE_MARKERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), phase) for pattern, phase in (
        (r"SeaBIOS", "firmware"),
        (r"BdsDxe", "firmware"),
        (r">>Start PXE", "dhcp"),
        (r">>Start HTTP Boot", "dhcp"),
        (r"Station IP address", "boot-server"),
        (r"Downloading NBP", "tftp"),
        (r"iPXE", "ipxe"),
        (r"https?://\d+\.\d+\.\d+\.\d+", "http"),  # a download; iPXE's banner names ipxe.org
        (r"Linux version", "agent"),
        (r"FLEXLAB-AGENT: ", "agent"),
    ))
# The firmware has nothing left to try: a stranger's boot ends here.
_GAVE_UP = ("No bootable device", "Boot failed", "No more network devices",
            "PXE-E16: No valid offer received")
_NEXT_SERVER = re.compile(r"Next server: (\d+\.\d+\.\d+\.\d+)")


class VmDriverError(FlexlabError):
    """A VM could not be declared, started or stopped; the message says what to fix."""


@functools.cache
def _accel_decision() -> AccelDecision:
    """KVM only if a guest really boots under it (once per process: the probe costs ~10 s)."""
    from nodeimage.build import build_image

    image = build_image()
    return choose_accel(image.kernel, image.initrd, timeout_s=KVM_PROBE_TIMEOUT_S,
                        measure_tcg=False)


@dataclass(frozen=True)
class LabDomainSpec(DomainSpec):
    """A :class:`DomainSpec` named ``<lab id>-<machine>``: the prefix ``flexlab clean``
    destroys by (harness/lab/cleanup.py); DomainSpec itself says ``flexlab-<lab>-<machine>``."""

    # SeaBIOS retries the boot this long after "No bootable device" (libvirt
    # <bios rebootTimeout>); its default is never, unlike a real server's firmware.
    bios_reboot_timeout_ms: int | None = 5000

    @property
    def name(self) -> str:
        """The libvirt domain name."""
        return f"{self.lab_id}-{self.machine}"

    def to_xml(self) -> str:
        """DomainSpec's XML, plus SeaBIOS's boot retry."""
        xml = super().to_xml()
        if self.firmware is Firmware.BIOS and self.bios_reboot_timeout_ms is not None:
            retry = f'rebootTimeout="{self.bios_reboot_timeout_ms}"'
            xml = xml.replace('<bios useserial="yes"', f'<bios useserial="yes" {retry}', 1)
        return xml


@dataclass
class _Vm:
    plan: MachinePlan
    spec: LabDomainSpec
    ports: list[tuple[str, str]]        # (tap, segment) per NIC, in boot order
    stranger: bool
    foreign: bool = False               # another architecture: it cannot run the node image
    dom: Any = None
    # tap -> "root" or the switch namespace, for the taps that exist now
    tap_where: dict[str, str] = field(default_factory=dict)
    boots: int = 0
    powered_at: float | None = None     # monotonic
    deadline: float = 0.0
    history: list[str] = field(default_factory=list)   # earlier boots' consoles
    seen: dict[int, float] = field(default_factory=dict)  # agent event index -> t
    timeline: list[TimelineEvent] = field(default_factory=list)
    stopped_by_us: bool = False
    error: str | None = None


def _ip(*args: str, netns: str | None = None) -> None:
    proc = run_once(["ip", *args], netns)
    if proc.returncode != 0:
        where = f" in {netns}" if netns else ""
        raise VmDriverError(f"`ip {' '.join(args)}`{where} failed: {proc.stderr.strip()}")


def memory_mib(memory_gb: float) -> int:
    """RAM for a scenario's ``memory_gb`` (GiB, so 4 gives MemTotal above the CP's 3·10⁹)."""
    return max(256, int(memory_gb * 1024))


def disk_bytes(disk_gb: float) -> int:
    """Data disk size for ``disk_gb`` (decimal GB, the unit the Control Plane checks)."""
    return int(disk_gb * 10**9)


def phase_of(console: str) -> str:
    """How far a boot got, from its console text alone."""
    phase = "firmware" if console else "power-on"
    best = -1
    for index, (marker, name) in enumerate(_PHASE_MARKERS):
        if index > best and marker.search(console):
            best, phase = index, name
    return phase


def outcome_of(events: list[AgentEvent]) -> str | None:
    """The agent's final word: ``ready``, ``rejected``, ``failed``, or None while it works."""
    for event in events:
        if event.kind == "ready" and "ok" in event.words:
            return "ready"
        if event.kind == "registered" and event.fields.get("state") == "Rejected":
            return "rejected"
    for event in events:
        if event.kind == "done":
            return "ready" if event.fields.get("result") == "ok" else "failed"
    return None


class VmDriver:
    """libvirt VMs for the vm tier; one domain per machine copy."""

    kind = "vm"

    def __init__(self, lab: Lab, scenario: Scenario, *, uri: str = "qemu:///system",
                 extra_nics: dict[str, list[ExtraNic]] | None = None) -> None:
        self.lab = lab
        self.scenario = scenario
        self.uri = uri
        self.extra_nics = extra_nics or {}
        self.vms: dict[str, _Vm] = {}
        self.conn: Any = None
        self.accel: AccelDecision | None = None
        self.workdir = lab.temp_dir / "vm"
        self.consoles_dir = lab.reports_dir / "consoles"
        self._t0: float | None = None       # monotonic time of the runner's "at == 0"
        self._closed = False

    # -- declaring ---------------------------------------------------------------
    def add(self, plans: list[MachinePlan]) -> None:
        """Declare copies: check firmware/NIC, choose the accelerator, create disks."""
        for plan in plans:
            if plan.firmware not in FIRMWARE_OF:
                raise VmDriverError(
                    f"machine {plan.key}: firmware {plan.firmware!r} has no VM equivalent; "
                    f"use one of {', '.join(FIRMWARE_OF)}")
            _, rom = FIRMWARE_OF[plan.firmware]
            if not rom and plan.nic != "virtio":
                raise VmDriverError(f"machine {plan.key}: OVMF's own network stack "
                                    f"({plan.firmware}) works with virtio only; set nic: "
                                    "virtio (or use ovmf-ipxe)")
        if not plans:
            return
        try:
            self._prepare(plans)
        except VmError as exc:  # the runner reports FlexlabErrors as the run's error
            raise VmDriverError(f"{type(exc).__name__}: {exc}") from exc

    def _prepare(self, plans: list[MachinePlan]) -> None:
        self.accel = _accel_decision()
        self.conn = connect(self.uri)
        # libvirt's QEMU runs as libvirt-qemu: it must traverse the lab's 0700 temp dir.
        self.lab.temp_dir.chmod(0o711)
        self.workdir.mkdir(mode=0o755, exist_ok=True)
        self.workdir.chmod(0o755)
        clusters = {m.name: m.cluster for m in self.scenario.machines}
        taps = 0
        for plan in plans:
            firmware, rom = FIRMWARE_OF[plan.firmware]
            disk = None
            if plan.facts.disk_gb > 0:
                disk = DataDisk(self.workdir / f"{plan.key}.data.qcow2",
                                size_bytes=disk_bytes(plan.facts.disk_gb))
                create_sparse_disk(disk)
            ports, nics = [], []
            for seg, mac, model in (*((x.segment, x.mac, x.model)
                                      for x in self.extra_nics.get(plan.key, [])),
                                    (plan.segment, plan.mac, plan.nic)):
                tap = f"{self.lab.id}v{taps}"
                taps += 1
                ports.append((tap, seg))
                nics.append(Nic(tap, mac, NicModel(model), rom=rom))
            foreign = FOREIGN_ARCH.get(plan.firmware)
            arch_args: dict[str, Any] = {} if foreign is None else {
                "arch": foreign[0], "emulator": foreign[1], "uefi_code": foreign[2],
                "uefi_vars_template": foreign[3]}
            spec = LabDomainSpec(
                lab_id=self.lab.id, machine=plan.key,
                nics=tuple(nics), fw_cfg=FW_CFG_OF.get(plan.firmware, ()),
                serial_log=self.workdir / f"{plan.key}.serial.log",
                vcpus=plan.facts.cores, memory_mib=memory_mib(plan.facts.memory_gb),
                # the KVM probe is for x86 guests; another architecture is always emulated
                accel=self.accel.accel if foreign is None else Accel.TCG, firmware=firmware,
                uefi_vars=(self.workdir / f"{plan.key}.OVMF_VARS.fd"
                           if firmware is Firmware.UEFI else None),
                data_disk=disk,
                # A firmware that found nothing to boot resets and tries again, like a real
                # server (SeaBIOS: "No bootable device. Retrying in 60 seconds").
                on_reboot="restart",
                extra_metadata={"segment": plan.segment, "firmware": plan.firmware},
                # a skewed machine's RTC starts off (whole seconds: what an RTC holds)
                clock_offset_s=round(plan.facts.clock_skew_s),
                **arch_args,
            )
            self.vms[plan.key] = _Vm(plan, spec, ports,
                                     stranger=clusters.get(plan.group) is None,
                                     foreign=foreign is not None)

    # -- power -------------------------------------------------------------------
    def _now(self) -> float:
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    def power_on(self, keys: list[str], at: float) -> None:
        """Start each copy's domain paused, plug its tap into the segment, resume it."""
        if self._t0 is None:
            self._t0 = time.monotonic() - at
        assert self.accel is not None
        budget = min(self.accel.scaled(KVM_BOOT_BUDGET_S), self.scenario.timeout)
        for key in keys:
            vm = self.vms[key]
            if vm.dom is not None and vm.dom.isActive():
                continue  # already on: a power button press does nothing
            self._start(vm)
            vm.powered_at = time.monotonic()
            vm.deadline = vm.powered_at + budget
            vm.stopped_by_us = False
            vm.seen.clear()
            vm.timeline.append(TimelineEvent(
                self._now(), "power", f"power on (boot {vm.boots}, {self.accel.accel.value}: "
                f"{self.accel.reason})",
                detail={"accel": self.accel.accel.value, "boot": vm.boots,
                        "timeout_scale": self.accel.timeout_scale}))

    def _start(self, vm: _Vm) -> None:
        libvirt = _libvirt()
        serial = vm.spec.serial_log
        if serial.exists():  # the domain truncates it on start: keep the earlier boot
            vm.history.append(serial.read_text(errors="replace"))
        self._remove_tap(vm)
        for tap, _ in vm.ports:
            _ip("tuntap", "add", "dev", tap, "mode", "tap")
            vm.tap_where[tap] = "root"
        try:
            if vm.dom is None:
                vm.dom = self.conn.defineXMLFlags(vm.spec.to_xml(),
                                                  libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
            vm.dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        except libvirt.libvirtError as exc:
            raise VmDriverError(f"starting {vm.spec.name} failed: {exc}") from exc
        ns = self.lab.switch_ns
        for tap, segment in vm.ports:
            _ip("link", "set", "dev", tap, "netns", ns)
            vm.tap_where[tap] = ns
            _ip("link", "set", "dev", tap, "master", lab_names.bridge(segment), "up", netns=ns)
        try:
            vm.dom.resume()
        except libvirt.libvirtError as exc:
            raise VmDriverError(f"resuming {vm.spec.name} failed: {exc}") from exc
        vm.boots += 1

    def power_off(self, keys: list[str]) -> None:
        """Pull the plug (libvirt destroy); the domain, disk and UEFI vars stay for power_on."""
        libvirt = _libvirt()
        for key in keys:
            vm = self.vms[key]
            if vm.dom is None:
                continue
            with contextlib.suppress(libvirt.libvirtError):
                if vm.dom.isActive():
                    vm.dom.destroy()
            vm.stopped_by_us = True
            vm.timeline.append(TimelineEvent(self._now(), "power", "power off"))
            self._remove_tap(vm)

    def _remove_tap(self, vm: _Vm) -> None:
        for tap, where in list(vm.tap_where.items()):
            netns = None if where == "root" else where
            argv = ["ip", *(["-n", netns] if netns else []), "link", "del", tap]
            subprocess.run(argv, capture_output=True, check=False)  # gone with its netns: fine
            del vm.tap_where[tap]

    # -- watching ----------------------------------------------------------------
    def console_text(self, key: str) -> str:
        """Every boot's console of ``key`` so far, oldest first."""
        vm = self.vms[key]
        current = (vm.spec.serial_log.read_text(errors="replace")
                   if vm.spec.serial_log.exists() else "")
        return "".join(vm.history) + current

    def progress(self) -> dict[str, MachineProgress]:
        """Phase, finish and timeline of every copy, from its console and domain state."""
        return {key: self._progress(vm) for key, vm in self.vms.items()}

    def _progress(self, vm: _Vm) -> MachineProgress:
        prog = MachineProgress(vm.plan.key, console=str(self.consoles_dir /
                                                        f"{vm.plan.key}.log"))
        if vm.powered_at is None:
            return prog
        text = (vm.spec.serial_log.read_text(errors="replace")
                if vm.spec.serial_log.exists() else "")
        events = agent_events(text)
        for index, event in enumerate(events):
            if index not in vm.seen:
                vm.seen[index] = self._now()
                vm.timeline.append(TimelineEvent(vm.seen[index], "state",
                                                 f"agent: {event.raw[:160]}",
                                                 detail={"boot": vm.boots, **event.fields}))
        prog.timeline = list(vm.timeline)
        prog.answered_by = sorted(set(_NEXT_SERVER.findall(text)) - {"0.0.0.0"})
        prog.phase = phase_of(text)
        outcome = outcome_of(events)
        active = self._active(vm)
        if outcome == "ready":
            prog.phase, prog.finished = "done", True
        elif outcome in ("rejected", "failed"):
            prog.phase, prog.finished = "done", True
            prog.error = None if outcome == "rejected" else "the node agent reported failure"
        elif (not events and any(marker in text for marker in _GAVE_UP)
              and (vm.stranger or vm.foreign)):
            prog.phase, prog.finished = "gave-up", True
        elif not active:
            prog.finished = True
            prog.phase = "off" if vm.stopped_by_us else "failed"
            if not vm.stopped_by_us:
                prog.error = vm.error or "the VM stopped before the agent finished"
        elif time.monotonic() > vm.deadline:
            prog.finished = True
            prog.phase = "failed" if not (vm.stranger or vm.foreign) else "gave-up"
            prog.error = None if (vm.stranger or vm.foreign) else (
                f"no agent result within {vm.deadline - (vm.powered_at or 0):.0f} s "
                f"({self.accel.accel.value if self.accel else '?'})")
        return prog

    def _active(self, vm: _Vm) -> bool:
        libvirt = _libvirt()
        try:
            return bool(vm.dom is not None and vm.dom.isActive())
        except libvirt.libvirtError as exc:
            vm.error = f"libvirt: {exc}"
            return False

    # -- the end -----------------------------------------------------------------
    def close(self) -> None:
        """Destroy and undefine every domain, delete taps and disks, keep the consoles."""
        if self._closed:
            return
        self._closed = True
        # every domain first, side by side (keep going: the rest must still be removed)
        errors = teardown_all([vm.dom for vm in self.vms.values() if vm.dom is not None])
        for vm in self.vms.values():
            self._remove_tap(vm)
            if vm.powered_at is not None:
                self.consoles_dir.mkdir(parents=True, exist_ok=True)
                (self.consoles_dir / f"{vm.plan.key}.log").write_text(
                    self.console_text(vm.plan.key))
            for path in (vm.spec.data_disk.path if vm.spec.data_disk else None,
                         vm.spec.uefi_vars):
                if path is not None:
                    path.unlink(missing_ok=True)
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise VmDriverError("; ".join(errors))

    def accel_record(self) -> dict[str, object]:
        """Which accelerator this run used, and why (for reports)."""
        return self.accel.as_record() if self.accel else {"accel": Accel.TCG.value,
                                                          "reason": "no VM was declared"}


def _libvirt() -> Any:
    try:
        import libvirt
    except ImportError as exc:  # pragma: no cover - depends on the host
        raise VmDriverError("python libvirt bindings missing: pip install .[vm]") from exc
    return libvirt
