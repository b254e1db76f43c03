"""One raw AF_PACKET socket per segment, shared by every emulated machine on it.

Before it has an address a machine speaks DHCP in raw Ethernet frames, with
its own MAC as source. Replies are handed to the machine they are for by
``chaddr`` (broadcast replies carry no other clue), so a thousand machines
cost one socket and one asyncio reader.
"""

from __future__ import annotations

import asyncio
import ctypes
import socket
import struct
from collections.abc import Callable

from harness.machines.sim.errors import FrameError, SimMachineError
from harness.machines.sim.frames import ETH_P_IP, UdpFrame, parse_udp_frame
from harness.macs import mac_text

PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
SO_ATTACH_FILTER = 26
SOL_PACKET = 263
PACKET_STATISTICS = 6

#: classic BPF: accept IPv4, UDP, not a fragment, destination port 68; drop the rest
_DHCP_CLIENT_BPF = (
    (0x28, 0, 0, 12), (0x15, 0, 8, 0x0800),   # ethertype == IPv4
    (0x30, 0, 0, 23), (0x15, 0, 6, 17),       # protocol == UDP
    (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF),   # no fragment offset
    (0xB1, 0, 0, 14), (0x48, 0, 0, 16),       # X = IP header length; A = UDP dport
    (0x15, 0, 1, 68),
    (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0),
)


def attach_dhcp_filter(sock: socket.socket) -> None:
    """Attach the kernel-side filter that keeps only frames to UDP port 68."""
    prog = b"".join(struct.pack("HBBI", *ins) for ins in _DHCP_CLIENT_BPF)
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(_DHCP_CLIENT_BPF), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)

Handler = Callable[[UdpFrame], None]


class SegmentPort:
    """The shared raw socket on interface ``ifname`` of the machines' namespace.

    Create it inside the namespace (the asyncio thread has joined it).
    """

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self._handlers: dict[str, Handler] = {}
        self.sent = 0
        self.received = 0
        self.dropped = 0
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        except PermissionError as exc:
            raise SimMachineError("raw sockets need root (CAP_NET_RAW): run as root") from exc
        # Only DHCP replies reach Python: the same interface carries every machine's TFTP
        # and HTTP traffic (their macvlans sit on it), which would otherwise be copied here.
        attach_dhcp_filter(self.sock)
        self.sock.bind((ifname, ETH_P_IP))
        # FORCE variants (root) pass net.core.rmem_max: a burst of replies must not be lost
        # while the loop is busy with a thousand machines.
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
        self.sock.setblocking(False)
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start reading in ``loop``."""
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def register(self, mac: str, handler: Handler) -> None:
        """Deliver DHCP replies whose chaddr is ``mac`` to ``handler``."""
        self._handlers[mac.lower()] = handler

    def unregister(self, mac: str) -> None:
        """Stop delivering to ``mac``."""
        self._handlers.pop(mac.lower(), None)

    def send(self, frame: bytes) -> None:
        """Put a frame on the wire; a full socket buffer drops it, as a busy NIC would."""
        try:
            self.sock.send(frame)
            self.sent += 1
        except BlockingIOError:
            self.dropped += 1

    def _readable(self) -> None:
        for _ in range(256):
            try:
                frame, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            try:
                udp = parse_udp_frame(frame)
            except FrameError:
                continue
            if udp.dport != 68 or len(udp.payload) < 34:
                continue
            handler = self._handlers.get(mac_text(udp.payload[28:34]))
            if handler is not None:
                self.received += 1
                handler(udp)

    def kernel_drops(self) -> int:
        """Frames the kernel dropped on this socket since the last call (buffer full)."""
        raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        return int(struct.unpack("II", raw)[1])

    def close(self) -> None:
        """Stop reading and close the socket."""
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
