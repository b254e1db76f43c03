"""The node image against the real mocked Control Plane (controlplane/), end to end.

The Control Plane runs in the test namespace with a seed (cluster, profile,
proxy, machine); the test fetches the machine's boot data as the proxy would,
boots the VM with exactly that cmdline, and checks the machine ends Ready.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmhelpers import (
    CP_URL,
    NodeNet,
    agent_lines,
    boot_node_image,
    needs_qemu,
    node_net,
    ns_json,
    wait_for_text,
)

from nodeimage import BuildResult, build_image, initrd_with_ca

pytestmark = [pytest.mark.vm, needs_qemu]

REPO = Path(__file__).resolve().parents[2]
MAC = "52:54:00:7e:02:01"
ADMIN = "admin-token-for-vm-tests"
PROXY = "proxy-token-for-vm-tests-0001"


def _disk_and_seed(tmp_path: Path, image: BuildResult) -> Path:
    """A blank 12 GB data disk, and ``seed.json`` for the Control Plane: one standalone
    cluster, the node image as its boot profile, proxy bp1 and the machine ``MAC``."""
    disk = tmp_path / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "12G"], check=True)
    seed = {
        "clusters": [{"name": "c1", "mode": "standalone", "expected_nodes": 1,
                      "environment": "test"}],
        "artifacts": {"vmlinuz": str(image.kernel), "initrd.img": str(image.initrd)},
        "profiles": [{"name": "node", "kernel": "vmlinuz", "initrd": "initrd.img",
                      "cmdline": "console=ttyS0 panic=-1 flexlab.poweroff=1 "
                                 "flexlab.timeurl={cp_url}/api/v1/time "
                                 "flexlab.cp={cp_url} flexlab.token={join_token} "
                                 "flexlab.mac={mac}"}],
        "proxies": [{"name": "bp1", "segments": ["s1"], "clusters": ["c1"], "token": PROXY}],
        "machines": [{"mac": MAC, "cluster": "c1", "role": "worker", "hostname": "n1",
                      "profile": "node"}],
    }
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    return disk


@contextlib.contextmanager
def _control_plane(net: NodeNet, tmp_path: Path, listen: str, url: str,
                   *extra: str) -> Iterator[None]:
    """The real Control Plane in the test namespace, loaded with ``seed.json``, from its
    ready line until the block ends."""
    cp_log = tmp_path / "controlplane.log"
    cp = subprocess.Popen(
        ["ip", "netns", "exec", net.netns, sys.executable, "-m", "controlplane",
         "--listen", listen, "--db", str(tmp_path / "cp.sqlite3"),
         "--admin-token", ADMIN, "--seed", str(tmp_path / "seed.json"),
         "--public-url", url, "--lab", "fltest", *extra],
        cwd=REPO, stdout=cp_log.open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_text(cp_log, '"ready"', 30, cp)
        yield
    finally:
        cp.terminate()
        cp.wait(timeout=15)


def _boot(net: NodeNet, tmp_path: Path, kernel: Path, initrd: Path, cmdline: str,
          disk: Path) -> str:
    """Boot the node image on the namespace's tap with the Control Plane's ``cmdline``
    (its console and panic arguments are the direct boot's own); return the console."""
    return boot_node_image(
        kernel, initrd, tmp_path / "boot.log",
        append=cmdline.replace("console=ttyS0 panic=-1 ", ""), disk=disk,
        nic_args=["-netdev", f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                  "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"],
        netns=net.netns, memory_mib=3584)


def test_node_registers_and_becomes_ready(tmp_path: Path) -> None:
    image = build_image()
    disk = _disk_and_seed(tmp_path, image)
    with (node_net(tmp_path, stub_cp=False) as net,
          _control_plane(net, tmp_path, "10.77.0.1:8080", CP_URL)):
        status, boot = ns_json(net.netns, "GET", f"{CP_URL}/api/v1/machines/{MAC}/boot",
                               PROXY)
        assert status == 200, boot
        cmdline = str(boot["cmdline"])
        assert f"flexlab.token={boot['join_token']}" in cmdline
        console = _boot(net, tmp_path, image.kernel, image.initrd, cmdline, disk)
        status, machine = ns_json(net.netns, "GET", f"{CP_URL}/api/v1/machines/{MAC}",
                                  ADMIN)
    lines = agent_lines(console)
    assert "FLEXLAB-AGENT: registered state=Registered" in lines, "\n".join(lines)
    assert "FLEXLAB-AGENT: ready ok" in lines, lines
    assert any(x.startswith("FLEXLAB-AGENT: timesync ") and x.endswith(" ok") for x in lines)
    clock = next(x for x in lines if x.startswith("FLEXLAB-AGENT: clock "))
    skew = float(clock.split("skew=")[1].split()[0])
    assert abs(skew) < 0.5, f"time sync left the clock {skew} s off"
    assert status == 200 and machine["state"] == "Ready", machine
    facts = machine["facts"]
    assert isinstance(facts, dict) and facts["memory_bytes"] >= 3 * 10**9


# How far a TCG guest's clock rate may be from the host's after the kernel calibrates its
# clocksource on a host whose cores are shared with other test workers (fraction). With
# Debian's kernel CI measured +5.087 s for +5 s; with the node kernel built here (100 Hz,
# jiffies until the HPET takes over at ~1.5 s of guest time) a vm-tier run on 2 workers
# measured +5.223 s after a 9.2-s boot, error bound 0.037 s: 2.0 % of the boot. 3 % still
# tells +5 s from 0 and from +10 s for any boot under a minute.
TCG_CLOCK_RATE_ERROR = 0.03


def test_a_clock_really_off_is_rejected_with_what_the_node_measured(tmp_path: Path) -> None:
    """No time sync (the cmdline without flexlab.timeurl, no option 42) and the VM's RTC
    5 s ahead: the agent's two-way measurement against the Control Plane's time says so,
    and the Control Plane rejects the clock with that offset and its error bound (the
    fallback that no longer counts a slow guest's request time must still catch this)."""
    image = build_image()
    disk = _disk_and_seed(tmp_path, image)
    ahead = 5
    with (node_net(tmp_path, stub_cp=False) as net,
          _control_plane(net, tmp_path, "10.77.0.1:8080", CP_URL)):
        status, boot = ns_json(net.netns, "GET", f"{CP_URL}/api/v1/machines/{MAC}/boot",
                               PROXY)
        assert status == 200, boot
        cmdline = str(boot["cmdline"]).replace(f"flexlab.timeurl={CP_URL}/api/v1/time ", "")
        assert "flexlab.timeurl" not in cmdline
        started = time.monotonic()
        rtc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + ahead))
        console = boot_node_image(
            image.kernel, image.initrd, tmp_path / "boot.log",
            append=cmdline.replace("console=ttyS0 panic=-1 ", ""), disk=disk,
            nic_args=["-netdev", f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                      "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"],
            netns=net.netns, memory_mib=3584, extra_args=["-rtc", f"base={rtc}"])
        booted_s = time.monotonic() - started
        status, machine = ns_json(net.netns, "GET", f"{CP_URL}/api/v1/machines/{MAC}",
                                  ADMIN)
    lines = agent_lines(console)
    assert not any(x.startswith("FLEXLAB-AGENT: timesync ") for x in lines), lines
    assert status == 200 and machine["state"] == "Rejected", (machine, lines)
    facts = machine["facts"]
    assert facts["clock_source"] == "http", facts
    offset, error = facts["clock_offset_s"], facts["clock_error_s"]
    # whole seconds twice (the base given to QEMU, the RTC the kernel reads at boot):
    # the guest's clock starts up to 2 s short of `ahead`. After that it runs at the rate
    # the kernel calibrated under TCG, which on a loaded host is off by up to about 1 %
    # (CI measured +5.087 s against +5 +/- 0.067 s), so the bound widens by that rate
    # over the boot; an offset near 0 or twice `ahead` still fails.
    drift = TCG_CLOCK_RATE_ERROR * booted_s
    assert ahead - 2 - error - drift <= offset <= ahead + error + drift, (facts, booted_s)
    assert machine["reasons"] == [
        f"clock offset {offset:+.3f} s +/- {error:.3f} s from the Control Plane's time "
        f"(two-way HTTP to {CP_URL}/api/v1/time) exceeds 1 s"], machine
    assert "FLEXLAB-AGENT: registered state=Rejected" in " ".join(lines)


_NS_BOOT = """
import sys
from controlplane.client import ControlPlaneClient
url, token, mac, ca = sys.argv[1:5]
with ControlPlaneClient(url, token, verify=ca if ca != "-" else False) as cp:
    print(cp.boot(mac).model_dump_json())
"""


@pytest.mark.parametrize("fault", [None, "wrong-ca"])
def test_node_verifies_the_cp_certificate_with_the_ca_from_the_boot(
    tmp_path: Path, fault: str | None,
) -> None:
    """HTTPS Control Plane; the CA arrives as a second initrd (what the Boot Proxy serves).

    With the lab's certificate the node registers and is Ready; with a certificate
    from another CA it refuses before sending its token, and says why.
    """
    image = build_image()
    disk = _disk_and_seed(tmp_path, image)
    url = "https://10.77.0.1:8443"
    pki = tmp_path / "pki"
    with (node_net(tmp_path, stub_cp=False) as net,
          _control_plane(net, tmp_path, "10.77.0.1:8443", url, "--tls-dir", str(pki),
                         *(["--tls-fault", fault] if fault else []))):
        # The test plays the Boot Proxy; under a fault it must not verify to get the data.
        got = subprocess.run(
            ["ip", "netns", "exec", net.netns, sys.executable, "-c", _NS_BOOT, url, PROXY,
             MAC, "-" if fault else str(pki / "ca.pem")],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
        cmdline = str(json.loads(got.stdout)["cmdline"])
        initrd = initrd_with_ca(image.initrd, pki / "ca.pem", tmp_path / "initrd-ca.img")
        console = _boot(net, tmp_path, image.kernel, initrd, cmdline, disk)
        got = subprocess.run(
            ["ip", "netns", "exec", net.netns, sys.executable, "-c",
             "import sys\nfrom controlplane.client import ControlPlaneClient\n"
             "with ControlPlaneClient(sys.argv[1], sys.argv[2], verify=False) as cp:\n"
             "    print(cp.get_machine(sys.argv[3]).model_dump_json())", url, ADMIN, MAC],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
        machine = json.loads(got.stdout)
    lines = agent_lines(console)
    assert any(x.startswith("FLEXLAB-AGENT: tls ca=/flexlab/cp-ca.pem sha256=") for x in lines)
    if fault is None:
        assert "FLEXLAB-AGENT: registered state=Registered" in lines, "\n".join(lines)
        assert "FLEXLAB-AGENT: ready ok" in lines, lines
        assert machine["state"] == "Ready", machine
    else:
        assert any(x.startswith("FLEXLAB-AGENT: tls refused reason=unknown-ca ")
                   for x in lines), "\n".join(lines)
        assert "FLEXLAB-AGENT: registered state=refused reason=tls-unknown-ca" in lines, lines
        assert "FLEXLAB-AGENT: done result=failed" in lines
        assert machine["state"] not in ("Registered", "Ready"), machine
