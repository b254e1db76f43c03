"""vm tier: a run leaves nothing behind — no libvirt domain, tap, disk image, QEMU process,
namespace or temp dir — even when it fails mid-boot.

The scenario's timeout is shorter than a TCG boot, so the run ends with the VMs
still booting: the hardest path for teardown. One SeaBIOS and one OVMF VM (the
latter has a UEFI variable store to remove too). 5 s is still in the firmware: SeaBIOS's
iPXE gets its address at ~2.9 s and the fastest boot in bench/results/vmboot.json took
7.9 s; OVMF has not left its own PXE stack (20 s was enough once the node kernel made
OVMF boots 16.5 s, and the run ended Ready instead of timing out).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vmhelpers import needs_libvirt_python, needs_qemu
from vmruns import DriverRecorder, bp1_site_scenario, lan_vm

from harness.builder.runner import ScenarioRunner
from harness.builder.vm_driver import VmDriver
from harness.machines.vm.libvirt_vm import connect, domains_of_lab
from harness.scenario.drivers import MachineProgress

pytestmark = [pytest.mark.vm, needs_qemu, needs_libvirt_python]

# 1 core and 1 GB each: the run ends long before either could boot
SCENARIO = bp1_site_scenario(
    "vm-teardown", [lan_vm("bios", "seabios-ipxe", "e1000", cores=1, memory_gb=1),
                    lan_vm("uefi", "uefi-x64", "virtio", cores=1, memory_gb=1)],
    timeout=5)


def _qemu_processes_of(lab_id: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except OSError:
            continue  # exited while we looked
        if "qemu-system" in cmdline and lab_id in cmdline:
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def test_failed_run_leaves_no_domain_tap_disk_or_process(tmp_path: Path) -> None:
    recorder = DriverRecorder(VmDriver)
    seen_running: dict[str, bool] = {}

    def watch(_phase: str, progress: dict[str, MachineProgress]) -> None:
        # proves the run really started the VMs before it timed out
        driver = recorder.drivers[0]
        seen_running.update({k: bool(vm.dom is not None and vm.dom.isActive())
                             for k, vm in driver.vms.items() if vm.dom is not None})

    result = ScenarioRunner(SCENARIO, reports_dir=tmp_path, kinds=recorder.kinds(),
                            progress=watch).run()
    lab_id = result.lab_id
    assert result.error and "scenario timeout" in result.error, (
        f"the run must end by its timeout mid-boot, but it ended with {result.error!r}: if "
        "VMs now boot faster than the scenario's timeout, shorten it")
    assert seen_running == {"bios": True, "uefi": True}, seen_running
    driver = recorder.drivers[0]
    files = [p for vm in driver.vms.values()
             for p in (vm.spec.data_disk.path if vm.spec.data_disk else None,
                       vm.spec.uefi_vars, vm.spec.serial_log) if p is not None]
    assert len(files) == 5
    assert [str(p) for p in files if p.exists()] == []
    assert not Path(f"/tmp/flexlab-{lab_id}").exists()
    conn = connect()
    try:
        assert domains_of_lab(conn, lab_id) == []
        assert [d.name() for d in conn.listAllDomains() if d.name().startswith(lab_id)] == []
    finally:
        conn.close()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    assert [line for line in links.splitlines() if lab_id in line] == []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout
    assert [line for line in netns.splitlines() if lab_id in line] == []
    assert _qemu_processes_of(lab_id) == []
    consoles = tmp_path / "labs" / lab_id / "consoles"
    assert sorted(p.name for p in consoles.iterdir()) == ["bios.log", "uefi.log"]
