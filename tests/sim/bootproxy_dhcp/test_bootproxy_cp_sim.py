"""The Boot Proxy with the real Control Plane mock, both in the proxy namespace.

A machine assigned at the Control Plane is served within seconds (long-poll),
an iPXE client gets its per-machine script over HTTP (the machine turns Booting),
a foreign MAC's script is refused, and so is the client's own script asked for from an
address that is not the client's; a conflicting ProxyDHCP offer is reported to the
Control Plane. Each test stands alone (any order, any subset): the one that times the
assignment uses a MAC of its own, the others assign the client through ``served_client``.
Needs root; torn down in finally.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bp_sim_lab import PROXY_IP, PROXY_IP2, InNetns, Lab, discover, only_reply

from bootproxy.dhcp.codec import MessageType
from controlplane.client import ControlPlaneClient as AdminClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = [
    pytest.mark.sim,
    pytest.mark.needs_root,
    pytest.mark.needs_binary("ip", how="apt-get install iproute2"),
    pytest.mark.timeout(180),
]

ADMIN = "admin-" + secrets.token_hex(8)
CLIENT_MAC = "52:54:00:f2:00:01"  # the client veth's own MAC, so ARP maps its IP to it
TIMED_MAC = "52:54:00:f2:00:02"  # assigned only by the test that times the assignment
FOREIGN = "52:54:00:f2:00:99"
PROXY = "bp-sim"


class CpLab:
    """The two-namespace lab plus a Control Plane process inside the proxy namespace."""

    def __init__(self, tmp: Path) -> None:
        self.lab = Lab(tmp)
        self.tmp = tmp
        self.netns: InNetns | None = None
        self.cp: ControlPlaneProcess | None = None
        self.admin: AdminClient | None = None
        self.site: dict[str, str] = {}

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an admin call from inside the proxy namespace (where the CP listens)."""
        assert self.netns is not None
        return self.netns.run(fn, *args, **kwargs)

    def start(self) -> None:
        self.lab.build(client_mac=CLIENT_MAC)
        self.netns = InNetns(self.lab.ns_proxy)
        self.cp = ControlPlaneProcess(self.tmp / "cp.sqlite3", ADMIN, listen="127.0.0.1:0")
        self.call(self.cp.start)
        url = self.call(self.cp.wait_ready)
        self.admin = self.call(AdminClient, url, ADMIN)
        cluster = "c-sim"
        self.call(self.admin.create_cluster, cluster, 2)
        self.call(self.admin.upload_artifact, "vmlinuz", b"kernel")
        self.call(self.admin.upload_artifact, "initrd.img", b"initrd")
        self.call(self.admin.create_profile, "p-sim", "vmlinuz", "initrd.img",
                  "console=ttyS0 flexlab.join={join_token}")
        token = self.call(self.admin.register_proxy, PROXY, [cluster], ["seg0"])
        self.site = {"cluster": cluster, "profile": "p-sim"}
        root = self.tmp / "bootroot"
        root.mkdir()
        (root / "undionly.kpxe").write_bytes(b"U" * 4096)
        (root / "ipxe.efi").write_bytes(b"E" * 4096)
        self.lab.start_proxy(
            extra=["--cp-url", url, "--boot-root", str(root), "--tftp-port", "69",
                   "--longpoll-wait", "20", "--heartbeat-interval", "1"],
            env={"FLEXLAB_BP_CP_TOKEN": token},
        )

    def close(self) -> None:
        try:
            if self.admin is not None:
                self.call(self.admin.close)
            if self.cp is not None:
                self.call(self.cp.stop)
        finally:
            if self.netns is not None:
                self.netns.close()
            self.lab.close()


@pytest.fixture(scope="module")
def cplab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CpLab]:
    env = CpLab(tmp_path_factory.mktemp("bootproxy_cp"))
    try:
        env.start()
        yield env
    finally:
        env.close()


def _first_offer(cplab: CpLab, mac: str, xid: int, within: float) -> Any:
    """Probe with DISCOVERs from ``mac`` until the proxy offers (the offer), failing with the
    proxy's log after ``within`` seconds."""
    started = time.monotonic()
    while True:
        xid += 1
        [res] = cplab.lab.probe([discover(mac, xid, 0, wait=1.0)])
        if res["replies"]:
            return res
        assert time.monotonic() - started < within, cplab.lab.log_tail()


@pytest.fixture
def served_client(cplab: CpLab) -> str:
    """CLIENT_MAC assigned at the Control Plane (once per lab, whichever test comes first)
    and already offered to by the proxy; its MAC."""
    assert cplab.admin is not None
    if not any(m.mac == CLIENT_MAC for m in cplab.call(cplab.admin.machines)):
        cplab.call(cplab.admin.create_machine, CLIENT_MAC, cplab.site["cluster"], "n-sim",
                   cplab.site["profile"])
    _first_offer(cplab, CLIENT_MAC, 0x8400, within=10)
    return CLIENT_MAC


def test_machine_assigned_at_cp_is_served_within_seconds(cplab: CpLab) -> None:
    [res] = cplab.lab.probe([discover(TIMED_MAC, 0x8001, 0, wait=1.0, expect_reply=False)])
    assert res["replies"] == []  # SILENT-5 before the assignment
    assert cplab.admin is not None
    cplab.call(cplab.admin.create_machine, TIMED_MAC, cplab.site["cluster"], "n-timed",
               cplab.site["profile"])
    assigned = time.monotonic()
    res = _first_offer(cplab, TIMED_MAC, 0x8100, within=10)
    print(f"assignment to first offer: {time.monotonic() - assigned:.2f} s")
    pkt, _ = only_reply(res)
    assert pkt.message_type == MessageType.OFFER and pkt.file == b"undionly.kpxe"


def test_ipxe_script_over_http(cplab: CpLab, served_client: str) -> None:
    assert cplab.admin is not None
    before = cplab.call(cplab.admin.get_machine, CLIENT_MAC).state
    # The client's own script, asked for from the second segment (source CLIENT_IP2, whose
    # MAC is not served): the proxy maps the source address to its MAC and refuses, and the
    # Control Plane hears nothing of it.
    [elsewhere] = cplab.lab.probe(
        [{"kind": "http", "url": f"http://{PROXY_IP2}:8080/boot/{CLIENT_MAC}.ipxe"}])
    assert elsewhere["status"] == 404, elsewhere
    assert cplab.call(cplab.admin.get_machine, CLIENT_MAC).state == before
    res, = cplab.lab.probe([discover(CLIENT_MAC, 0x8201, 0, extra=[[77, b"iPXE".hex()]])])
    pkt, _ = only_reply(res)
    url = pkt.file.decode()
    assert url == f"http://{PROXY_IP}:8080/boot/{CLIENT_MAC}.ipxe"
    script, foreign = cplab.lab.probe(
        [
            {"kind": "http", "url": url},
            {"kind": "http", "url": f"http://{PROXY_IP}:8080/boot/{FOREIGN}.ipxe"},
        ]
    )
    assert script["status"] == 200, script
    assert script["body"].startswith("#!ipxe") and "flexlab.join=" in script["body"]
    assert foreign["status"] == 404  # SILENT-5
    machine = cplab.call(cplab.admin.get_machine, CLIENT_MAC)
    assert machine.state == "Booting"


def test_conflict_reported_to_cp(cplab: CpLab, served_client: str) -> None:
    assert cplab.admin is not None
    foreign_offer = {
        "kind": "broadcast", "mac": CLIENT_MAC, "xid": 0x8301, "msg": "offer", "op": 2,
        "src": "10.77.0.9", "sport": 67, "dport": 68, "wait": 0.3, "expect_reply": False,
        "options": [[54, "0a4d0009"], [60, b"PXEClient".hex()]],
    }
    cplab.lab.probe([foreign_offer])
    deadline = time.monotonic() + 10
    while True:
        reports = [c for c in cplab.call(cplab.admin.conflicts) if c.mac == CLIENT_MAC]
        if reports:
            break
        assert time.monotonic() < deadline, cplab.lab.log_tail()
        time.sleep(0.1)
    assert reports[0].proxy == PROXY and reports[0].other_server == "10.77.0.9"
