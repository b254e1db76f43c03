"""Event-loop UDP listeners for ProxyDHCP: port 67 and 4011 on each served interface.

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
from collections import deque
from collections.abc import Callable
from time import monotonic

from bootproxy.dhcp.codec import encode, parse
from bootproxy.dhcp.responder import (
    Drop,
    DropReason,
    ReceiveContext,
    Reply,
    ResponderConfig,
    client_address,
    client_arch,
    decide,
)
from bootproxy.errors import CodecError, ListenerError
from bootproxy.logs import log_event
from bootproxy.metrics import Observer, Registry, Series

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


# Datagrams handled per wake-up of the event loop before TFTP, HTTP and the
# Control Plane sync get their turn again: large enough that a burst costs one
# selector round trip per batch instead of one per packet, small enough that a
# 1,000-machine storm does not starve the other services for more than ~10 ms.
RECEIVE_BATCH = 256
_RECV_SIZE = 2048  # more than MAX_PACKET_SIZE: an oversized datagram still reaches the codec


class _Counters:
    """The listener's metric series, their label children worked out once (hot path)."""

    def __init__(self, registry: Registry, iface: str, port: int) -> None:
        self.registry = registry
        self.iface = iface
        self.received = registry.counter(
            "bootproxy_dhcp_received_total", interface=iface, port=str(port)
        )
        self.sent = {
            kind: registry.counter(f"bootproxy_dhcp_{kind}s_total", interface=iface)
            for kind in ("offer", "ack")
        }
        self.latency = {
            kind: registry.histogram(
                "bootproxy_dhcp_reply_latency_seconds", interface=iface, kind=kind
            )
            for kind in ("offer", "ack")
        }
        self._drops: dict[str, Series] = {}

    def drop(self, reason: str) -> None:
        counter = self._drops.get(reason)
        if counter is None:
            counter = self._drops[reason] = self.registry.counter(
                "bootproxy_dhcp_drops_total", reason=reason, interface=self.iface
            )
        counter.inc()

    def replied(self, kind: str, latency: float) -> None:
        counter = self.sent.get(kind)
        if counter is None:
            counter = self.sent[kind] = self.registry.counter(
                f"bootproxy_dhcp_{kind}s_total", interface=self.iface
            )
            self.latency[kind] = self.registry.histogram(
                "bootproxy_dhcp_reply_latency_seconds", interface=self.iface, kind=kind
            )
        counter.inc()
        observer: Observer = self.latency[kind]
        observer.observe(latency)


class DhcpListener:
    """One UDP listener (interface x port) that runs `decide` on every datagram.

    `served(mac)` is the MAC filter; `server_addr` is the address advertised in
    option 54 and siaddr.

    The socket is read straight from the event loop's selector (`add_reader`)
    and drained in batches, and replies go out with a plain `sendto`: asyncio's
    datagram transport cost more per packet than deciding the answer did.
    A reply the kernel cannot take at once (send buffer full) is queued and
    flushed when the socket is writable again, in order.
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
        unsupported_arch: Callable[[str, int, str], None] | None = None,
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
        # unsupported_arch(mac, arch, iface): a served MAC boots as an architecture this
        # proxy has no file for (an ARM64 DISCOVER); the proxy stays silent and tells the CP.
        self.unsupported_arch = unsupported_arch
        self.sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # (payload, reply, mac, when the request was read): replies the kernel refused
        self._backlog: deque[tuple[bytes, Reply, str, float]] = deque()
        self._counters = _Counters(registry, iface, port)

    async def start(self) -> None:
        """Open the socket and start receiving; raises `ListenerError` when it cannot bind."""
        sock = open_udp_socket(self.iface if self.bind_device else None, self.port, self.bind_host)
        if self.port == 0:
            self.port = sock.getsockname()[1]
            self._counters = _Counters(self.registry, self.iface, self.port)
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        """Stop listening; replies still queued or delayed are dropped."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
            self._loop.remove_writer(sock.fileno())
        self._backlog.clear()
        sock.close()

    def _on_readable(self) -> None:
        """Drain up to RECEIVE_BATCH datagrams; the selector calls again if more wait."""
        sock = self.sock
        handle = self._handle
        handled = 0
        try:
            for _ in range(RECEIVE_BATCH):
                if sock is None:
                    return
                try:
                    data, addr = sock.recvfrom(_RECV_SIZE)
                    received = monotonic()
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    # ICMP errors (e.g. port unreachable) surface here on a UDP socket:
                    # logged, not fatal.
                    log_event(
                        _LOG, "dhcp_socket_error", logging.DEBUG, error=str(exc),
                        interface=self.iface,
                    )
                    return
                handled += 1
                handle(data, addr, received)
                sock = self.sock  # a handler may have closed the listener
        finally:
            # one counter bump per batch: nothing reads /metrics while the batch runs
            if handled:
                self._counters.received.inc(handled)

    def datagram_received(
        self, data: bytes, addr: tuple[str, int], received: float | None = None
    ) -> None:
        """Decode, decide, and send (possibly after the configured delay) or count the drop.

        `received` is when the datagram was read (time.monotonic); the reply's latency
        is measured from it.
        """
        self._counters.received.inc()
        self._handle(data, addr, monotonic() if received is None else received)

    def _handle(self, data: bytes, addr: tuple[str, int], received: float) -> None:
        """datagram_received without the receive count (the batch counts its datagrams)."""
        try:
            request = parse(data)
        except CodecError as exc:
            self._counters.drop(DropReason.MALFORMED_PACKET)
            log_event(_LOG, "dhcp_malformed", logging.DEBUG, src=addr[0], error=str(exc))
            return
        mac = request.mac
        if self.learn is not None and (ip := client_address(request, addr[0])) is not None:
            self.learn(ip, mac)
        ctx = ReceiveContext(
            server_addr=self.server_addr,
            port=self.role,
            source=(addr[0], addr[1]),
            served=self.served(mac),
            interface=self.iface,
        )
        result = decide(request, ctx, self.config)
        if isinstance(result, Drop):
            self._counters.drop(result.reason)
            if result.reason == DropReason.UNSUPPORTED_ARCH and self.unsupported_arch:
                self.unsupported_arch(mac, client_arch(request), self.iface)
            if _LOG.isEnabledFor(logging.DEBUG):
                log_event(
                    _LOG,
                    "dhcp_drop",
                    logging.DEBUG,
                    mac=mac,
                    xid=f"{request.xid:08x}",
                    reason=result.reason,
                    detail=result.detail,
                    interface=self.iface,
                )
            return
        self._send(result, mac, received)

    def _send(self, reply: Reply, mac: str, received: float) -> None:
        try:
            payload = encode(reply.packet)
        except CodecError as exc:
            self._counters.drop(DropReason.MALFORMED_OPTION)
            log_event(_LOG, "dhcp_encode_failed", logging.ERROR, mac=mac, error=str(exc))
            return
        if reply.delay > 0:
            asyncio.get_running_loop().call_later(
                reply.delay, self._sendto, payload, reply, mac, received
            )
        else:
            self._sendto(payload, reply, mac, received)

    def _sendto(self, payload: bytes, reply: Reply, mac: str, received: float) -> None:
        sock = self.sock
        if sock is None:
            return
        if self._backlog:
            self._backlog.append((payload, reply, mac, received))
            return
        try:
            sock.sendto(payload, reply.dest)
        except (BlockingIOError, InterruptedError):
            self._queue(payload, reply, mac, received)
            return
        except OSError as exc:
            self._counters.drop("send_failed")
            log_event(_LOG, "dhcp_send_failed", logging.WARNING, mac=mac, error=str(exc))
            return
        self._sent(reply, mac, received)

    def _queue(self, payload: bytes, reply: Reply, mac: str, received: float) -> None:
        self._backlog.append((payload, reply, mac, received))
        if self.sock is not None and self._loop is not None:
            self._loop.add_writer(self.sock.fileno(), self._flush)

    def _flush(self) -> None:
        """Send what the kernel refused earlier, oldest first, until it refuses again."""
        sock = self.sock
        while self._backlog and sock is not None:
            payload, reply, mac, received = self._backlog[0]
            try:
                sock.sendto(payload, reply.dest)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._counters.drop("send_failed")
                log_event(_LOG, "dhcp_send_failed", logging.WARNING, mac=mac, error=str(exc))
            else:
                self._sent(reply, mac, received)
            self._backlog.popleft()
        if sock is not None and self._loop is not None:
            self._loop.remove_writer(sock.fileno())

    def _sent(self, reply: Reply, mac: str, received: float) -> None:
        # Observed after the sendto, outside receipt -> reply: the reply is already out.
        self._counters.replied(reply.kind, monotonic() - received)
        # The level check comes first: building the fields below for a disabled
        # level was a fixed cost on every reply.
        if _LOG.isEnabledFor(logging.INFO):
            log_event(
                _LOG,
                f"dhcp_{reply.kind}",
                mac=mac,
                xid=f"{reply.packet.xid:08x}",
                to=f"{reply.dest[0]}:{reply.dest[1]}",
                file=reply.packet.file.decode("latin-1"),
                interface=self.iface,
            )
