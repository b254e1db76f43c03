"""The packet socket site-check's DHCP probes send and listen on, bound to one interface.

A DHCP client has no address before its lease, and site-check probes as MACs that are
not the interface's own, so it cannot use an ordinary UDP socket: it sends whole
Ethernet frames and reads whole frames back on the interface the user named, and
nowhere else. The :class:`FrameLink` protocol is what the probes need, so unit tests
can hand them a fake link with recorded replies.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from typing import Protocol

from harness.sitecheck.dhcp_wire import ETH_P_IP
from harness.sitecheck.model import SiteCheckError

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4  # sll_pkttype of our own frames, which the socket also sees


class FrameLink(Protocol):
    """Send a frame; receive the next incoming frame before a deadline."""

    def send(self, frame: bytes) -> None:
        """Put one whole Ethernet frame on the wire."""

    def receive(self, timeout: float) -> bytes | None:
        """The next frame that arrived from the wire, or None after ``timeout`` seconds."""

    def close(self) -> None:
        """Release the socket."""


class PacketLink:
    """An AF_PACKET socket for IPv4 frames on ``iface``.

    ``promiscuous`` also receives frames sent to other MACs: a server may unicast its
    reply to the probe MAC (ignoring the broadcast flag), and --passive wants to see
    other clients' exchanges. The kernel drops the membership when the socket closes.
    """

    def __init__(self, iface: str, *, promiscuous: bool = False) -> None:
        self.iface = iface
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        except PermissionError:
            raise SiteCheckError("sending DHCP probes needs a packet socket: run as root "
                                 "(or with CAP_NET_RAW)") from None
        try:
            sock.bind((iface, ETH_P_IP))
            if promiscuous:
                index = socket.if_nametoindex(iface)
                mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise SiteCheckError(f"no network interface {iface!r}: pick one with "
                                     "`ip link`") from None
            raise SiteCheckError(f"cannot listen on {iface!r}: {exc}") from None
        self._sock = sock

    def send(self, frame: bytes) -> None:
        """Send one frame; a down interface or full queue is a SiteCheckError."""
        try:
            self._sock.send(frame)
        except OSError as exc:
            raise SiteCheckError(f"cannot send on {self.iface!r} ({exc}): is the link up? "
                                 "(`ip link set IFACE up`)") from None

    def receive(self, timeout: float) -> bytes | None:
        """The next incoming frame (our own outgoing copies are skipped)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                frame, addr = self._sock.recvfrom(65535)
            except TimeoutError:
                return None
            except OSError as exc:
                raise SiteCheckError(f"receiving on {self.iface!r} failed: {exc}") from None
            if addr[2] != PACKET_OUTGOING:
                return frame

    def close(self) -> None:
        """Close the socket (and with it any promiscuous membership)."""
        self._sock.close()

    def __enter__(self) -> PacketLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
