"""A fleet dealt to two processes boots like one: every machine to its script, each once,
in order; power buttons reach a machine in the second process; a child that dies is an
error that names it, and no child outlives the fleet."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from harness.components.dnsmasq_proxy import DnsmasqProxy
from harness.lab import Lab
from harness.machines.sim import EmulatorSpec, profile
from harness.machines.sim.errors import SimMachineError
from harness.machines.sim.procfleet import ProcessFleet
from harness.wait import wait_until

from .test_power import SLOW_EDK2
from .webroot import start_web, write_boot_files

pytestmark = [pytest.mark.sim, pytest.mark.timeout(300)]

KINDS = ["ipxe-bios", "edk2-x64", "pxe-bios"]


def _macs(group: int, count: int) -> list[str]:
    return [f"52:54:00:{group:02x}:00:{i:02x}" for i in range(1, count + 1)]


def _stop(fleet: ProcessFleet) -> None:
    fleet.stop()
    with contextlib.suppress(Exception):
        fleet.wait(60)


@contextlib.contextmanager
def _slow_fleet(lab: Lab, macs: list[str]) -> Iterator[ProcessFleet]:
    """Two processes of lingering EDK2 machines in a long TFTP (the script URL leads
    nowhere), started, with the proxy that serves them running until the block ends."""
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url="http://192.0.2.1/boot/${mac}.ipxe",
                         served_macs=tuple(macs))
    with proxy:
        fleet = ProcessFleet(lab, "machines", "lan", [EmulatorSpec(m, SLOW_EDK2) for m in macs],
                             processes=2, scale=0.1, linger=True)
        fleet.start(timeout=120)
        try:
            yield fleet
        finally:
            _stop(fleet)  # also after a failed assertion: no child outlives the test


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_two_processes_boot_every_machine_once_in_order(emu_lab: Lab) -> None:
    lab = emu_lab
    macs = _macs(0xA1, 12)
    root = lab.temp_dir / "www"
    write_boot_files(root, f"http://{lab.address('web', 'lan')}:8080", macs)
    web = start_web(lab, root)
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url=web.url + "/boot/${mac}.ipxe",
                         served_macs=tuple(macs))
    specs = [EmulatorSpec(mac, profile(KINDS[i % 3]), stop_after="script")
             for i, mac in enumerate(macs)]
    with proxy:
        fleet = ProcessFleet(lab, "machines", "lan", specs, processes=2, scale=0.1)
        result = fleet.run(timeout=120)
    pids = {c.process.pid for c in fleet._children}
    assert len(pids) == 2 and os.getpid() not in pids
    assert [m["mac"] for m in result.machines] == macs  # every machine once, in order
    assert result.states == {"done": 12}, [(m["mac"], m["error"]) for m in result.machines]
    for mirror, machine in zip(fleet.machines, result.machines, strict=True):
        # the parent's mirror heard everything the child's machine recorded
        assert mirror.state == machine["state"] == "done" and mirror.finished
        assert [e.summary for e in mirror.timeline.events] == \
            [e["summary"] for e in machine["timeline"]["events"]]
    assert all(_gone(pid) for pid in pids)


def test_a_power_cut_and_a_power_on_reach_a_machine_of_the_second_process(
        emu_lab: Lab) -> None:
    lab = emu_lab
    macs = _macs(0xA2, 2)  # dealt: macs[0] to process 0, macs[1] to process 1
    with _slow_fleet(lab, macs) as fleet:
        m = fleet.machine(macs[1])
        wait_until(lambda: m.state == "tftp", timeout=60, interval=0.05,
                   what="the second process's machine to be in TFTP",
                   evidence=lambda: f"state {m.state}")
        fleet.power_off([macs[1]])
        assert m.state == "off" and m.finished  # heard before power_off returned
        fleet.power_on([macs[1]])
        wait_until(lambda: [e.summary for e in m.timeline.events].count("power-on") == 2,
                   timeout=30, interval=0.05, what="the machine to boot again",
                   evidence=lambda: f"{m.timeline.events[-3:]}")
        assert fleet.machine(macs[0]).state != "off"  # the other process's machine ran on


def test_a_child_that_dies_is_an_error_naming_it_and_no_child_is_left(emu_lab: Lab) -> None:
    lab = emu_lab
    macs = _macs(0xA3, 4)
    with _slow_fleet(lab, macs) as fleet:
        victim = fleet._children[1].process
        os.kill(victim.pid, signal.SIGKILL)
        with pytest.raises(SimMachineError, match=rf"fleet process 1 \(pid {victim.pid}\)"):
            fleet.wait(60)
    assert all(_gone(c.process.pid) for c in fleet._children)
