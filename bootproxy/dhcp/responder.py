"""The ProxyDHCP decision: one request in, one reply (and where to send it) or a Drop out.

Pure and synchronous, so the whole conformance table (OFFER, ACK4011, RELAY,
SILENT, IPXE in docs/CONFORMANCE.md) is unit-tested without sockets.
The server feeds it a `ReceiveContext` describing where the packet arrived and
what the Control Plane said about the MAC.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from bootproxy.dhcp.codec import (
    BOOTREPLY,
    BOOTREQUEST,
    BROADCAST_FLAG,
    DhcpPacket,
    MessageType,
    Opt,
    encode,
)
from bootproxy.dhcp.options import (
    DISCOVERY_USE_BOOTFILE,
    PXE_BOOT_ITEM,
    PXE_DISCOVERY_CONTROL,
    decode_arch,
    decode_boot_item,
    decode_suboptions,
    decode_vendor_class,
    encode_suboptions,
    is_ipxe,
)
from bootproxy.errors import CodecError

__all__ = [
    "DHCP_PORT",
    "PXE_PORT",
    "Drop",
    "DropReason",
    "ReceiveContext",
    "Reply",
    "ResponderConfig",
    "client_address",
    "decide",
]

DHCP_PORT = 67
MAX_REPLY_SIZE = 576  # RFC 2131 §2: what every client must accept without option 57
CLIENT_PORT = 68
PXE_PORT = 4011

# Architecture codes (CLI-3).
ARCH_BIOS = 0
ARCH_UEFI_IA32 = 6
ARCH_UEFI_X64 = 7
ARCH_UEFI_BC = 9  # x64 too, per the RFC 4578 erratum
ARCH_HTTP_X64 = 16


class DropReason:
    """Why a packet got no answer; these strings are the `reason` label on the drop counter."""

    NOT_REQUEST = "not_bootrequest"
    NO_MSGTYPE = "no_message_type"
    SILENT_MSGTYPE = "silent_message_type"  # INFORM, RELEASE, DECLINE, ... (SILENT-2)
    ADDRESS_REQUEST = "address_request"  # REQUEST without 43.71 on 67 (SILENT-2)
    NOT_PXE = "not_pxe_client"  # SILENT-1
    OTHER_SERVER = "other_server"  # SILENT-3
    UNKNOWN_MAC = "unknown_mac"  # SILENT-5
    BAD_HARDWARE = "bad_hardware_address"
    UNSUPPORTED_ARCH = "unsupported_arch"
    UNKNOWN_BOOT_ITEM = "unknown_boot_item"  # ACK4011-4
    MALFORMED_OPTION = "malformed_option"
    MALFORMED_PACKET = "malformed_packet"  # set by the server when the codec refuses
    WRONG_PORT = "wrong_port"


@dataclass(frozen=True)
class Drop:
    """No reply; `reason` is one of `DropReason` and is counted by the server."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class Reply:
    """A reply to send: the packet, the (address, port) to send it to, and the delay (TIME-4)."""

    packet: DhcpPacket
    dest: tuple[str, int]
    delay: float = 0.0
    kind: str = "offer"  # "offer" or "ack", the metric name


@dataclass(frozen=True)
class ReceiveContext:
    """Where a request arrived and what the Control Plane said about its MAC.

    `server_addr` is the receiving interface's address (or the configured
    advertised address): it becomes option 54 and siaddr (OFFER-4, RELAY-2).
    `served` is the MAC filter's verdict for the request's MAC (SILENT-5).
    """

    server_addr: str
    port: int
    source: tuple[str, int]
    served: bool
    interface: str = ""


@dataclass(frozen=True)
class ResponderConfig:
    """What the proxy hands out; defaults match the Debian `ipxe` package file names."""

    http_port: int = 8080
    http_host: str | None = None  # default: the receiving interface's address
    tftp_files: dict[int, str] = field(
        default_factory=lambda: {
            ARCH_BIOS: "undionly.kpxe",
            ARCH_UEFI_X64: "ipxe.efi",
            ARCH_UEFI_BC: "ipxe.efi",
        }
    )
    http_files: dict[int, str] = field(default_factory=lambda: {ARCH_HTTP_X64: "ipxe.efi"})
    script_path: str = "/boot/{mac}.ipxe"
    pxe_equivalents: tuple[str, ...] = ()  # e.g. ("HW-Client",) for Huawei TaiShan
    reply_delay: float = 0.0
    boot_item_types: frozenset[int] = frozenset({0})  # 43.71 types answered (0 = bootstrap)

    def http_base(self, server_addr: str) -> str:
        """The `http://host:port` prefix; an IP literal by default (IPXE-4)."""
        return f"http://{self.http_host or server_addr}:{self.http_port}"


def _options(packet: DhcpPacket) -> dict[int, bytes]:
    """Every option once, split instances joined (RFC 3396): what `DhcpPacket.get` returns,
    read in one pass instead of one scan per lookup."""
    out: dict[int, bytes] = {}
    for code, value in packet.options:
        seen = out.get(code)
        out[code] = value if seen is None else seen + value
    return out


def _client_kind(value: bytes | None, cfg: ResponderConfig) -> str | None:
    """Return "PXEClient", "HTTPClient" or None (SILENT-1) from option 60's prefix."""
    if value is None:
        return None
    if value.startswith(b"PXEClient"):
        return "PXEClient"
    if value.startswith(b"HTTPClient"):
        return "HTTPClient"
    for alias in cfg.pxe_equivalents:
        if value.startswith(alias.encode()):
            return "PXEClient"
    return None


def _arch(opts: dict[int, bytes]) -> int:
    """Architecture from option 93 (first entry), else option 60's Arch field, else BIOS."""
    raw = opts.get(Opt.CLIENT_ARCH)
    if raw is not None:
        return decode_arch(raw)[0]
    vc = opts.get(Opt.VENDOR_CLASS)
    if vc is not None:
        arch = decode_vendor_class(vc).arch
        if arch is not None:
            return arch
    return ARCH_BIOS


def client_arch(request: DhcpPacket) -> int:
    """The architecture ``request`` boots as (option 93, else option 60, else BIOS)."""
    return _arch(_options(request))


def _base_reply(request: DhcpPacket, msg_type: int, ctx: ReceiveContext) -> DhcpPacket:
    return DhcpPacket(
        op=BOOTREPLY,
        htype=request.htype,
        hlen=request.hlen,
        hops=0,
        xid=request.xid,
        secs=0,
        flags=request.flags,
        ciaddr=request.ciaddr if msg_type == MessageType.ACK else "0.0.0.0",
        yiaddr="0.0.0.0",
        siaddr=ctx.server_addr,
        giaddr=request.giaddr,
        chaddr=request.chaddr,
        options=[
            (Opt.MESSAGE_TYPE, bytes((msg_type,))),
            (Opt.SERVER_ID, _ip_raw(ctx.server_addr)),
        ],
    )


@functools.lru_cache(maxsize=256)
def _ip_raw(addr: str) -> bytes:
    return bytes(int(part) for part in addr.split("."))


def _boot_file(
    request: DhcpPacket, kind: str, arch: int, ipxe: bool, ctx: ReceiveContext,
    cfg: ResponderConfig,
) -> str | None:
    """Pick the boot file: script URL for iPXE (IPXE-1), HTTP URL for HTTPClient, TFTP name."""
    if ipxe:
        return cfg.http_base(ctx.server_addr) + cfg.script_path.format(mac=request.mac)
    if kind == "HTTPClient":
        name = cfg.http_files.get(arch)
        return None if name is None else f"{cfg.http_base(ctx.server_addr)}/{name}"
    return cfg.tftp_files.get(arch)


def _is_uefi_pxe(kind: str, arch: int, ipxe: bool) -> bool:
    """UEFI PXE ROMs get a discovery-free offer and the file on 4011 (old EDK2, edk2 #6944)."""
    return kind == "PXEClient" and arch != ARCH_BIOS and not ipxe


def decide(request: DhcpPacket, ctx: ReceiveContext, cfg: ResponderConfig) -> Reply | Drop:
    """Decide the ProxyDHCP answer to `request` received as described by `ctx`.

    Returns a `Reply` (packet + destination + delay) or a `Drop` naming the
    SILENT rule or the malformation that stops an answer.
    """
    try:
        return _decide(request, ctx, cfg)
    except CodecError as exc:
        return Drop(DropReason.MALFORMED_OPTION, str(exc))


def _decide(request: DhcpPacket, ctx: ReceiveContext, cfg: ResponderConfig) -> Reply | Drop:
    if request.op != BOOTREQUEST:
        return Drop(DropReason.NOT_REQUEST)
    opts = _options(request)
    msg_raw = opts.get(Opt.MESSAGE_TYPE)
    # as DhcpPacket.message_type: absent or not one byte is plain BOOTP
    msg_type = msg_raw[0] if msg_raw is not None and len(msg_raw) == 1 else None
    if msg_type is None:
        return Drop(DropReason.NO_MSGTYPE)
    if request.htype != 1 or request.hlen != 6:
        return Drop(DropReason.BAD_HARDWARE, f"htype {request.htype} hlen {request.hlen}")
    if ctx.port not in (DHCP_PORT, PXE_PORT):
        return Drop(DropReason.WRONG_PORT, str(ctx.port))

    vendor43 = opts.get(Opt.VENDOR_SPECIFIC)
    boot_item_raw: bytes | None = None
    if vendor43 is not None and msg_type == MessageType.REQUEST:
        for code, value in decode_suboptions(vendor43):
            if code == PXE_BOOT_ITEM:
                boot_item_raw = value

    if msg_type == MessageType.DISCOVER:
        if ctx.port != DHCP_PORT:
            return Drop(DropReason.SILENT_MSGTYPE, "DISCOVER on 4011")
        reply_type = MessageType.OFFER
    elif msg_type == MessageType.REQUEST:
        if ctx.port == DHCP_PORT and boot_item_raw is None:
            return Drop(DropReason.ADDRESS_REQUEST)
        reply_type = MessageType.ACK
    else:
        return Drop(DropReason.SILENT_MSGTYPE, f"message type {msg_type}")

    kind = _client_kind(opts.get(Opt.VENDOR_CLASS), cfg)
    if kind is None:
        return Drop(DropReason.NOT_PXE)

    server_id = opts.get(Opt.SERVER_ID)
    if server_id is not None and server_id != _ip_raw(ctx.server_addr):
        return Drop(DropReason.OTHER_SERVER, ".".join(str(b) for b in server_id))

    if not ctx.served:
        return Drop(DropReason.UNKNOWN_MAC, request.mac)

    if boot_item_raw is not None:
        item = decode_boot_item(boot_item_raw)
        if item.type not in cfg.boot_item_types:
            return Drop(DropReason.UNKNOWN_BOOT_ITEM, f"type {item.type}")

    arch = _arch(opts)
    ipxe = is_ipxe(opts.get(Opt.USER_CLASS))
    boot_file = _boot_file(request, kind, arch, ipxe, ctx, cfg)
    if boot_file is None:
        return Drop(DropReason.UNSUPPORTED_ARCH, f"arch {arch} ({kind})")

    reply = _base_reply(request, reply_type, ctx)
    reply.options.append((Opt.VENDOR_CLASS, kind.encode()))
    uuid_raw = opts.get(Opt.CLIENT_UUID)
    if uuid_raw is not None and len(uuid_raw) == 17 and uuid_raw[0] == 0:
        # Verbatim (OFFER-5); a malformed 97 (CLI-2) is not echoed rather than grow the reply.
        reply.options.append((Opt.CLIENT_UUID, uuid_raw))

    if reply_type == MessageType.OFFER and _is_uefi_pxe(kind, arch, ipxe):
        # Shape (c): no 43 and no file; siaddr/54 say "ask me on 4011" (OFFER-6).
        pass
    else:
        reply.file = boot_file.encode()
        if kind == "PXEClient":
            sub = [(PXE_DISCOVERY_CONTROL, bytes((DISCOVERY_USE_BOOTFILE,)))]
            if boot_item_raw is not None:
                sub.append((PXE_BOOT_ITEM, boot_item_raw))  # ACK4011-4
            reply.options.append((Opt.VENDOR_SPECIFIC, encode_suboptions(sub)))

    if ctx.port == PXE_PORT:
        dest = ctx.source  # ACK4011-1: back to the request's address and port
        return Reply(reply, dest, cfg.reply_delay, "ack")

    relay82 = opts.get(Opt.RELAY_AGENT)
    if request.giaddr != "0.0.0.0":
        reply.flags |= BROADCAST_FLAG
        if relay82 is not None:
            reply.options.append((Opt.RELAY_AGENT, relay82))  # RELAY-3: verbatim, last
            if len(encode(reply)) > MAX_REPLY_SIZE:
                reply.options.pop()  # RELAY-3: omit it when it does not fit (OFFER-11)
        dest = (request.giaddr, DHCP_PORT)
    elif request.ciaddr != "0.0.0.0" and not request.broadcast:
        # A boot-server REQUEST broadcast to 67 is answered like the 4011 one: to the
        # port it came from (EDK2 sends from 4011, iPXE from 68).
        port = ctx.source[1] if ctx.source[1] in (CLIENT_PORT, PXE_PORT) else CLIENT_PORT
        dest = (request.ciaddr, port)
    else:
        dest = ("255.255.255.255", CLIENT_PORT)
    kind_name = "offer" if reply_type == MessageType.OFFER else "ack"
    return Reply(reply, dest, cfg.reply_delay, kind_name)


def client_address(request: DhcpPacket, source_ip: str) -> str | None:
    """The address ``request`` shows its client holds, or is being granted; None if none.

    TFTP and HTTP see only an IP, so the MAC filter (SILENT-5) needs this IP->MAC fact.
    ``ciaddr`` is the client's own; a direct unicast's source is the client; a relayed
    packet's source is the relay, never the client. A REQUEST's option 50 is the address
    the client is taking from the site's server: for a relayed client that never talks to
    the proxy directly (UEFI HTTP boot, a BIOS ROM that reads its boot file from the offer)
    it is the only place its address appears. A DISCOVER's option 50 is a wish, not learnt.
    """
    if request.ciaddr != "0.0.0.0":
        return request.ciaddr
    if request.giaddr == "0.0.0.0" and source_ip not in ("0.0.0.0", "255.255.255.255"):
        return source_ip
    if request.message_type == MessageType.REQUEST:
        wanted = request.get(Opt.REQUESTED_ADDRESS)
        if wanted is not None and len(wanted) == 4 and wanted != b"\0\0\0\0":
            return ".".join(str(b) for b in wanted)
    return None
