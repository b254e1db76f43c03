"""The accelerator probe's decision logic, driven by fake emulators (no QEMU needed)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from harness.machines.vm import accel as accel_mod
from harness.machines.vm.accel import (
    PROBE_MARKER,
    AccelDecision,
    ProbeResult,
    choose_accel,
    probe_boot,
)
from harness.machines.vm.domain import Accel
from harness.machines.vm.errors import AccelProbeError

pytestmark = pytest.mark.unit

# The fake finds the serial file in QEMU's argv ("-serial file:PATH") and acts.
FAKE_TEMPLATE = """#!/bin/sh
for arg in "$@"; do case "$arg" in file:*) serial="${{arg#file:}}" ;; esac; done
{body}
"""


def fake_emulator(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-qemu"
    path.write_text(FAKE_TEMPLATE.format(body=body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, Path]:
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd.img"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")
    return kernel, initrd


def test_marker_on_console_means_ok(tmp_path: Path, image: tuple[Path, Path]) -> None:
    emu = fake_emulator(tmp_path, f'echo "{PROBE_MARKER} kernel=x" > "$serial"; exit 0')
    result = probe_boot(*image, Accel.TCG, timeout_s=5, emulator=emu)
    assert result.ok and result.accel is Accel.TCG


def test_exit_without_marker_carries_stderr(tmp_path: Path, image: tuple[Path, Path]) -> None:
    emu = fake_emulator(tmp_path, 'echo "failed to set MSR 0x10a" >&2; exit 134')
    result = probe_boot(*image, Accel.KVM, timeout_s=5, emulator=emu)
    assert not result.ok
    assert "MSR 0x10a" in result.detail and "134" in result.detail


def test_hung_guest_is_killed_at_deadline(tmp_path: Path, image: tuple[Path, Path]) -> None:
    pidfile = tmp_path / "pid"
    emu = fake_emulator(tmp_path, f'echo $$ > {pidfile}; echo "Decompressing" > "$serial"; '
                                  "exec sleep 60")
    start = time.monotonic()
    result = probe_boot(*image, Accel.KVM, timeout_s=0.5, emulator=emu)
    assert not result.ok and "Decompressing" in result.detail
    assert time.monotonic() - start < 10
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_missing_image_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(AccelProbeError, match="nodeimage"):
        probe_boot(tmp_path / "nope", tmp_path / "nope2", Accel.TCG)


def test_env_override_skips_probe(monkeypatch: pytest.MonkeyPatch,
                                  image: tuple[Path, Path]) -> None:
    monkeypatch.setenv("FLEXLAB_ACCEL", "tcg")
    decision = choose_accel(*image)
    assert decision.accel is Accel.TCG and "forced" in decision.reason
    assert decision.probes == ()
    monkeypatch.setenv("FLEXLAB_ACCEL", "vmx")
    with pytest.raises(AccelProbeError):
        choose_accel(*image)


def test_fallback_to_tcg_records_kvm_failure(monkeypatch: pytest.MonkeyPatch,
                                             image: tuple[Path, Path]) -> None:
    monkeypatch.delenv("FLEXLAB_ACCEL", raising=False)
    monkeypatch.setattr(accel_mod, "_kvm_unusable_reason", lambda: None)

    def fake_probe(kernel: Path, initrd: Path, accel: Accel, timeout_s: float) -> ProbeResult:
        if accel is Accel.KVM:
            return ProbeResult(accel, False, 0.1, "qemu exited -6: failed to set MSR")
        return ProbeResult(accel, True, 6.0, "marker seen")

    monkeypatch.setattr(accel_mod, "probe_boot", fake_probe)
    decision = choose_accel(*image)
    assert decision.accel is Accel.TCG
    assert "MSR" in decision.reason
    assert decision.timeout_scale == 4.0  # 6.0 s / 1.5 s reference
    assert [p.accel for p in decision.probes] == [Accel.KVM, Accel.TCG]


def test_working_kvm_is_chosen(monkeypatch: pytest.MonkeyPatch,
                               image: tuple[Path, Path]) -> None:
    monkeypatch.delenv("FLEXLAB_ACCEL", raising=False)
    monkeypatch.setattr(accel_mod, "_kvm_unusable_reason", lambda: None)
    monkeypatch.setattr(accel_mod, "probe_boot",
                        lambda k, i, a, t: ProbeResult(a, True, 1.0, "marker seen"))
    decision = choose_accel(*image)
    assert decision.accel is Accel.KVM and decision.timeout_scale == 1.0


def test_nothing_boots_is_an_error(monkeypatch: pytest.MonkeyPatch,
                                   image: tuple[Path, Path]) -> None:
    monkeypatch.delenv("FLEXLAB_ACCEL", raising=False)
    monkeypatch.setattr(accel_mod, "_kvm_unusable_reason", lambda: "/dev/kvm does not exist")
    monkeypatch.setattr(accel_mod, "probe_boot",
                        lambda k, i, a, t: ProbeResult(a, False, 60.0, "no marker"))
    with pytest.raises(AccelProbeError, match="neither KVM"):
        choose_accel(*image)


@pytest.mark.parametrize(("seconds", "scale"), [(0.5, 2.0), (6.0, 4.0), (60.0, 10.0)])
def test_tcg_scale_is_bounded(monkeypatch: pytest.MonkeyPatch, image: tuple[Path, Path],
                              seconds: float, scale: float) -> None:
    monkeypatch.delenv("FLEXLAB_ACCEL", raising=False)
    monkeypatch.setattr(accel_mod, "_kvm_unusable_reason", lambda: "/dev/kvm does not exist")
    monkeypatch.setattr(accel_mod, "probe_boot",
                        lambda k, i, a, t: ProbeResult(a, True, seconds, "marker seen"))
    assert choose_accel(*image).timeout_scale == scale


def test_scaled_and_record() -> None:
    decision = AccelDecision(Accel.TCG, "why", 4.0,
                             (ProbeResult(Accel.TCG, True, 6.123, "marker seen"),))
    assert decision.scaled(30) == 120
    record = decision.as_record()
    assert record["accel"] == "tcg" and record["timeout_scale"] == 4.0
