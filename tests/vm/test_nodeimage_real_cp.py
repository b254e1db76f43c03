"""The node image against the real mocked Control Plane (controlplane/), end to end.

The Control Plane runs in the test namespace with a seed (cluster, profile,
proxy, machine); the test fetches the machine's boot data as the proxy would,
boots the VM with exactly that cmdline, and checks the machine ends Ready.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from vmhelpers import (
    CP_URL,
    agent_lines,
    boot_node_image,
    needs_root_qemu,
    node_net,
    ns_json,
    wait_for_text,
)

from nodeimage import build_image

pytestmark = [pytest.mark.vm, needs_root_qemu]

REPO = Path(__file__).resolve().parents[2]
MAC = "52:54:00:7e:02:01"
ADMIN = "admin-token-for-vm-tests"
PROXY = "proxy-token-for-vm-tests-0001"


def test_node_registers_and_becomes_ready(tmp_path: Path) -> None:
    image = build_image()
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
    with node_net(tmp_path, stub_cp=False) as net:
        cp_log = tmp_path / "controlplane.log"
        cp = subprocess.Popen(
            ["ip", "netns", "exec", net.netns, sys.executable, "-m", "controlplane",
             "--listen", "10.77.0.1:8080", "--db", str(tmp_path / "cp.sqlite3"),
             "--admin-token", ADMIN, "--seed", str(tmp_path / "seed.json"),
             "--public-url", CP_URL, "--lab", "fltest"],
            cwd=REPO, stdout=cp_log.open("wb"), stderr=subprocess.STDOUT)
        try:
            wait_for_text(cp_log, '"ready"', 30, cp)
            status, boot = ns_json(net.netns, "GET", f"{CP_URL}/api/v1/machines/{MAC}/boot",
                                   PROXY)
            assert status == 200, boot
            cmdline = str(boot["cmdline"])
            assert f"flexlab.token={boot['join_token']}" in cmdline
            console = boot_node_image(
                image.kernel, image.initrd, tmp_path / "boot.log",
                append=cmdline.replace("console=ttyS0 panic=-1 ", ""), disk=disk,
                nic_args=["-netdev", f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                          "-device", f"virtio-net-pci,netdev=n0,mac={MAC}"],
                netns=net.netns, memory_mib=3584)
            status, machine = ns_json(net.netns, "GET", f"{CP_URL}/api/v1/machines/{MAC}",
                                      ADMIN)
        finally:
            cp.terminate()
            cp.wait(timeout=15)
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
