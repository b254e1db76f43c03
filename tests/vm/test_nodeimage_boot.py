"""Boot the real node image in QEMU (TCG): data disk prepared and kept, registration over DHCP.

Direct kernel boot, no PXE: this checks the image and its agent, not the boot chain.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmhelpers import agent_lines, boot_node_image, needs_qemu, node_net

from harness.machines.vm.disk import fresh_uefi_vars
from harness.machines.vm.domain import OVMF_CODE
from nodeimage import BuildResult, build_image

pytestmark = [pytest.mark.vm, needs_qemu]

MAC = "52:54:00:7e:00:01"


@pytest.fixture(scope="module")
def node_image() -> BuildResult:
    return build_image()


@pytest.fixture
def data_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "12G"], check=True)
    yield disk
    disk.unlink(missing_ok=True)


def test_disk_formatted_then_found_intact(node_image: BuildResult, data_disk: Path,
                                          tmp_path: Path) -> None:
    first = agent_lines(boot_node_image(node_image.kernel, node_image.initrd,
                                        tmp_path / "boot1.log", append="flexlab.poweroff=1",
                                        disk=data_disk))
    assert any(line.startswith("FLEXLAB-AGENT: disk formatting dev=vda") for line in first)
    assert any("data=new boots=1" in line for line in first), first
    second = agent_lines(boot_node_image(node_image.kernel, node_image.initrd,
                                         tmp_path / "boot2.log", append="flexlab.poweroff=1",
                                         disk=data_disk))
    assert not any("disk formatting" in line for line in second), second
    assert any("data=intact boots=2" in line for line in second), second


def test_small_disk_is_not_used(node_image: BuildResult, tmp_path: Path) -> None:
    small = tmp_path / "small.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(small), "2G"], check=True)
    lines = agent_lines(boot_node_image(node_image.kernel, node_image.initrd,
                                        tmp_path / "boot.log",
                                        append="flexlab.poweroff=1 flexlab.diskwait=3",
                                        disk=small))
    assert any(line.startswith("FLEXLAB-AGENT: disk none") for line in lines), lines
    assert not any("disk formatting" in line for line in lines)


def test_uefi_boot_reports_efi(node_image: BuildResult, tmp_path: Path) -> None:
    vars_copy = fresh_uefi_vars(tmp_path / "OVMF_VARS.fd")
    uefi = ["-machine", "q35",
            "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive", f"if=pflash,format=raw,file={vars_copy}"]
    lines = agent_lines(boot_node_image(node_image.kernel, node_image.initrd,
                                        tmp_path / "boot.log",
                                        append="flexlab.poweroff=1 flexlab.diskwait=2",
                                        extra_args=uefi))
    facts = next(line for line in lines if line.startswith("FLEXLAB-AGENT: facts "))
    assert json.loads(facts.removeprefix("FLEXLAB-AGENT: facts "))["firmware"] == "efi"


@pytest.mark.parametrize("model", ["virtio-net-pci", "e1000", "rtl8139"])
def test_registers_and_reports_ready(node_image: BuildResult, data_disk: Path, tmp_path: Path,
                                     model: str) -> None:
    with node_net(tmp_path) as net:
        nic = ["-netdev", f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
               "-device", f"{model},netdev=n0,mac={MAC}"]
        append = (f"flexlab.poweroff=1 flexlab.cp={net.cp_url} flexlab.token={net.join_token} "
                  f"flexlab.mac={MAC.upper()} flexlab.timeurl={net.cp_url}/api/v1/time")
        console = boot_node_image(node_image.kernel, node_image.initrd, tmp_path / "boot.log",
                                  append=append, disk=data_disk, nic_args=nic, netns=net.netns)
        calls = [json.loads(line) for line in net.calls.read_text().splitlines()]
    lines = agent_lines(console)
    assert any(line.startswith("FLEXLAB-AGENT: dhcp ok nic=eth0 ip=10.77.0.") for line in lines)
    assert any(line.startswith("FLEXLAB-AGENT: clock ") and line.endswith(" ok")
               for line in lines), lines
    assert "FLEXLAB-AGENT: registered state=Registered" in lines
    assert "FLEXLAB-AGENT: ready ok" in lines
    # the time sync (flexlab.timeurl) measures, steps and measures again until the clock
    # is on the Control Plane's time; the clock check reports its last measurement
    timesync = next(line for line in lines if line.startswith("FLEXLAB-AGENT: timesync "))
    assert timesync.endswith(" ok"), lines
    time_gets = len(calls) - 2
    assert time_gets >= 1 and [(c["method"], c["path"]) for c in calls] == [
        *[("GET", "/api/v1/time")] * time_gets,
        ("POST", "/api/v1/nodes/register"),
        ("POST", f"/api/v1/nodes/{MAC}/ready"),
    ], calls
    register = json.loads(calls[-2]["body"])
    assert calls[-2]["auth"] == f"Bearer {net.join_token}"
    assert register["mac"] == MAC
    facts = register["facts"]
    assert facts["arch"] == "x86_64" and facts["cpu_cores"] == 2
    assert facts["firmware"] == "bios"
    assert {"name": "vda", "size_bytes": 12 * 1024**3} in facts["disks"]
    # the leased address joins the booting NIC's facts (the site DNS check reads it)
    eth0 = next(n for n in facts["nics"] if n["name"] == "eth0")
    assert eth0["mac"] == MAC and eth0["ipv4"].startswith("10.77.0."), facts["nics"]
    assert "QEMU" in facts["vendor"]


@pytest.mark.parametrize(
    ("cp_token", "boot_token", "expected"),
    [
        ("reject-t1", "reject-t1", "FLEXLAB-AGENT: registered state=Rejected reasons=["),
        ("join-good", "join-stale", "FLEXLAB-AGENT: registered state=error reason="),
    ],
)
def test_registration_failures_are_reported(node_image: BuildResult, tmp_path: Path,
                                            cp_token: str, boot_token: str,
                                            expected: str) -> None:
    with node_net(tmp_path, join_token=cp_token) as net:
        nic = ["-netdev", f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
               "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"]
        append = (f"flexlab.poweroff=1 flexlab.diskwait=2 flexlab.cp={net.cp_url} "
                  f"flexlab.token={boot_token} flexlab.mac={MAC}")
        console = boot_node_image(node_image.kernel, node_image.initrd, tmp_path / "boot.log",
                                  append=append, nic_args=nic, netns=net.netns)
        calls = [json.loads(line) for line in net.calls.read_text().splitlines()]
    lines = agent_lines(console)
    assert any(line.startswith(expected) for line in lines), lines
    assert "FLEXLAB-AGENT: done result=failed" in lines
    assert not any(c["path"].endswith("/ready") for c in calls), "no Ready after a failure"
