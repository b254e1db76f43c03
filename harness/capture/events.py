"""Typed events decoded from a capture: what the rules and expectations read.

Events are frozen so that rules cannot alter the evidence they judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.capture.dhcp_codec import DhcpFields, PxeOptions
from harness.capture.http_codec import HttpFields
from harness.capture.tftp_codec import TftpFields


@dataclass(frozen=True, kw_only=True)
class Packet:
    """Where and when a decoded packet was seen: its frame, time and both ends (L2-L4).

    Every event is its protocol's decoded fields plus these, so the decoders stay free
    of addresses and the rules read ``e.src_ip`` the same way on every protocol.
    """

    frame: int
    time: float
    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    sport: int
    dport: int


@dataclass(frozen=True)
class DhcpEvent(DhcpFields, Packet):
    """One BOOTP/DHCP packet (UDP 67, 68 or 4011), raw and decoded.

    ``options`` keeps every option in wire order, so rules can check ordering
    (option 82 last) and duplicates; the named fields are decoded for convenience
    and are ``None`` when the option is absent.
    """

    broadcast: bool
    sname: str
    file: str
    msg_type: str
    dhcp_len: int
    vendor_class: str | None = None
    client_arch: tuple[int, ...] | None = None
    nii: bytes | None = None
    uuid: bytes | None = None
    user_class: bytes | None = None
    ipxe_features: bytes | None = None
    pxe: PxeOptions | None = None
    server_id: str | None = None
    relay_agent: bytes | None = None
    param_list: tuple[int, ...] | None = None
    requested_ip: str | None = None
    max_msg_size: int | None = None
    tftp_server_opt: str | None = None
    bootfile_opt: str | None = None

    def has_option(self, code: int) -> bool:
        """True when option ``code`` appears at least once."""
        return any(c == code for c, _ in self.options)

    def option(self, code: int) -> bytes | None:
        """Value of option ``code``, concatenated over repeats (RFC 3396), or None."""
        parts = [v for c, v in self.options if c == code]
        return b"".join(parts) if parts else None

    @property
    def is_reply(self) -> bool:
        """BOOTREPLY (op 2): sent by a server."""
        return self.op == 2

    @property
    def is_pxe_client(self) -> bool:
        """The client identifies as a PXE or HTTP boot client (CLI-1, CLI-5)."""
        vc = self.vendor_class or ""
        return vc.startswith("PXEClient") or vc.startswith("HTTPClient")

    @property
    def is_ipxe(self) -> bool:
        """The client is iPXE: option 77 "iPXE" (raw or RFC 3004 form) or option 175."""
        uc = self.user_class or b""
        return b"iPXE" in uc or self.ipxe_features is not None


@dataclass(frozen=True)
class TftpEvent(TftpFields, Packet):
    """One TFTP packet: a request, DATA, ACK, ERROR or OACK."""


@dataclass(frozen=True)
class HttpEvent(HttpFields, Packet):
    """The start of an HTTP request or response found at the start of a TCP segment."""

    range: str | None = None
    host: str | None = None


@dataclass(frozen=True)
class Capture:
    """Everything decoded from one pcap, in frame order."""

    path: str
    frames: int
    dhcp: list[DhcpEvent] = field(default_factory=list)
    tftp: list[TftpEvent] = field(default_factory=list)
    http: list[HttpEvent] = field(default_factory=list)
    skipped: int = 0  # frames that were not IPv4 (ARP, IPv6, fragments)
    duplicates: int = 0  # copies of one packet in `-i any` captures, dropped
    # dhcp events by chaddr, built on first use by dhcp_of(): a judge asking for each of
    # 5,000 machines' packets scanned 2 M events per machine and never finished
    _dhcp_by_mac: dict[str, list[DhcpEvent]] | None = field(
        default=None, init=False, repr=False, compare=False)

    def dhcp_of(self, mac: str) -> list[DhcpEvent]:
        """The DHCP events whose chaddr is ``mac``, in frame order. Built once, on the first
        call: add no events to :attr:`dhcp` after asking."""
        index = self._dhcp_by_mac
        if index is None:
            index = {}
            for e in self.dhcp:
                index.setdefault(e.chaddr, []).append(e)
            object.__setattr__(self, "_dhcp_by_mac", index)  # frozen: a cache, not state
        return list(index.get(mac, ()))
