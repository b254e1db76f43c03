"""An ARM64 DISCOVER from a served MAC: no answer (never an x86 file), one report to the
Control Plane, none for a MAC the proxy does not serve or an architecture it has a file for.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from bootproxy.archreport import ArchReporter
from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode
from bootproxy.dhcp.responder import ResponderConfig
from bootproxy.dhcp.server import DhcpListener
from bootproxy.metrics import Registry

pytestmark = pytest.mark.unit

ARM = "52:54:00:aa:00:11"
X64 = "52:54:00:aa:00:07"
STRANGER = "52:54:00:aa:00:99"


def discover(mac: str, arch: int) -> bytes:
    return encode(DhcpPacket(
        xid=0x1234, chaddr=bytes.fromhex(mac.replace(":", "")),
        options=[(Opt.MESSAGE_TYPE, bytes((MessageType.DISCOVER,))),
                 (Opt.VENDOR_CLASS, f"PXEClient:Arch:{arch:05d}:UNDI:003000".encode()),
                 (Opt.CLIENT_ARCH, arch.to_bytes(2, "big"))]))


def test_arm64_discover_is_not_answered_and_reported_once() -> None:
    reports: list[tuple[str, int, str]] = []

    async def report(mac: str, arch: int, segment: str) -> int:
        reports.append((mac, arch, segment))
        return 200

    async def body() -> None:
        registry = Registry()
        reporter = ArchReporter(report)
        listener = DhcpListener(
            iface="lo", port=0, role=67, server_addr="127.0.0.1", config=ResponderConfig(),
            served=lambda mac: mac in (ARM, X64), registry=registry,
            bind_host="127.0.0.1", bind_device=False, unsupported_arch=reporter.seen)
        await listener.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        try:
            for _ in range(3):   # the firmware retransmits: one report
                client.sendto(discover(ARM, 11), ("127.0.0.1", listener.port))
            client.sendto(discover(STRANGER, 11), ("127.0.0.1", listener.port))
            deadline = time.monotonic() + 5
            while registry.total("bootproxy_dhcp_drops_total") < 4:
                assert time.monotonic() < deadline, "the listener did not see every DISCOVER"
                await asyncio.sleep(0.01)
            assert registry.value("bootproxy_dhcp_drops_total", reason="unsupported_arch",
                                  interface="lo") == 3
            # an x86-64 UEFI DISCOVER from a served MAC is answered (broadcast), not reported
            client.sendto(discover(X64, 7), ("127.0.0.1", listener.port))
            while registry.total("bootproxy_dhcp_received_total") < 5:
                assert time.monotonic() < deadline, "the listener did not see the DISCOVER"
                await asyncio.sleep(0.01)
            assert registry.total("bootproxy_dhcp_drops_total") == 4 or registry.value(
                "bootproxy_dhcp_drops_total", reason="send_failed", interface="lo") == 1
            await reporter.settled()
        finally:
            client.close()
            listener.close()
        assert reports == [(ARM, 11, "lo")]

    asyncio.run(body())


def test_failed_report_is_retried_on_the_next_discover() -> None:
    calls: list[str] = []

    async def report(mac: str, arch: int, segment: str) -> int:
        calls.append(mac)
        return 503 if len(calls) == 1 else 200

    async def body() -> None:
        reporter = ArchReporter(report)
        for _ in range(3):
            reporter.seen(ARM, 11, "eth0")
            await asyncio.sleep(0.01)
        assert calls == [ARM, ARM]     # 503, then reported; the third is a repeat

    asyncio.run(body())
