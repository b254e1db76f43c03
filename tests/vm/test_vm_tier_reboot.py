"""vm tier: a Ready VM is reset, boots a fresh OS in RAM, finds its data disk intact and is
Ready again.

The test drives :class:`ScenarioRunner` with a :class:`VmDriver` that performs the reset
itself as soon as the first boot's agent reports Ready (a timed ``reset`` step would race
a TCG boot whose length varies with the host's load). Evidence is the agent's own
console lines of both boots.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vmhelpers import failed_expectations, needs_libvirt_python, needs_qemu
from vmruns import DriverRecorder, bp1_site_scenario, lan_vm

from harness.builder.runner import ScenarioRunner
from harness.builder.vm_driver import VmDriver, outcome_of
from harness.machines.vm.console import agent_events
from harness.scenario.drivers import MachineProgress

pytestmark = [pytest.mark.vm, needs_qemu, needs_libvirt_python]

SCENARIO = bp1_site_scenario("vm-reboot", [lan_vm("node", "seabios-ipxe", "virtio")],
                             timeout=420)


class ResettingVmDriver(VmDriver):
    """Resets each copy once, right after its first boot reported Ready."""

    def progress(self) -> dict[str, MachineProgress]:
        """Like VmDriver's, but a first boot's Ready triggers a reset instead of finishing."""
        out = super().progress()
        for key, prog in out.items():
            vm = self.vms[key]
            if vm.boots == 1 and prog.finished:
                text = vm.spec.serial_log.read_text(errors="replace")
                if outcome_of(agent_events(text)) == "ready":
                    self.power_off([key])
                    self.power_on([key], self._now())
                    out[key] = super().progress()[key]
        return out


def test_reset_boots_fresh_os_with_data_intact(tmp_path: Path) -> None:
    recorder = DriverRecorder(ResettingVmDriver)
    result = ScenarioRunner(SCENARIO, reports_dir=tmp_path, kinds=recorder.kinds()).run()
    assert recorder.drivers, result.error
    driver = recorder.drivers[0]
    console_file = tmp_path / "labs" / result.lab_id / "consoles" / "node.log"
    assert console_file.exists(), "the driver keeps every boot's console in the reports"
    events = agent_events(console_file.read_text(errors="replace"))
    disks = [e for e in events if e.kind == "disk" and "data" in e.fields]
    readies = [e for e in events if e.kind == "ready"]
    inits = [e for e in events if e.kind == "init"]
    assert driver.vms["node"].boots == 2, result.error
    assert len(inits) == 2, [e.raw for e in events]          # two fresh OS boots
    assert [d.fields["data"] for d in disks] == ["new", "intact"], [d.raw for d in disks]
    assert [d.fields["boots"] for d in disks] == ["1", "2"], [d.raw for d in disks]
    assert [("ok" in r.words) for r in readies] == [True, True], [r.raw for r in readies]
    assert result.verdict == "pass", failed_expectations(result)
