"""`flexlab certify` end to end against an emulated machine on a lab LAN.

The real CLI (`python -m harness.certify`) runs in the certify host's namespace, on that
host's lab interface, exactly as on a site host: its own Control Plane and Boot Proxy,
its own capture. An emulated machine (harness/machines/sim) is then powered on on the same
segment; the site DHCP server gives it an address. A 2-core machine is CERTIFIED and its
bundle verifies; a 1-core machine is NOT CERTIFIED with the cpu reason, and its bundle
still verifies (a failed certification is evidence too).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.certify.keys import default_key, fingerprint
from harness.certify.verify import verify_bundle
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Host, HostLink, Lab, Segment, Topology
from harness.lab.process import LabProcess
from harness.localboot import stand_in_artifact
from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.machines.sim.agent import Disk, NodeFacts
from harness.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.timeout(240)]

TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("cert", (HostLink("lan"),)),
           Host("machines", (HostLink("lan", None),))),
)


def _start_certify(lab: Lab, tmp_path: Path, mac: str, timeout: int,
                   boot_bytes: int = 1000) -> tuple[LabProcess, Ed25519PrivateKey]:
    """The real certify CLI in the certify host's namespace, with a fresh signing key and
    stand-in boot files (only the network path and the judging matter here)."""
    key, key_file, _ = default_key(tmp_path / "key.pem")
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd.img"
    kernel.write_bytes(stand_in_artifact("vmlinuz", boot_bytes))
    initrd.write_bytes(stand_in_artifact("initrd.img", boot_bytes))
    proc = lab.start_process("certify", [
        sys.executable, "-m", "harness.certify", "--iface", lab.link("cert", "lan").host_iface,
        "--mac", mac, "--out", str(tmp_path / "out"), "--key", str(key_file),
        "--timeout", str(timeout), "--kernel", str(kernel), "--initrd", str(initrd)], "cert")
    return proc, key


def _certify(lab: Lab, tmp_path: Path, mac: str, facts: NodeFacts,
             firmware: str = "pxe-bios") -> tuple[int | None, str, Path, Ed25519PrivateKey]:
    proc, key = _start_certify(lab, tmp_path, mac, timeout=90, boot_bytes=300_000)
    out = tmp_path / "out"
    with SiteDhcp(lab, "dhcp", "lan"):
        proc.wait_for_log(r"power on \S+ now", timeout=60)
        result = Fleet(lab, "machines", "lan",
                       [EmulatorSpec(mac, profile(firmware), facts=facts)], scale=0.1).run(100)
        machine = result.by_mac(mac)
        assert machine["state"] in ("done", "failed"), machine
        wait_until(lambda: not proc.running(), timeout=60, what="certify to finish",
                   evidence=proc.log_tail)
    bundles = sorted(out.glob("certification-*.tar.gz"))
    assert len(bundles) == 1, proc.log_text()
    return proc.returncode(), proc.log_text(), bundles[0], key


def test_a_two_core_machine_is_certified_and_its_bundle_verifies(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    mac = "52:54:00:ce:00:01"
    facts = NodeFacts(cpu_cores=2, memory_bytes=4 * 10**9, disks=(Disk("vda", 20 * 10**9),))
    rc, log, bundle, key = _certify(lab, tmp_path, mac, facts)
    assert rc == 0, log
    assert f"CERTIFIED: {mac}" in log and "NOT CERTIFIED" not in log
    for phase in ("discover", "proxy-offer", "tftp", "http", "registered"):
        assert f"] {phase}:" in log, log
    verified = verify_bundle(bundle, key.public_key())
    assert verified.fingerprint == fingerprint(key.public_key())
    cert = verified.certification
    assert cert["certified"] is True and cert["mac"] == mac
    assert {r["name"] for r in cert["requirements"] if r["ok"]} >= {
        "arch", "cpu", "memory", "disk", "pxe_nic", "firmware", "clock"}
    assert "console.log" not in verified.files and "boot.pcap" in verified.files


def test_a_one_core_machine_is_not_certified_with_the_cpu_reason(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    mac = "52:54:00:ce:00:02"
    facts = NodeFacts(cpu_cores=1, memory_bytes=4 * 10**9, disks=(Disk("vda", 20 * 10**9),))
    rc, log, bundle, key = _certify(lab, tmp_path, mac, facts, firmware="edk2-x64")
    assert rc == 1, log
    assert f"NOT CERTIFIED: {mac}" in log
    assert "cpu: 1 core, needs >= 2" in log
    cert = verify_bundle(bundle, key.public_key()).certification
    assert cert["failures"] == ["cpu: 1 core, needs >= 2"]
    assert cert["control_plane"]["state"] == "Rejected"


def test_a_machine_that_never_boots_is_not_certified_with_the_last_phase(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    mac = "52:54:00:ce:00:03"
    proc, _ = _start_certify(lab, tmp_path, mac, timeout=3)
    wait_until(lambda: not proc.running(), timeout=60, what="certify to give up",
               evidence=proc.log_tail)
    log = proc.log_text()
    assert proc.returncode() == 1, log
    assert f"boot: {mac} did not register within 3 s; last phase reached: off" in log
    bundle = next((tmp_path / "out").glob("certification-*.tar.gz"))
    assert verify_bundle(bundle).certification["verdict"] == "NOT CERTIFIED"


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def test_sigterm_stops_the_boot_proxy_control_plane_and_capture(
        make_lab: Callable[[Topology], Lab], tmp_path: Path) -> None:
    lab = make_lab(TOPOLOGY)
    proc, _ = _start_certify(lab, tmp_path, "52:54:00:ce:00:04", timeout=300)
    proc.wait_for_log(r"power on \S+ now", timeout=60)
    children = _children(proc.pid)
    names = {Path(f"/proc/{c}/comm").read_text().strip() for c in children}
    assert "tcpdump" in names and len(children) == 3, names  # proxy, control plane, tcpdump
    os.kill(proc.pid, signal.SIGTERM)  # the certify process only, not its group
    wait_until(lambda: not proc.running(), timeout=30, what="certify to stop",
               evidence=proc.log_tail)
    assert proc.returncode() == 130 and "interrupted" in proc.log_text()  # docs/CLI.md
    assert not [c for c in children if Path(f"/proc/{c}").exists()], "children left running"
