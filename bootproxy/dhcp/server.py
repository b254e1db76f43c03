"""asyncio UDP listeners for ProxyDHCP: port 67 and 4011 on each served interface.

Each listener is bound to its interface (SO_BINDTODEVICE) so one proxy can
serve several segments and always answers with the address of the interface
the request came in on (OFFER-4). Every packet that gets no answer is counted
by reason (`bootproxy_dhcp_drops_total{reason=...}`).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from bootproxy.dhcp.codec import encode, parse
from bootproxy.dhcp.responder import (
    Drop,
    DropReason,
    ReceiveContext,
    Reply,
    ResponderConfig,
    decide,
)
from bootproxy.errors import CodecError, ListenerError
from bootproxy.logs import log_event
from bootproxy.metrics import Registry

__all__ = ["DhcpListener", "interface_address", "open_udp_socket"]

_LOG = logging.getLogger("bootproxy.dhcp")
_SIOCGIFADDR = 0x8915


def interface_address(iface: str) -> str:
    """Return the primary IPv4 address of `iface`; `ListenerError` if it has none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            raw = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, struct.pack("256s", iface.encode()[:15]))
        except OSError as exc:
            raise ListenerError(
                f"interface {iface!r} has no IPv4 address ({exc.strerror}); "
                "give it one or pass --advertise-addr"
            ) from exc
    return socket.inet_ntoa(raw[20:24])


RECEIVE_BUFFER = 4 * 1024 * 1024


def _grow_receive_buffer(sock: socket.socket) -> None:
    """A 1,000-machine power-on sends ~1,000 DISCOVERs at once: the default ~200 KiB buffer
    overflowed and retransmissions went unanswered (TIME-1). Past net.core.rmem_max only
    SO_RCVBUFFORCE (CAP_NET_ADMIN) helps; without it keep what SO_RCVBUF allows."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, 33, RECEIVE_BUFFER)  # SO_RCVBUFFORCE
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


def open_udp_socket(iface: str | None, port: int, host: str = "0.0.0.0") -> socket.socket:
    """Open a non-blocking UDP socket on `host:port`, bound to `iface` when given, broadcast on.

    SO_REUSEADDR lets the 67 listeners of several interfaces share the port;
    the device binding keeps their traffic apart.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if iface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode() + b"\0")
        _grow_receive_buffer(sock)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenerError(
            f"cannot listen on UDP {host}:{port} (interface {iface or 'any'}): {exc.strerror}; "
            "run as root (or with CAP_NET_BIND_SERVICE and CAP_NET_RAW) and check the "
            "interface exists and nothing else holds the port"
        ) from exc
    return sock


@dataclass
class _Counters:
    registry: Registry
    iface: str

    def drop(self, reason: str) -> None:
        self.registry.inc("bootproxy_dhcp_drops_total", reason=reason, interface=self.iface)


class DhcpListener(asyncio.DatagramProtocol):
    """One UDP listener (interface x port) that runs `decide` on every datagram.

    `served(mac)` is the MAC filter; `server_addr` is the address advertised in
    option 54 and siaddr.
    """

    def __init__(
        self,
        *,
        iface: str,
        port: int,
        server_addr: str,
        config: ResponderConfig,
        served: Callable[[str], bool],
        registry: Registry,
        bind_host: str = "0.0.0.0",
        bind_device: bool = True,
        role: int | None = None,
        learn: Callable[[str, str], None] | None = None,
    ) -> None:
        self.iface = iface
        self.port = port
        self.server_addr = server_addr
        self.config = config
        self.served = served
        self.registry = registry
        self.bind_host = bind_host
        self.bind_device = bind_device
        # The protocol port this listener plays (67 or 4011); tests bind unprivileged ports.
        self.role = role if role is not None else port
        # learn(ip, mac): feeds the IP->MAC book TFTP/HTTP use for the MAC filter.
        self.learn = learn
        self.transport: asyncio.DatagramTransport | None = None
        self._counters = _Counters(registry, iface)

    async def start(self) -> None:
        """Open the socket and start receiving; raises `ListenerError` when it cannot bind."""
        sock = open_udp_socket(self.iface if self.bind_device else None, self.port, self.bind_host)
        if self.port == 0:
            self.port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to send replies on."""
        # CPython's selector transport does not subclass DatagramTransport; it has sendto.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def close(self) -> None:
        """Stop listening."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        """Decode, decide, and send (possibly after the configured delay) or count the drop."""
        self.registry.inc(
            "bootproxy_dhcp_received_total", interface=self.iface, port=str(self.port)
        )
        try:
            request = parse(data)
        except CodecError as exc:
            self._counters.drop(DropReason.MALFORMED_PACKET)
            log_event(_LOG, "dhcp_malformed", logging.DEBUG, src=addr[0], error=str(exc))
            return
        if self.learn is not None and request.giaddr == "0.0.0.0":
            if request.ciaddr != "0.0.0.0":
                self.learn(request.ciaddr, request.mac)
            elif addr[0] != "0.0.0.0":
                self.learn(addr[0], request.mac)
        ctx = ReceiveContext(
            server_addr=self.server_addr,
            port=self.role,
            source=(addr[0], addr[1]),
            served=self.served(request.mac),
            interface=self.iface,
        )
        result = decide(request, ctx, self.config)
        if isinstance(result, Drop):
            self._counters.drop(result.reason)
            log_event(
                _LOG,
                "dhcp_drop",
                logging.DEBUG,
                mac=request.mac,
                xid=f"{request.xid:08x}",
                reason=result.reason,
                detail=result.detail,
                interface=self.iface,
            )
            return
        self._send(result, request.mac)

    def _send(self, reply: Reply, mac: str) -> None:
        try:
            payload = encode(reply.packet)
        except CodecError as exc:
            self._counters.drop(DropReason.MALFORMED_OPTION)
            log_event(_LOG, "dhcp_encode_failed", logging.ERROR, mac=mac, error=str(exc))
            return
        if reply.delay > 0:
            asyncio.get_running_loop().call_later(reply.delay, self._sendto, payload, reply, mac)
        else:
            self._sendto(payload, reply, mac)

    def _sendto(self, payload: bytes, reply: Reply, mac: str) -> None:
        if self.transport is None:
            return
        try:
            self.transport.sendto(payload, reply.dest)
        except OSError as exc:
            self._counters.drop("send_failed")
            log_event(_LOG, "dhcp_send_failed", logging.WARNING, mac=mac, error=str(exc))
            return
        self.registry.inc(f"bootproxy_dhcp_{reply.kind}s_total", interface=self.iface)
        log_event(
            _LOG,
            f"dhcp_{reply.kind}",
            mac=mac,
            xid=f"{reply.packet.xid:08x}",
            to=f"{reply.dest[0]}:{reply.dest[1]}",
            file=reply.packet.file.decode("latin-1"),
            interface=self.iface,
        )

    def error_received(self, exc: Exception) -> None:
        """ICMP errors on a UDP socket (e.g. port unreachable) are logged, not fatal."""
        log_event(_LOG, "dhcp_socket_error", logging.DEBUG, error=str(exc), interface=self.iface)
