"""Choose KVM or TCG by actually booting a tiny guest, and say how much slower TCG is.

``/dev/kvm`` existing proves nothing: on this kind of host (nested, paravirtual
KVM) QEMU under KVM hangs in the kernel decompressor or aborts on an MSR write.
So the probe direct-boots the node image kernel with ``flexlab.probe=1`` (its
/init prints a marker and powers off) under ``-accel kvm`` with a deadline, and
falls back to TCG with the reason. Runs record the decision; waits multiply
their timeouts by :attr:`AccelDecision.timeout_scale`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.machines.vm.domain import QEMU_EMULATOR, Accel
from harness.machines.vm.errors import AccelProbeError

PROBE_MARKER = "FLEXLAB-PROBE: ok"
PROBE_CMDLINE = "console=ttyS0 panic=-1 flexlab.probe=1"
# A small guest to the probe marker under working KVM takes about this long; the
# TCG scale is the measured TCG probe time over it (bounded, see _tcg_scale).
KVM_REFERENCE_BOOT_S = 1.5
DEFAULT_TCG_SCALE = 4.0
ENV_OVERRIDE = "FLEXLAB_ACCEL"


@dataclass(frozen=True)
class ProbeResult:
    """One probe boot: whether the marker appeared, how long it took, and evidence."""

    accel: Accel
    ok: bool
    seconds: float
    detail: str


@dataclass(frozen=True)
class AccelDecision:
    """The accelerator a run uses, why, and the factor its timeouts are scaled by."""

    accel: Accel
    reason: str
    timeout_scale: float
    probes: tuple[ProbeResult, ...] = ()

    def scaled(self, seconds: float) -> float:
        """A timeout written for KVM speed, stretched for this accelerator."""
        return seconds * self.timeout_scale

    def as_record(self) -> dict[str, object]:
        """Plain data for run metadata and reports."""
        return {
            "accel": self.accel.value,
            "reason": self.reason,
            "timeout_scale": self.timeout_scale,
            "probes": [
                {"accel": p.accel.value, "ok": p.ok, "seconds": round(p.seconds, 2),
                 "detail": p.detail}
                for p in self.probes
            ],
        }


def _tail(path: Path, limit: int = 400) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-3:])[-limit:]


def probe_boot(kernel: Path, initrd: Path, accel: Accel, timeout_s: float = 20.0,
               emulator: Path = QEMU_EMULATOR) -> ProbeResult:
    """Direct-boot ``kernel``/``initrd`` under ``accel`` and wait for the probe marker."""
    for path in (kernel, initrd):
        if not path.exists():
            raise AccelProbeError(f"{path} is missing; build the node image (python -m nodeimage "
                                  "build) and pass its vmlinuz and initrd.img")
    with tempfile.TemporaryDirectory(prefix="flexlab-accel-") as tmp:
        serial = Path(tmp) / "serial.log"
        stderr_path = Path(tmp) / "qemu.err"
        argv = [str(emulator), "-accel", accel.value, "-m", "256", "-smp", "1",
                "-display", "none", "-monitor", "none", "-serial", f"file:{serial}",
                "-no-reboot", "-nic", "none", "-kernel", str(kernel), "-initrd", str(initrd),
                "-append", PROBE_CMDLINE]
        if accel is Accel.KVM:
            argv[3:3] = ["-cpu", "host"]
        start = time.monotonic()
        try:
            with stderr_path.open("wb") as err:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err)
        except FileNotFoundError as exc:
            raise AccelProbeError(f"{emulator} not found; install qemu-system-x86") from exc
        try:
            while True:
                elapsed = time.monotonic() - start
                seen = serial.exists() and PROBE_MARKER in serial.read_text(errors="replace")
                if seen:
                    return ProbeResult(accel, True, elapsed, "marker seen")
                code = proc.poll()
                if code is not None:
                    detail = (f"qemu exited {code} before the marker: {_tail(stderr_path)}"
                              f" console: {_tail(serial)}")
                    return ProbeResult(accel, False, elapsed, detail)
                if elapsed > timeout_s:
                    return ProbeResult(accel, False, elapsed,
                                       f"no marker within {timeout_s:.0f} s; console: "
                                       f"{_tail(serial) or '(empty)'}")
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def _tcg_scale(tcg_seconds: float) -> float:
    return round(min(10.0, max(2.0, tcg_seconds / KVM_REFERENCE_BOOT_S)), 1)


def _kvm_unusable_reason() -> str | None:
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user"
    return None


def choose_accel(kernel: Path, initrd: Path, *, timeout_s: float = 20.0,
                 measure_tcg: bool = True) -> AccelDecision:
    """Return KVM if a guest really boots under it, else TCG, with the reason and scale.

    ``FLEXLAB_ACCEL=tcg|kvm`` skips the probe (the reason says so). With
    ``measure_tcg`` the TCG fallback is also booted, which proves TCG works and
    gives a measured timeout scale instead of the default.
    """
    forced = os.environ.get(ENV_OVERRIDE, "").strip().lower()
    if forced:
        try:
            accel = Accel(forced)
        except ValueError:
            raise AccelProbeError(f"{ENV_OVERRIDE}={forced!r}: use 'kvm' or 'tcg'") from None
        scale = 1.0 if accel is Accel.KVM else DEFAULT_TCG_SCALE
        return AccelDecision(accel, f"forced by {ENV_OVERRIDE}", scale)
    probes: list[ProbeResult] = []
    reason = _kvm_unusable_reason()
    if reason is None:
        kvm = probe_boot(kernel, initrd, Accel.KVM, timeout_s)
        probes.append(kvm)
        if kvm.ok:
            return AccelDecision(Accel.KVM, f"a guest booted under KVM in {kvm.seconds:.1f} s",
                                 1.0, tuple(probes))
        reason = f"KVM probe failed: {kvm.detail}"
    if not measure_tcg:
        return AccelDecision(Accel.TCG, reason, DEFAULT_TCG_SCALE, tuple(probes))
    tcg = probe_boot(kernel, initrd, Accel.TCG, timeout_s * 3)
    probes.append(tcg)
    if not tcg.ok:
        raise AccelProbeError(f"the probe guest boots under neither KVM ({reason}) nor TCG "
                              f"({tcg.detail}); check the node image and qemu-system-x86")
    return AccelDecision(Accel.TCG, f"{reason}; TCG probe booted in {tcg.seconds:.1f} s",
                         _tcg_scale(tcg.seconds), tuple(probes))
