"""vm tier: a two-NIC machine boots from its second NIC; its first NIC sits on a segment
with a site DHCP server but no Boot Proxy.

The scenario model gives a machine one NIC, so the test hands the driver an
:class:`ExtraNic` on segment ``data`` ahead of the boot NIC on ``lan``. SeaBIOS tries
NIC 1 first: its iPXE ROM gets a site lease and no boot answer ("Nothing to boot"),
SeaBIOS moves on to NIC 2, which the Boot Proxy answers; the node agent finds its NIC by
the MAC the Control Plane knows and registers. Evidence: the first NIC's DISCOVERs on
``data`` went unanswered by any proxy (the console shows both NICs' iPXE), the second
NIC booted via bp1 and the machine is Ready. The guide: "Set BIOS to boot from the
desired NIC first to optimize boot times" — this is the machine where it was not.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vmhelpers import failed_expectations, needs_libvirt_python, needs_qemu
from vmruns import DriverRecorder, bp1_site_scenario, lan_vm

from harness.builder.runner import ScenarioRunner
from harness.builder.vm_driver import ExtraNic, VmDriver

pytestmark = [pytest.mark.vm, needs_qemu, needs_libvirt_python]

FIRST_NIC_MAC = "02:f1:ab:00:00:01"   # a MAC no cluster owns, on the segment without a proxy
SCENARIO = bp1_site_scenario("vm-multi-nic", [lan_vm("twonic", "seabios-ipxe", "virtio")],
                             timeout=300, rules=["MUST"], segments_before_lan=["data"])


def test_boots_from_second_nic_when_first_has_no_proxy(tmp_path: Path) -> None:
    recorder = DriverRecorder(lambda lab, sc: VmDriver(
        lab, sc, extra_nics={"twonic": [ExtraNic("data", FIRST_NIC_MAC)]}))
    runner = ScenarioRunner(SCENARIO, reports_dir=tmp_path, kinds=recorder.kinds())
    result = runner.run()
    assert recorder.drivers, result.error
    vm = recorder.drivers[0].vms["twonic"]
    assert vm.spec.nics[0].mac == FIRST_NIC_MAC, "the extra NIC boots first"
    assert result.verdict == "pass", failed_expectations(result)
    data = runner.captures["data"].dhcp
    first = [e for e in data if e.chaddr == FIRST_NIC_MAC and e.msg_type == "DISCOVER"]
    assert first, "NIC 1 never tried to boot on its segment"
    assert all(e.is_pxe_client for e in first), [e.vendor_class for e in first]
    replies = [e for e in data if e.is_reply and e.chaddr == FIRST_NIC_MAC]
    assert replies, "the site DHCP server on NIC 1's segment never answered"
    assert not [e for e in replies if (e.vendor_class or "").startswith("PXEClient")], \
        "something answered NIC 1 as a boot server: the segment was meant to have none"
    console = (tmp_path / "labs" / result.lab_id / "consoles" / "twonic.log").read_text(
        errors="replace")
    nic1, nic2 = console.find(FIRST_NIC_MAC), console.find(vm.plan.mac)
    assert 0 <= nic1 < nic2, "iPXE on NIC 1 ran before NIC 2 booted"
