"""ProxyDHCP on a namespaced segment: the proxy process in one netns, scapy clients in another.

Checks the wire against CONFORMANCE.md: BIOS, UEFI x64 (offer then 4011 from port
4011), HTTPClient, iPXE, a foreign MAC (silence), a relayed request (reply at
giaddr:67) and the conflict watch. Needs root; everything is torn down in finally.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, parse
from bootproxy.dhcp.options import decode_boot_item, decode_suboptions

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (`ip`)"),
    pytest.mark.timeout(120),
]

PROXY_IP = "10.77.0.2"
CLIENT_IP = "10.77.0.50"
SERVED = {
    "bios": "52:54:00:f1:00:01",
    "uefi": "52:54:00:f1:00:02",
    "http": "52:54:00:f1:00:03",
    "ipxe": "52:54:00:f1:00:04",
    "relay": "52:54:00:f1:00:05",
}
FOREIGN = "52:54:00:f1:00:99"
UUID97 = "00" + "11223344556677889900aabbccddeeff"
PROBE = Path(__file__).with_name("probe.py")
REPO = Path(__file__).resolve().parents[3]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Lab:
    """Two namespaces joined by a veth pair and the proxy process; `close` undoes all of it."""

    def __init__(self, tmp: Path) -> None:
        suffix = secrets.token_hex(3)
        self.ns_proxy = f"fltest{suffix}p"
        self.ns_client = f"fltest{suffix}c"
        self.if_proxy = f"fltest{suffix}a"
        self.if_client = f"fltest{suffix}b"
        self.tmp = tmp
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self.stderr_path = tmp / "bootproxy.stderr"

    def build(self) -> None:
        ip("netns", "add", self.ns_proxy)
        ip("netns", "add", self.ns_client)
        ip("link", "add", self.if_proxy, "type", "veth", "peer", "name", self.if_client)
        ip("link", "set", self.if_proxy, "netns", self.ns_proxy)
        ip("link", "set", self.if_client, "netns", self.ns_client)
        for ns, ifname, addr in (
            (self.ns_proxy, self.if_proxy, PROXY_IP),
            (self.ns_client, self.if_client, CLIENT_IP),
        ):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            ip("-n", ns, "link", "set", ifname, "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def start_proxy(self) -> None:
        doc = {
            "revision": "1",
            "assignments": [
                {"mac": mac, "cluster": "c1", "hostname": f"n-{k}", "role": "worker",
                 "profile": "p"}
                for k, mac in SERVED.items()
            ],
        }
        assignments = self.tmp / "assignments.json"
        assignments.write_text(json.dumps(doc))
        argv = [
            "ip", "netns", "exec", self.ns_proxy, sys.executable, "-m", "bootproxy",
            "--name", "bp-sim", "--interfaces", self.if_proxy,
            "--assignments-file", str(assignments), "--cache-path", str(self.tmp / "cache.json"),
            "--metrics-host", PROXY_IP, "--metrics-port", "0", "--http-port", "8080",
            "--log-level", "debug",
        ]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self.stderr_path.open("w"), text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bootproxy exited {self.proc.returncode}: {self.log_tail()}")
            ready_fds, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready_fds:
                line = self.proc.stdout.readline()
                if line.strip():
                    self.ready = json.loads(line)
                    assert self.ready["event"] == "ready"
                    return
        raise TimeoutError(f"bootproxy not ready within 20 s: {self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.stderr_path.read_text().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def probe(self, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns_client, sys.executable, str(PROBE), self.if_client],
            input=json.dumps(actions), capture_output=True, text=True, timeout=60, cwd=REPO,
        )
        if out.returncode != 0:
            raise RuntimeError(f"probe failed: {out.stderr[-2000:]}\nproxy log:\n{self.log_tail()}")
        return json.loads(out.stdout)

    def close(self) -> None:
        errors: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for ns in (self.ns_proxy, self.ns_client):
            res = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if res.returncode != 0 and "No such file" not in res.stderr:
                errors.append(res.stderr)
        if errors:
            raise RuntimeError(f"teardown left something behind: {errors}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("bootproxy_dhcp"))
    try:
        lab.build()
        lab.start_proxy()
        yield lab
    finally:
        lab.close()


def pxe_options(arch: int, vendor: str | None = None, extra: list[list[str]] | None = None):
    vendor = vendor or f"PXEClient:Arch:{arch:05d}:UNDI:003016"
    return [
        [60, vendor.encode().hex()],
        [93, f"{arch:04x}"],
        [94, "010310"],
        [97, UUID97],
        *(extra or []),
    ]


def discover(mac: str, xid: int, arch: int, **kw: Any) -> dict[str, Any]:
    action: dict[str, Any] = {
        "kind": "broadcast", "mac": mac, "xid": xid, "msg": "discover",
        "options": pxe_options(arch, kw.pop("vendor", None), kw.pop("extra", None)),
    }
    action.update(kw)
    return action


def only_reply(result: dict[str, Any]) -> tuple[DhcpPacket, dict[str, Any]]:
    replies = result["replies"]
    assert len(replies) == 1, replies
    raw = bytes.fromhex(replies[0]["payload"])
    # Cross-check with an independent decoder.
    sc = BOOTP(raw)
    assert DHCP in sc and sc.op == 2
    return parse(raw), replies[0]


def check_offer(pkt: DhcpPacket, reply: dict[str, Any], mac: str) -> None:
    assert pkt.message_type == MessageType.OFFER
    assert pkt.mac == mac and pkt.yiaddr == "0.0.0.0"  # OFFER-1/2
    assert pkt.get(Opt.SERVER_ID) == bytes(int(x) for x in PROXY_IP.split("."))  # OFFER-4
    assert pkt.get(Opt.CLIENT_UUID) == bytes.fromhex(UUID97)  # OFFER-5
    assert reply["src"] == [PROXY_IP, 67]  # OFFER-10
    assert reply["dst"] == ["255.255.255.255", 68]
    assert len(bytes.fromhex(reply["payload"])) >= 300  # OFFER-11


def test_bios_offer(lab: Lab) -> None:
    [res] = lab.probe([discover(SERVED["bios"], 0x1001, 0)])
    pkt, reply = only_reply(res)
    check_offer(pkt, reply, SERVED["bios"])
    assert pkt.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert pkt.file == b"undionly.kpxe" and pkt.siaddr == PROXY_IP
    sub = dict(decode_suboptions(pkt.get(Opt.VENDOR_SPECIFIC) or b"", end_required=True))
    assert sub[6] == b"\x08"


def test_uefi_offer_then_4011_from_4011(lab: Lab) -> None:
    mac = SERVED["uefi"]
    boot_item = [43, "4704" + "00000000" + "ff"]
    offer_res, ack_res = lab.probe(
        [
            discover(mac, 0x2002, 7),
            {
                "kind": "unicast", "mac": mac, "xid": 0x2003, "msg": "request",
                "ciaddr": CLIENT_IP, "src": CLIENT_IP, "sport": 4011,
                "dst": PROXY_IP, "dport": 4011,
                "options": pxe_options(7, extra=[boot_item]),
            },
        ]
    )
    offer, reply = only_reply(offer_res)
    check_offer(offer, reply, mac)
    assert not offer.has(Opt.VENDOR_SPECIFIC) and offer.file == b""
    ack, ack_reply = only_reply(ack_res)
    assert ack.message_type == MessageType.ACK
    assert ack_reply["src"] == [PROXY_IP, 4011]  # ACK4011-1
    assert ack_reply["dst"] == [CLIENT_IP, 4011]
    assert ack.file == b"ipxe.efi" and ack.siaddr == PROXY_IP  # ACK4011-2
    assert ack.yiaddr == "0.0.0.0"  # ACK4011-3
    sub = dict(decode_suboptions(ack.get(Opt.VENDOR_SPECIFIC) or b"", end_required=True))
    assert decode_boot_item(sub[71]).type == 0  # ACK4011-4


def test_http_client(lab: Lab) -> None:
    mac = SERVED["http"]
    [res] = lab.probe([discover(mac, 0x3003, 16, vendor="HTTPClient:Arch:00016:UNDI:003001")])
    pkt, reply = only_reply(res)
    check_offer(pkt, reply, mac)
    assert pkt.get(Opt.VENDOR_CLASS) == b"HTTPClient"
    assert pkt.file == f"http://{PROXY_IP}:8080/ipxe.efi".encode()


def test_ipxe_gets_script_url(lab: Lab) -> None:
    mac = SERVED["ipxe"]
    [res] = lab.probe([discover(mac, 0x4004, 0, extra=[[77, b"iPXE".hex()]])])
    pkt, reply = only_reply(res)
    check_offer(pkt, reply, mac)
    assert pkt.file == f"http://{PROXY_IP}:8080/boot/{mac}.ipxe".encode()


def test_foreign_mac_gets_nothing(lab: Lab) -> None:
    results = lab.probe(
        [
            discover(FOREIGN, 0x5005, 0, wait=2.0, expect_reply=False),
            {
                "kind": "unicast", "mac": FOREIGN, "xid": 0x5006, "msg": "request",
                "ciaddr": CLIENT_IP, "src": CLIENT_IP, "sport": 4011,
                "dst": PROXY_IP, "dport": 4011, "options": pxe_options(7),
                "wait": 2.0, "expect_reply": False,
            },
        ]
    )
    assert [r["replies"] for r in results] == [[], []]  # SILENT-5


def test_relayed_request_answered_at_giaddr(lab: Lab) -> None:
    mac = SERVED["relay"]
    relay82 = "0104" + b"eth7".hex() + "0203" + b"sw1".hex()
    [res] = lab.probe(
        [
            {
                "kind": "unicast", "mac": mac, "xid": 0x6006, "msg": "discover",
                "giaddr": CLIENT_IP, "src": CLIENT_IP, "sport": 67,
                "dst": PROXY_IP, "dport": 67,
                "options": pxe_options(0, extra=[[82, relay82]]),
            }
        ]
    )
    pkt, reply = only_reply(res)
    assert reply["dst"] == [CLIENT_IP, 67]  # RELAY-1
    assert pkt.giaddr == CLIENT_IP and pkt.broadcast
    assert pkt.options[-1] == (Opt.RELAY_AGENT, bytes.fromhex(relay82))  # RELAY-3
    assert pkt.file == b"undionly.kpxe"


def test_conflict_watch_counts_foreign_proxy_offer(lab: Lab) -> None:
    url = f"http://{PROXY_IP}:{lab.ready['metrics_port']}/metrics"
    foreign_offer = {
        "kind": "broadcast", "mac": SERVED["bios"], "xid": 0x7007, "msg": "offer", "op": 2,
        "src": "10.77.0.9", "sport": 67, "dport": 68, "wait": 0.5, "expect_reply": False,
        "options": [[54, "0a4d0009"], [60, b"PXEClient".hex()]],
    }
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        [_, metrics] = lab.probe([foreign_offer, {"kind": "metrics", "url": url}])
        text = metrics["text"]
        if any(
            line.startswith("bootproxy_conflicts_total{") and not line.endswith(" 0")
            for line in text.splitlines()
        ):
            return
    raise AssertionError(f"no conflict counted:\n{text}\n{lab.log_tail()}")
