"""The kernel command line contract: one template, the consoles being the only variable."""

from __future__ import annotations

import pytest

from controlplane.store import render_cmdline
from harness import localboot
from harness.builder import vm_driver
from harness.plan.cmdline import LOCAL_CMDLINE, NODE_CMDLINE, KernelCmdline

pytestmark = pytest.mark.unit

AGENT = ("flexlab.cp={cp_url} flexlab.token={join_token} flexlab.mac={mac} "
         "flexlab.hostname={hostname} flexlab.timeurl={cp_url}/api/v1/time")


def test_templates_are_the_ones_machines_have_booted_with() -> None:
    assert NODE_CMDLINE.template() == "console=ttyS0 panic=-1 " + AGENT
    assert LOCAL_CMDLINE.template() == "console=tty0 console=ttyS0 panic=-1 " + AGENT
    assert KernelCmdline(panic_reboot=False).template() == "console=ttyS0 " + AGENT


def test_localboot_and_the_vm_driver_use_the_contract() -> None:
    assert LOCAL_CMDLINE.template() == localboot.CMDLINE
    assert localboot.LocalBootConfig("eth0", [], b"", b"").cmdline == LOCAL_CMDLINE.template()
    assert NODE_CMDLINE.template() == vm_driver.VM_CMDLINE


def test_render_fills_what_the_control_plane_fills() -> None:
    values = {"cp_url": "http://10.0.0.1:8000", "join_token": "tok", "mac": "52:54:00:00:00:01",
              "hostname": "node-1"}
    line = NODE_CMDLINE.render(**values)
    assert line == render_cmdline(NODE_CMDLINE.template(), values)
    assert "{" not in line
    assert line.endswith("flexlab.timeurl=http://10.0.0.1:8000/api/v1/time")
    assert line.split()[0] == "console=ttyS0"
