"""Declared topology: plain typed data, validated, with no side effects.

A topology is declared first and built later by :class:`harness.lab.Lab`
(Mininet's declare-then-build): everything wrong with it is reported here,
before any namespace exists.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from harness.errors import TopologyError

_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")


class Named(Protocol):
    """Anything declared under a name: a segment, a host, a planned proxy."""

    @property
    def name(self) -> str: ...  # the declared name


N = TypeVar("N", bound=Named)


def by_name(items: Iterable[N], name: str) -> N | None:
    """The first of ``items`` called ``name``, or None: the one lookup behind a
    topology's and a plan's accessors, each of which raises its own error when absent."""
    return next((item for item in items if item.name == name), None)


class LinkState(enum.Enum):
    """Life of one host link, tracked by the lab (containerlab-style)."""

    DECLARED = "declared"
    UP = "up"
    DOWN = "down"
    REMOVED = "removed"


@dataclass(frozen=True)
class Segment:
    """One L2 domain: a Linux bridge inside the lab's own namespace.

    ``subnet`` is chosen at random per lab when left ``None`` (a /``prefixlen``:
    the DHCP pool is its upper half, so size it for the machines); ``ipv6_ra``
    asks the segment's DHCP server to send router advertisements (iPXE waits
    ~16 s for one otherwise).
    """

    name: str
    subnet: str | None = None
    ipv6_ra: bool = True
    prefixlen: int = 24


@dataclass(frozen=True)
class HostLink:
    """A host's attachment to a segment.

    ``address`` is ``"auto"`` (the next free static address of the segment),
    an explicit IPv4 address, or ``None`` for an interface left unaddressed
    (a DHCP client's).
    """

    segment: str
    address: str | None = "auto"


@dataclass(frozen=True)
class Host:
    """A network namespace attached to one or more segments; interfaces are eth0, eth1, …"""

    name: str
    links: tuple[HostLink, ...] = ()
    forwarding: bool = False


def _declared(items: Iterable[N], name: str, what: str) -> N:
    found = by_name(items, name)
    if found is None:
        raise TopologyError(f"unknown {what} {name!r}")
    return found


@dataclass(frozen=True)
class Topology:
    """Segments and hosts of one lab. :meth:`validate` raises on any inconsistency."""

    segments: tuple[Segment, ...] = ()
    hosts: tuple[Host, ...] = field(default_factory=tuple)

    def segment(self, name: str) -> Segment:
        """The segment called ``name``."""
        return _declared(self.segments, name, "segment")

    def host(self, name: str) -> Host:
        """The host called ``name``."""
        return _declared(self.hosts, name, "host")

    def validate(self) -> None:
        """Raise :class:`TopologyError` naming the first problem found."""
        seen_segments: set[str] = set()
        subnets: dict[str, ipaddress.IPv4Network] = {}
        for seg in self.segments:
            _check_name("segment", seg.name)
            if seg.name in seen_segments:
                raise TopologyError(f"duplicate segment name {seg.name!r}")
            seen_segments.add(seg.name)
            if not 16 <= seg.prefixlen <= 29:
                raise TopologyError(f"segment {seg.name!r}: prefixlen {seg.prefixlen} is not "
                                    "between 16 and 29")
            if seg.subnet is not None:
                net = _parse_subnet(seg)
                for other, other_net in subnets.items():
                    if net.overlaps(other_net):
                        raise TopologyError(
                            f"segment {seg.name!r} subnet {net} overlaps segment "
                            f"{other!r} subnet {other_net}"
                        )
                subnets[seg.name] = net
        seen_hosts: set[str] = set()
        addresses: dict[str, str] = {}
        for host in self.hosts:
            _check_name("host", host.name)
            if host.name in seen_hosts:
                raise TopologyError(f"duplicate host name {host.name!r}")
            seen_hosts.add(host.name)
            if not host.links:
                raise TopologyError(f"host {host.name!r} has no links")
            for link in host.links:
                if link.segment not in seen_segments:
                    raise TopologyError(
                        f"host {host.name!r} links to unknown segment {link.segment!r} "
                        f"(declared: {', '.join(sorted(seen_segments)) or 'none'})"
                    )
                if link.address in (None, "auto"):
                    continue
                _check_static_address(host, link, subnets)
                if link.address in addresses:
                    raise TopologyError(
                        f"address clash: {link.address} is given to both "
                        f"{addresses[link.address]!r} and {host.name!r}"
                    )
                addresses[link.address] = host.name


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise TopologyError(
            f"{kind} name {name!r} must be 1-10 lower-case letters or digits, starting "
            "with a letter (it becomes part of interface and namespace names)"
        )


def _parse_subnet(seg: Segment) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(seg.subnet or "", strict=True)
    except ValueError as exc:
        raise TopologyError(f"segment {seg.name!r}: bad subnet {seg.subnet!r}: {exc}") from None
    if not net.is_private or net.prefixlen > 29:
        raise TopologyError(
            f"segment {seg.name!r}: subnet {net} must be private and at least a /29"
        )
    return net


def _check_static_address(
    host: Host, link: HostLink, subnets: dict[str, ipaddress.IPv4Network]
) -> None:
    try:
        addr = ipaddress.IPv4Address(link.address or "")
    except ValueError:
        raise TopologyError(
            f"host {host.name!r}: bad address {link.address!r} on segment {link.segment!r}"
        ) from None
    net = subnets.get(link.segment)
    if net is None:
        raise TopologyError(
            f"host {host.name!r}: a fixed address needs a fixed subnet on segment "
            f"{link.segment!r}"
        )
    if addr not in net or addr in (net.network_address, net.broadcast_address):
        raise TopologyError(f"host {host.name!r}: {addr} is not a host address of {net}")
