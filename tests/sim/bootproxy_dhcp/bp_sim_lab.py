"""Shared pieces of the Boot Proxy sim tests: the two-namespace lab, the probe runner, packets.

Not a test module: the lab builds namespaces `fltest<hex>p` (proxy) and
`fltest<hex>c` (client) joined by a veth pair and removes them in `close()`.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from scapy.layers.dhcp import BOOTP, DHCP

from bootproxy.dhcp.codec import DhcpPacket, parse
from harness.components.bootproxy_process import BootProxyProcess

T = TypeVar("T")
_CLONE_NEWNET = 0x40000000

PROXY_IP = "10.77.0.2"
CLIENT_IP = "10.77.0.50"
# A second segment, to check one proxy serving two interfaces answers with each one's address.
PROXY_IP2 = "10.78.0.2"
CLIENT_IP2 = "10.78.0.50"
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
        self.if_proxy2 = f"fltest{suffix}x"
        self.if_client2 = f"fltest{suffix}y"
        self.tmp = tmp
        self.proc: BootProxyProcess | None = None
        self.ready: dict[str, Any] = {}
        self.stderr_path = tmp / "bootproxy.stderr"

    def build(self, client_mac: str | None = None) -> None:
        """Create both namespaces and the veth pair; `client_mac` sets the client end's MAC."""
        ip("netns", "add", self.ns_proxy)
        ip("netns", "add", self.ns_client)
        ip("link", "add", self.if_proxy, "type", "veth", "peer", "name", self.if_client)
        ip("link", "set", self.if_proxy, "netns", self.ns_proxy)
        if client_mac:
            ip("link", "set", self.if_client, "address", client_mac)
        ip("link", "set", self.if_client, "netns", self.ns_client)
        ip("link", "add", self.if_proxy2, "type", "veth", "peer", "name", self.if_client2)
        ip("link", "set", self.if_proxy2, "netns", self.ns_proxy)
        ip("link", "set", self.if_client2, "netns", self.ns_client)
        for ns, ifname, addr in (
            (self.ns_proxy, self.if_proxy, PROXY_IP),
            (self.ns_client, self.if_client, CLIENT_IP),
            (self.ns_proxy, self.if_proxy2, PROXY_IP2),
            (self.ns_client, self.if_client2, CLIENT_IP2),
        ):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", ifname)
            ip("-n", ns, "link", "set", ifname, "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def start_proxy(self, extra: list[str] | None = None,
                    env: dict[str, str] | None = None) -> None:
        """Run `python -m bootproxy` in the proxy namespace and wait for its ready line.

        Without `extra` it serves the static SERVED table from a file.
        """
        if extra is None:
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
            extra = ["--assignments-file", str(assignments)]
        args = [
            "--name", "bp-sim", "--interfaces", f"{self.if_proxy},{self.if_proxy2}",
            "--cache-path", str(self.tmp / "cache.json"),
            "--metrics-host", PROXY_IP, "--metrics-port", "0", "--http-port", "8080",
            "--log-level", "debug", *extra,
        ]
        self.proc = BootProxyProcess(
            args, self.stderr_path, netns=self.ns_proxy, env=env, cwd=REPO,
        )
        self.proc.start()
        self.ready = self.proc.wait_ready(20)

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.stderr_path.read_text().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def probe(
        self, actions: list[dict[str, Any]], iface: str | None = None
    ) -> list[dict[str, Any]]:
        """Run the probe in the client namespace on `iface` (default: the first segment)."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.ns_client, sys.executable, str(PROBE),
             iface or self.if_client],
            input=json.dumps(actions), capture_output=True, text=True, timeout=60, cwd=REPO,
        )
        if out.returncode != 0:
            raise RuntimeError(f"probe failed: {out.stderr[-2000:]}\nproxy log:\n{self.log_tail()}")
        return json.loads(out.stdout)

    def close(self) -> None:
        errors: list[str] = []
        if self.proc is not None:
            self.proc.stop()
        for ns in (self.ns_proxy, self.ns_client):
            res = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True)
            if res.returncode != 0 and "No such file" not in res.stderr:
                errors.append(res.stderr)
        if errors:
            raise RuntimeError(f"teardown left something behind: {errors}")


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



class InNetns:
    """Run calls on one worker thread that has entered a network namespace (setns is per
    thread), so httpx clients and child processes started there live in that namespace."""

    def __init__(self, ns: str) -> None:
        self.pool = ThreadPoolExecutor(1, initializer=self._enter, initargs=(ns,))

    @staticmethod
    def _enter(ns: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
        finally:
            os.close(fd)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.pool.submit(fn, *args, **kwargs).result(timeout=60)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
