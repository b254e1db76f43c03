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
milliseconds before that is not missed for good).

The 1-vCPU VM is powered on by certify through IPMI: virtualbmc's daemon (own config dir
and pid file under tmp_path, ZMQ control port and IPMI port inside the certify host's
namespace) is the BMC for that one domain, and ``--ipmi 127.0.0.1:PORT`` makes certify run
the real ``ipmitool -I lanplus`` (power status, bootdev pxe, power on), with the password
given through FLEXLAB_BMC_PASSWORD only. Still two boots in all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from vmhelpers import needs_libvirt_python, needs_qemu

from harness.certify.keys import default_key
from harness.certify.verify import verify_bundle
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Host, HostLink, Lab, Segment, Topology
from harness.lab import names as lab_names
from harness.lab.sockets import tcp_listening, udp_bound
from harness.machines.vm.disk import create_sparse_disk
from harness.machines.vm.domain import Accel, DataDisk, DomainSpec, Firmware, Nic, NicModel
from harness.machines.vm.libvirt_vm import connect, teardown
from harness.pytest_plugin import missing_requirement, require
from harness.wait import wait_until

pytestmark = [pytest.mark.vm, needs_qemu, needs_libvirt_python, pytest.mark.timeout(600)]

TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("cert", (HostLink("lan"),))),
)
MEMORY_MIB = 3584          # 3.76 GB: above 3 GB once the kernel has taken its share
DISK_BYTES = 12 * 1024**3  # sparse qcow2: costs nothing until written
BMC_PORT = 8000           # inside the certify host's namespace
IPMI_PORT = 6230          # virtualbmc's IPMI port, inside the certify host's namespace
VBMCD_PORT = 50891        # vbmcd's ZMQ control port, inside the certify host's namespace
IPMI_PASSWORD = "ipmi-Secret-42"
#: what certify's log says when it powers the VM on through each BMC
BMC_SAYS = {"redfish": ("through Redfish", "ComputerSystem.Reset On"),
            "ipmi": ("through IPMI", "sent chassis power on")}


def _ip(*args: str, netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    subprocess.run(argv, check=True, capture_output=True)


def _redfish_bmc(lab: Lab, tmp_path: Path, uuid: str) -> str:
    """sushy-emulator in the certify host's namespace, exposing only domain ``uuid``."""
    emulator = shutil.which("sushy-emulator", path=str(Path(sys.executable).parent))
    if emulator is None:
        missing_requirement("needs sushy-tools (sushy-emulator): pip install -e .[test]")
    config = tmp_path / "sushy.conf"
    config.write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {BMC_PORT}\n"
        "SUSHY_EMULATOR_LIBVIRT_URI = 'qemu:///system'\n"
        f"SUSHY_EMULATOR_ALLOWED_INSTANCES = ['{uuid}']\n"
        "SUSHY_EMULATOR_IGNORE_BOOT_DEVICE = True\n")
    bmc = lab.start_process("sushy-emulator", [emulator, "--config", str(config)], "cert")
    bmc.wait_for_log(r"Running on http://127\.0\.0\.1", timeout=60)
    return f"http://127.0.0.1:{BMC_PORT}/redfish/v1/Systems/{uuid}"


def _family(pid: int) -> list[int]:
    """``pid`` and its descendants (vbmcd serves each BMC from a child process)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    family, todo = [], [pid]
    while todo:
        current = todo.pop()
        family.append(current)
        todo += children.get(current, [])
    return family


def _ipmi_bmc(lab: Lab, tmp_path: Path, domain: str) -> str:
    """virtualbmc in the certify host's namespace, the BMC of domain ``domain`` only."""
    bindir = str(Path(sys.executable).parent)
    vbmcd, vbmc = shutil.which("vbmcd", path=bindir), shutil.which("vbmc", path=bindir)
    if vbmcd is None or vbmc is None:
        missing_requirement("needs virtualbmc (vbmcd, vbmc): pip install -e .[test]")
    require(shutil.which("ipmitool"),
            "needs ipmitool: apt-get install ipmitool (scripts/setup-host.sh)")
    state = tmp_path / "vbmc"
    state.mkdir()
    config = tmp_path / "virtualbmc.conf"
    config.write_text(f"[default]\nconfig_dir = {state}\npid_file = {tmp_path / 'vbmcd.pid'}\n"
                      f"server_port = {VBMCD_PORT}\n[log]\ndebug = true\n")
    env = ["env", f"VIRTUALBMC_CONFIG={config}"]
    daemon = lab.start_process("vbmcd", [*env, vbmcd, "--foreground"], "cert")
    wait_until(lambda: any(tcp_listening(p, VBMCD_PORT) for p in _family(daemon.pid))
               or not daemon.running(), timeout=30, what="vbmcd's control port",
               evidence=daemon.log_tail)
    assert daemon.running(), daemon.log_tail()
    lab.run("cert", [*env, vbmc, "add", domain, "--address", "127.0.0.1", "--port",
                     str(IPMI_PORT), "--username", "admin", "--password", IPMI_PASSWORD,
                     "--libvirt-uri", "qemu:///system"])
    lab.run("cert", [*env, vbmc, "start", domain])
    wait_until(lambda: any(udp_bound(p, IPMI_PORT) for p in _family(daemon.pid)), timeout=30,
               what=f"virtualbmc to bind UDP {IPMI_PORT}", evidence=daemon.log_tail)
    return f"127.0.0.1:{IPMI_PORT}"


def _plug(lab: Lab, tap: str) -> str:
    """Move the VM's tap from the root namespace onto the lab segment's bridge."""
    _ip("link", "set", "dev", tap, "netns", lab.switch_ns)
    _ip("link", "set", "dev", tap, "master", lab_names.bridge("lan"), "up", netns=lab.switch_ns)
    return lab.switch_ns


def _certify_vm(lab: Lab, tmp_path: Path, mac: str, vcpus: int, *, bmc: str,
                certified: bool) -> tuple[str, Path, Ed25519PrivateKey]:
    """Certify a fresh VM that certify powers on through ``bmc`` ("redfish" or "ipmi"):
    its exit code and verdict line must say ``certified`` (0 or 1, docs/CLI.md), its log
    the BMC it used. Returns the log, the one bundle it wrote and the signing key."""
    key, key_file, _ = default_key(tmp_path / "key.pem")
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
            dom = conn.defineXMLFlags(spec.to_xml(), 0)
            if bmc == "redfish":
                url = _redfish_bmc(lab, tmp_path, dom.UUIDString())
                argv += ["--redfish", url, "--bmc-user", "admin", "--bmc-password", "unused"]
            else:
                # env execs certify: the password is in its environment, not in any argv
                address = _ipmi_bmc(lab, tmp_path, dom.name())
                argv = ["env", f"FLEXLAB_BMC_PASSWORD={IPMI_PASSWORD}", *argv,
                        "--ipmi", address, "--bmc-user", "admin"]
            proc = lab.start_process("certify", argv, "cert")
            wait_until(lambda: dom.isActive() or not proc.running(), timeout=180,
                       what="the BMC to power the VM on", evidence=proc.log_tail)
            if bmc == "ipmi" and proc.running():
                cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                assert IPMI_PASSWORD.encode() not in cmdline, "the password is in ps"
            where = _plug(lab, tap)
            wait_until(lambda: not proc.running(), timeout=420, interval=1.0,
                       what="certify to judge the VM", evidence=proc.log_tail)
    finally:
        if dom is not None:
            teardown(dom)
        subprocess.run(["ip", *(["-n", where] if where else []), "link", "del", tap],
                       capture_output=True, check=False)
    log = proc.log_text()
    bundles = sorted(out.glob("certification-*.tar.gz"))
    assert len(bundles) == 1, log
    if certified:
        assert proc.returncode() == 0, log
        assert f"CERTIFIED: {mac}" in log and "NOT CERTIFIED" not in log
    else:
        assert proc.returncode() == 1, log
        assert f"NOT CERTIFIED: {mac}" in log
    for says in BMC_SAYS[bmc]:
        assert says in log, log
    return log, bundles[0], key


def test_a_two_cpu_vm_is_certified_and_its_bundle_verifies(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    mac = "52:54:00:ce:0a:02"
    _, bundle, key = _certify_vm(lab, tmp_path, mac, vcpus=2, bmc="redfish", certified=True)
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
    log, bundle, key = _certify_vm(lab, tmp_path, mac, vcpus=1, bmc="ipmi", certified=False)
    assert "cpu: 1 core, needs >= 2" in log
    cert = verify_bundle(bundle, key.public_key()).certification
    assert cert["failures"] == ["cpu: 1 core, needs >= 2"]
    ipmi = cert["settings"]["ipmi"]
    assert ipmi["bmc"] == f"127.0.0.1:{IPMI_PORT}" and ipmi["interface"] == "lanplus"
    assert (ipmi["power_state_before"], ipmi["command"]) == ("off", "chassis power on")
    # virtualbmc honours bootdev (it rewrites the domain's boot order to the network)
    assert (ipmi["boot_override"], ipmi["warnings"]) == ("pxe (next boot only)", [])
    assert cert["settings"]["redfish"] is None
    # the password is nowhere: not in certify's output, not in any file of the bundle
    assert IPMI_PASSWORD not in log
    with tarfile.open(bundle) as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member)
            assert data is not None and IPMI_PASSWORD.encode() not in data.read(), member.name
