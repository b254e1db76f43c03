"""libvirt smoke: the DomainSpec boots the node image (direct kernel boot) under libvirt.

The NIC is an unmanaged tap created in the root namespace, opened by the domain
while paused, moved into a test namespace with DHCP and a stub Control Plane,
then the domain is resumed: the path MACHINE-NOTES describes for lab VMs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmhelpers import (
    CP_URL,
    DONE_MARKER,
    agent_lines,
    needs_libvirt_python,
    needs_qemu,
    node_net,
    wait_for_text,
)

from harness.machines.vm import DataDisk, DirectBoot, DomainSpec, Firmware, Nic
from harness.machines.vm.disk import create_sparse_disk
from harness.machines.vm.libvirt_vm import connect, domains_of_lab, started_domain
from nodeimage import build_image

pytestmark = [pytest.mark.vm, needs_qemu, needs_libvirt_python]

MAC = "52:54:00:7e:01:01"


@pytest.fixture
def lab_id() -> str:
    return f"fl{secrets.token_hex(3)}"


@pytest.fixture
def workdir(lab_id: str) -> Iterator[Path]:
    # Under /var/tmp with 0755: libvirt's QEMU runs as libvirt-qemu and must reach the files
    # (pytest's tmp_path is 0700).
    path = Path("/var/tmp") / f"flexlab-{lab_id}"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def conn() -> Iterator[object]:
    connection = connect()  # libvirtd answers (needs_libvirt): a refusal here is an error
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def tap(lab_id: str) -> Iterator[str]:
    name = f"{lab_id}-n1-0"
    subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], check=True)
    try:
        yield name
    finally:
        # Gone already if it was moved into the (deleted) namespace.
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)


def test_domain_boots_node_image_and_registers(conn: object, lab_id: str, workdir: Path,
                                               tap: str) -> None:
    image = build_image()
    kernel, initrd = workdir / "vmlinuz", workdir / "initrd.img"
    shutil.copyfile(image.kernel, kernel)
    shutil.copyfile(image.initrd, initrd)
    serial = workdir / "n1.serial.log"
    disk = DataDisk(workdir / "n1.data.qcow2")
    create_sparse_disk(disk)
    token = f"join-{secrets.token_hex(4)}"
    cmdline = (f"console=ttyS0 panic=-1 flexlab.poweroff=1 flexlab.cp={CP_URL} "
               f"flexlab.token={token} flexlab.mac={MAC}")
    spec = DomainSpec(lab_id=lab_id, machine="n1", nics=(Nic(tap, MAC),), serial_log=serial,
                      memory_mib=1024, data_disk=disk,
                      direct_boot=DirectBoot(kernel, initrd, cmdline))
    with started_domain(conn, spec, paused=True) as dom:
        assert [d.name() for d in domains_of_lab(conn, lab_id)] == [spec.name]
        import libvirt

        state, _ = dom.state()
        assert state == libvirt.VIR_DOMAIN_PAUSED
        with node_net(workdir, move_tap=tap, join_token=token) as net:
            dom.resume()
            console = wait_for_text(serial, DONE_MARKER, 240)
            calls = [json.loads(x) for x in net.calls.read_text().splitlines()]
    assert domains_of_lab(conn, lab_id) == []
    lines = agent_lines(console)
    assert any("data=new boots=1" in line for line in lines), lines
    assert "FLEXLAB-AGENT: done result=ok" in lines, lines
    assert [c["path"] for c in calls][-1] == f"/api/v1/nodes/{MAC}/ready"
    assert os.path.exists(serial)


def test_uefi_domain_boots_with_fresh_nvram(conn: object, lab_id: str, workdir: Path) -> None:
    image = build_image()
    kernel, initrd = workdir / "vmlinuz", workdir / "initrd.img"
    shutil.copyfile(image.kernel, kernel)
    shutil.copyfile(image.initrd, initrd)
    serial = workdir / "u1.serial.log"
    nvram = workdir / "u1.OVMF_VARS.fd"
    spec = DomainSpec(lab_id=lab_id, machine="u1", nics=(), serial_log=serial, memory_mib=1024,
                      firmware=Firmware.UEFI, uefi_vars=nvram,
                      direct_boot=DirectBoot(kernel, initrd,
                                             "console=ttyS0 panic=-1 flexlab.poweroff=1"))
    with started_domain(conn, spec, paused=False):
        console = wait_for_text(serial, DONE_MARKER, 240)
        assert nvram.exists(), "libvirt should have copied the OVMF_VARS template"
    facts = next(x for x in agent_lines(console) if x.startswith("FLEXLAB-AGENT: facts "))
    assert json.loads(facts.removeprefix("FLEXLAB-AGENT: facts "))["firmware"] == "efi"
    assert domains_of_lab(conn, lab_id) == []
