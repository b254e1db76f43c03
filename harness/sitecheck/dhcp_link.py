"""The packet socket site-check's DHCP probes send and listen on, bound to one interface.

A DHCP client has no address before its lease, and site-check probes as MACs that are
not the interface's own, so it cannot use an ordinary UDP socket: it sends whole
Ethernet frames and reads whole frames back on the interface the user named, and
nowhere else. The :class:`FrameLink` protocol is what the probes need, so unit tests
can hand them a fake link with recorded replies.
"""

from __future__ import annotations

import ctypes
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


SO_ATTACH_FILTER = 26

# Classic BPF: keep IPv4 UDP whose source or destination port is 67 or 68 (and not a
# later fragment), drop everything else in the kernel, so a busy (or promiscuous) LAN
# costs nothing in Python. (code, jt, jf, k) per instruction; offsets from the Ethernet
# header.
_LDH, _LDB, _LDXB_MSH, _LDH_IND = 0x28, 0x30, 0xB1, 0x48
_JEQ, _JSET, _RET = 0x15, 0x45, 0x06
DHCP_FILTER: tuple[tuple[int, int, int, int], ...] = (
    (_LDH, 0, 0, 12),             # 0: ethertype
    (_JEQ, 0, 12, 0x0800),        # 1: IPv4, else drop
    (_LDB, 0, 0, 23),             # 2: IP protocol
    (_JEQ, 0, 10, 17),            # 3: UDP, else drop
    (_LDH, 0, 0, 20),             # 4: flags + fragment offset
    (_JSET, 8, 0, 0x1FFF),        # 5: a later fragment: drop
    (_LDXB_MSH, 0, 0, 14),        # 6: X = IP header length
    (_LDH_IND, 0, 0, 14),         # 7: UDP source port
    (_JEQ, 4, 0, 67),             # 8
    (_JEQ, 3, 0, 68),             # 9
    (_LDH_IND, 0, 0, 16),         # 10: UDP destination port
    (_JEQ, 1, 0, 67),             # 11
    (_JEQ, 0, 1, 68),             # 12
    (_RET, 0, 0, 0x40000),        # 13: accept the whole frame
    (_RET, 0, 0, 0),              # 14: drop
)


def attach_dhcp_filter(sock: socket.socket) -> None:
    """Attach :data:`DHCP_FILTER` to a packet socket (SO_ATTACH_FILTER)."""
    program = b"".join(struct.pack("HBBI", *insn) for insn in DHCP_FILTER)
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("HL", len(DHCP_FILTER), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


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
            # protocol 0: the socket receives nothing until it is filtered and bound
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise SiteCheckError("sending DHCP probes needs a packet socket: run as root "
                                 "(or with CAP_NET_RAW)") from None
        try:
            attach_dhcp_filter(sock)
            sock.bind((iface, ETH_P_IP))  # CPython converts proto to network order
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
