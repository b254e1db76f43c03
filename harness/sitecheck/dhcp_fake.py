"""A fake LAN for the DHCP probes' unit tests: scripted servers, a virtual clock, no sockets.

:class:`FakeLan` is a :class:`~harness.sitecheck.dhcp_link.FrameLink`: every frame the
probe sends is parsed and handed to the scripted servers, whose reply frames are queued
for ``receive``. Time is virtual (``clock``), so a 6 s listening window runs instantly
and the rate limit can be asserted exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.sitecheck.dhcp_wire import (
    BOOTREPLY,
    BROADCAST_MAC,
    CLIENT_PORT,
    OFFER,
    SERVER_PORT,
    DhcpMessage,
    bootp_payload,
    parse_frame,
    udp_frame,
)

Server = Callable[[DhcpMessage], list[bytes]]


def offer_frame(
    request: DhcpMessage, *, server: str, server_mac: str = "02:00:00:00:00:01",
    yiaddr: str = "0.0.0.0", extra: list[tuple[int, bytes]] | None = None,
    giaddr: str | None = None, file: bytes = b"", siaddr: str = "0.0.0.0",
    src_ip: str | None = None,
) -> bytes:
    """An OFFER answering ``request`` from ``server`` (option 54), broadcast to port 68;
    with ``giaddr`` it arrives as a relay forwards it (sent from the relay's address)."""
    options = [(53, bytes((OFFER,))), (54, _ip(server)), *(extra or [])]
    payload = bootp_payload(BOOTREPLY, request.chaddr, request.xid, options,
                            flags=request.flags, yiaddr=yiaddr, siaddr=siaddr,
                            giaddr=giaddr or "0.0.0.0", file=file)
    return udp_frame(server_mac, BROADCAST_MAC, src_ip or giaddr or server, "255.255.255.255",
                     SERVER_PORT, CLIENT_PORT, payload)


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def site_server(server: str, yiaddr: str, *, pxeclient: bool = False,
                dns: str = "10.9.0.53", ntp: str = "10.9.0.123",
                giaddr: str | None = None) -> Server:
    """A site DHCP server offering ``yiaddr`` with mask, router, DNS, NTP and a domain;
    ``pxeclient`` makes it the misconfigured kind that adds option 60 (SITE-2)."""

    def answer(req: DhcpMessage) -> list[bytes]:
        extra = [(1, _ip("255.255.255.0")), (3, _ip("10.9.0.1")), (6, _ip(dns)),
                 (15, b"site.example"), (42, _ip(ntp)), (51, struct.pack("!I", 3600))]
        if pxeclient:
            extra.append((60, b"PXEClient"))
        return [offer_frame(req, server=server, yiaddr=yiaddr, extra=extra, giaddr=giaddr,
                            server_mac="02:00:00:00:00:0d")]

    return answer


def proxy_server(server: str, *, serves: set[str] | None = None, file: bytes = b"",
                 giaddr: str | None = None, answer_plain: bool = False,
                 drop_first: bool = False) -> Server:
    """A ProxyDHCP answering PXE DISCOVERs (only for ``serves`` MACs when given);
    ``drop_first`` loses its first answer, so only a retransmission is answered."""
    state = {"dropped": not drop_first}

    def answer(req: DhcpMessage) -> list[bytes]:
        if not (req.pxeclient or answer_plain):
            return []
        if serves is not None and req.chaddr not in serves:
            return []
        if not state["dropped"]:
            state["dropped"] = True
            return []
        pxe = b"\x06\x01\x08\xff"
        return [offer_frame(req, server=server, extra=[(60, b"PXEClient"), (43, pxe)],
                            giaddr=giaddr, file=file, siaddr=server,
                            server_mac="02:00:00:00:00:0b")]

    return answer


@dataclass
class FakeLan:
    """Scripted servers behind a fake packet socket, on a virtual clock."""

    servers: list[Server] = field(default_factory=list)
    noise: list[bytes] = field(default_factory=list)      # frames heard before any reply
    now: float = 0.0
    latency: float = 0.01
    sent: list[tuple[float, DhcpMessage]] = field(default_factory=list)
    _queue: list[tuple[float, bytes]] = field(default_factory=list)

    def clock(self) -> float:
        """The virtual time, for ``run_exchange(clock=...)``."""
        return self.now

    def send(self, frame: bytes) -> None:
        """Parse what the probe sent and queue every scripted server's answer."""
        msg = parse_frame(frame)
        assert msg is not None, "the probe sent something that is not DHCP"
        self.sent.append((self.now, msg))
        for server in self.servers:
            self._queue += [(self.now + self.latency, f) for f in server(msg)]

    def receive(self, timeout: float) -> bytes | None:
        """The next queued frame due before the timeout; otherwise time passes."""
        if self.noise:
            return self.noise.pop(0)
        due = sorted((t, i) for i, (t, _) in enumerate(self._queue))
        if due and due[0][0] <= self.now + timeout:
            at, index = due[0]
            self.now = max(self.now, at)
            return self._queue.pop(index)[1]
        self.now += timeout
        return None

    def close(self) -> None:
        """Nothing to release."""
