"""The UDP listener and the conflict watch on loopback (unprivileged ports, no device binding)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from bootproxy.conflicts import ConflictWatch
from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.dhcp.responder import ResponderConfig
from bootproxy.dhcp.server import DhcpListener
from bootproxy.metrics import Registry

pytestmark = pytest.mark.unit

MAC = "52:54:00:aa:bb:cc"


def pxe_request(msg: int, mac: str = MAC, **fields: Any) -> bytes:
    pkt = DhcpPacket(
        xid=0xABCD,
        chaddr=bytes.fromhex(mac.replace(":", "")),
        options=[
            (Opt.MESSAGE_TYPE, bytes((msg,))),
            (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003016"),
            (Opt.CLIENT_ARCH, b"\x00\x07"),
        ],
    )
    for key, value in fields.items():
        setattr(pkt, key, value)
    return encode(pkt)


async def wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_4011_listener_answers_source_and_counts_drops() -> None:
    async def body() -> None:
        registry = Registry()
        listener = DhcpListener(
            iface="lo", port=0, role=4011, server_addr="127.0.0.1",
            config=ResponderConfig(), served=lambda mac: mac == MAC, registry=registry,
            bind_host="127.0.0.1", bind_device=False,
        )
        await listener.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            client.sendto(pxe_request(MessageType.REQUEST), ("127.0.0.1", listener.port))
            data = await asyncio.wait_for(loop.sock_recv(client, 2048), 5)
            ack = parse(data)
            assert ack.message_type == MessageType.ACK and ack.file == b"ipxe.efi"
            assert ack.xid == 0xABCD
            client.sendto(b"junk", ("127.0.0.1", listener.port))
            client.sendto(
                pxe_request(MessageType.REQUEST, "52:54:00:00:00:09"),
                ("127.0.0.1", listener.port),
            )
            await wait_for(
                lambda: registry.total("bootproxy_dhcp_drops_total") == 2
            )
            assert registry.value(
                "bootproxy_dhcp_drops_total", reason="unknown_mac", interface="lo"
            ) == 1
            assert registry.value(
                "bootproxy_dhcp_drops_total", reason="malformed_packet", interface="lo"
            ) == 1
            assert registry.value("bootproxy_dhcp_acks_total", interface="lo") == 1
        finally:
            client.close()
            listener.close()

    asyncio.run(body())


def test_reply_delay_is_applied() -> None:
    async def body() -> None:
        listener = DhcpListener(
            iface="lo", port=0, role=4011, server_addr="127.0.0.1",
            config=ResponderConfig(reply_delay=0.3), served=lambda mac: True,
            registry=Registry(), bind_host="127.0.0.1", bind_device=False,
        )
        await listener.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        try:
            started = time.monotonic()
            client.sendto(pxe_request(MessageType.REQUEST), ("127.0.0.1", listener.port))
            await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 2048), 5)
            assert time.monotonic() - started >= 0.3
        finally:
            client.close()
            listener.close()

    asyncio.run(body())


def foreign_offer(server: str, mac: str = MAC, yiaddr: str = "0.0.0.0") -> bytes:
    return encode(
        DhcpPacket(
            op=2,
            xid=1,
            yiaddr=yiaddr,
            chaddr=bytes.fromhex(mac.replace(":", "")),
            options=[
                (Opt.MESSAGE_TYPE, bytes((MessageType.OFFER,))),
                (Opt.SERVER_ID, socket.inet_aton(server)),
                (Opt.VENDOR_CLASS, b"PXEClient"),
            ],
        )
    )


def test_conflict_watch_reports_foreign_proxy_offer_once() -> None:
    async def body() -> None:
        registry = Registry()
        reports: list[dict[str, Any]] = []

        async def report(doc: dict[str, Any]) -> int:
            reports.append(doc)
            return 200

        watch = ConflictWatch(
            iface="lo", own_addresses={"10.0.0.1"}, served=lambda mac: mac == MAC,
            registry=registry, report=report, port=0, bind_device=False,
        )
        await watch.start()
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            target = ("127.0.0.1", watch.port)
            sender.sendto(foreign_offer("10.0.0.1"), target)  # our own: ignored
            sender.sendto(foreign_offer("10.0.0.7", "52:54:00:00:00:09"), target)  # not ours
            sender.sendto(foreign_offer("10.0.0.8", yiaddr="10.0.0.50"), target)  # site DHCP
            sender.sendto(foreign_offer("10.0.0.7"), target)  # conflict
            sender.sendto(foreign_offer("10.0.0.7"), target)  # retransmission
            await wait_for(lambda: registry.total("bootproxy_conflicts_total") == 2)
            await wait_for(lambda: len(reports) == 1)
            assert reports[0]["mac"] == MAC and reports[0]["other_server"] == "10.0.0.7"
            assert reports[0]["segment"] == "lo" and reports[0]["seen_at"]
        finally:
            sender.close()
            watch.close()

    asyncio.run(body())
