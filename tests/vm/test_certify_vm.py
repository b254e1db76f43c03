"""`flexlab certify` against real firmware: a libvirt/QEMU VM (TCG, SeaBIOS, virtio-net with its
iPXE ROM) on a lab LAN PXE-boots the node image through the certify host's own Boot Proxy.

The real CLI runs in the certify host's namespace with the default node image; the VM's tap
is moved into the lab's switch namespace and enslaved to the segment's bridge (as the vm
driver does). A 2-vCPU, 3.5 GiB, 12 GiB-disk VM is CERTIFIED and its bundle (console log
included) verifies; a 1-vCPU VM is NOT CERTIFIED with the cpu reason. Two boots in all.

The 2-vCPU VM is powered on by certify itself through Redfish: sushy-tools' emulator (its
libvirt driver, restricted to this one domain) plays the BMC inside the certify host's
namespace, so ``--redfish`` sends a real ComputerSystem.Reset that starts the domain; the
tap is then moved onto the segment (the ROM retries DHCP, so a DISCOVER sent in the few
milliseconds before that is not missed for good). The 1-vCPU VM is powered on by hand
(started paused, tap moved, resumed), as an operator would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from vmhelpers import needs_root_qemu_libvirt

from harness.certify.verify import verify_bundle
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Host, HostLink, Lab, Segment, Topology
from harness.lab import names as lab_names
from harness.machines.vm.disk import create_sparse_disk
from harness.machines.vm.domain import Accel, DataDisk, DomainSpec, Firmware, Nic, NicModel
from harness.machines.vm.libvirt_vm import connect, started_domain, teardown
from harness.wait import wait_until

pytestmark = [pytest.mark.vm, needs_root_qemu_libvirt, pytest.mark.timeout(600)]

TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("cert", (HostLink("lan"),))),
)
MEMORY_MIB = 3584          # 3.76 GB: above 3 GB once the kernel has taken its share
DISK_BYTES = 12 * 1024**3  # sparse qcow2: costs nothing until written
BMC_PORT = 8000           # inside the certify host's namespace


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    subprocess.run(argv, check=True, capture_output=True)


def _redfish_bmc(lab: Lab, tmp_path: Path, uuid: str) -> str:
    """sushy-emulator in the certify host's namespace, exposing only domain ``uuid``."""
    emulator = shutil.which("sushy-emulator", path=str(Path(sys.executable).parent))
    if emulator is None:
        pytest.skip("sushy-tools not installed: pip install -e .[test]")
    config = tmp_path / "sushy.conf"
    config.write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {BMC_PORT}\n"
        "SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system'\n"
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = ['{uuid}']\n"
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = True\n")
    bmc = lab.start_process("sushy-emulator", [emulator, "--config", str(config)], "cert")
    bmc.wait_for_log(r"Running on http://127\.0\.0\.1", timeout=60)
    return f"http://127.0.0.1:{BMC_PORT}/redfish/v1/Systems/{uuid}"


def _plug(lab: Lab, tap: str) -> str:
    """Move the VM's tap from the root namespace onto the lab segment's bridge."""
    _ip("link", "set", "dev", tap, "netns", lab.switch_ns)
    _ip("link", "set", "dev", tap, "master", lab_names.bridge("lan"), "up", netns=lab.switch_ns)
    return lab.switch_ns


def _certify_vm(lab: Lab, tmp_path: Path, mac: str, vcpus: int, *, redfish: bool
                ) -> tuple[int | None, str, Path, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    # libvirt's QEMU runs as libvirt-qemu: it must reach the disk and the serial log
    lab.temp_dir.chmod(0o711)
    work = lab.temp_dir / "vm"
    work.mkdir(mode=0o755, exist_ok=True)
    disk = DataDisk(work / "data.qcow2", size_bytes=DISK_BYTES)
    create_sparse_disk(disk)
    serial = work / "serial.log"
    tap = f"{lab.id}c0"
    spec = DomainSpec(lab_id=lab.id, machine=f"certify-{vcpus}cpu",
                      nics=(Nic(tap, mac, NicModel.VIRTIO, rom=True),), serial_log=serial,
                      vcpus=vcpus, memory_mib=MEMORY_MIB, accel=Accel.TCG,
                      firmware=Firmware.BIOS, data_disk=disk, on_reboot="destroy")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness.certify", "--iface", lab.link("cert", "lan").host_iface,
            "--mac", mac, "--out", str(out), "--key", str(key_file), "--timeout", "360",
            "--console", str(serial)]
    conn = connect()
    _ip("tuntap", "add", "dev", tap, "mode", "tap")
    where: str | None = None
    dom = None
    try:
        with SiteDhcp(lab, "dhcp", "lan"):
            if redfish:
                dom = conn.defineXMLFlags(spec.to_xml(), 0)
                url = _redfish_bmc(lab, tmp_path, dom.UUIDString())
                proc = lab.start_process("certify", [
                    *argv, "--redfish", url, "--bmc-user", "admin", "--bmc-password", "unused"],
                    "cert")
                wait_until(lambda: dom.isActive() or not proc.running(), timeout=180,
                           what="the BMC to power the VM on", evidence=proc.log_tail)
                where = _plug(lab, tap)
                wait_until(lambda: not proc.running(), timeout=420, interval=1.0,
                           what="certify to judge the VM", evidence=proc.log_tail)
            else:
                proc = lab.start_process("certify", argv, "cert")
                proc.wait_for_log(r"power on \S+ now", timeout=180)  # may build the image
                with started_domain(conn, spec) as paused:
                    where = _plug(lab, tap)
                    paused.resume()
                    wait_until(lambda: not proc.running(), timeout=420, interval=1.0,
                               what="certify to judge the VM", evidence=proc.log_tail)
    finally:
        if dom is not None:
            teardown(dom)
        subprocess.run(["ip", *(["-n", where] if where else []), "link", "del", tap],
                       capture_output=True, check=False)
    bundles = sorted(out.glob("certification-*.tar.gz"))
    assert len(bundles) == 1, proc.log_text()
    return proc.returncode(), proc.log_text(), bundles[0], key


def test_a_two_cpu_vm_is_certified_and_its_bundle_verifies(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    mac = "52:54:00:ce:0a:02"
    rc, log, bundle, key = _certify_vm(lab, tmp_path, mac, vcpus=2, redfish=True)
    assert rc == 0, log
    assert f"CERTIFIED: {mac}" in log and "NOT CERTIFIED" not in log
    assert "through Redfish" in log and "ComputerSystem.Reset On" in log
    verified = verify_bundle(bundle, key.public_key())
    cert = verified.certification
    assert cert["certified"] is True
    by_name = {r["name"]: r for r in cert["requirements"]}
    assert by_name["cpu"]["measured"] == "2 cores"
    assert by_name["firmware"]["measured"].startswith("option 93: bios")
    assert cert["settings"]["redfish"]["reset_type"] == "On"
    assert "console.log" in verified.files and verified.files["console.log"]["size"] > 0


def test_a_one_cpu_vm_is_not_certified_with_the_cpu_reason(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    mac = "52:54:00:ce:0a:01"
    rc, log, bundle, key = _certify_vm(lab, tmp_path, mac, vcpus=1, redfish=False)
    assert rc == 1, log
    assert f"NOT CERTIFIED: {mac}" in log and "cpu: 1 core, needs >= 2" in log
    cert = verify_bundle(bundle, key.public_key()).certification
    assert cert["failures"] == ["cpu: 1 core, needs >= 2"]
