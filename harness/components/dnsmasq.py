"""dnsmasq as the site's ordinary DHCP server: a typed config that renders its argv.

The site DHCP server hands out addresses and nothing about booting (no
option 60, no boot file): the Boot Proxy under test adds that. Two traps
from MACHINE-NOTES.md are avoided by default: the ping before an offer
(``--no-ping``) and iPXE's ~16 s wait for an IPv6 router advertisement
(``--enable-ra`` with an ``ra-only`` range).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.components.base import Component
from harness.components.binaries import require_binary
from harness.lab.lab import Lab
from harness.lab.waits import LogLine, UdpBound


@dataclass(frozen=True)
class DhcpRange:
    """An IPv4 lease range served on the config's interface."""

    start: str
    end: str
    netmask: str
    lease_time: str = "1h"
    tag: str | None = None
    router: str | None = None

    def size(self) -> int:
        """Addresses in the range, both ends included."""
        return int(ipaddress.IPv4Address(self.end)) - int(ipaddress.IPv4Address(self.start)) + 1


#: dnsmasq hands out at most this many leases unless told otherwise (--dhcp-lease-max)
DNSMASQ_DEFAULT_LEASE_MAX = 1000


@dataclass(frozen=True)
class DnsmasqConfig:
    """Everything dnsmasq needs, rendered to argv by :meth:`argv` (no config file is read).

    ``options`` are extra ``--dhcp-option`` values (e.g. ``"option:router,10.0.0.1"``);
    ``force_options`` are sent even when not requested — used to model a
    misconfigured site server that sends ``60,PXEClient`` (SITE-2).
    ``lease_max`` is how many leases dnsmasq may hold; None means the pool's size when the
    ranges hold more than dnsmasq's own default of 1,000, which would otherwise leave every
    machine past the 1,000th without an address (the 5,000-machine storm did).
    """

    interface: str
    lease_file: Path
    ranges: tuple[DhcpRange, ...] = ()
    router: str | None = None
    ipv6_ra: bool = True
    no_ping: bool = True
    log_dhcp: bool = True
    options: tuple[str, ...] = ()
    force_options: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    binary: str = "dnsmasq"
    hosts_file: Path | None = None
    lease_max: int | None = None

    def effective_lease_max(self) -> int | None:
        """The --dhcp-lease-max to pass, or None to keep dnsmasq's default."""
        if self.lease_max is not None:
            return self.lease_max
        pool = sum(rng.size() for rng in self.ranges)
        return pool if pool > DNSMASQ_DEFAULT_LEASE_MAX else None

    def argv(self) -> list[str]:
        """The full command line: foreground, logging to stderr, DNS off."""
        args = [
            self.binary,
            "--keep-in-foreground",
            "--log-facility=-",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--user=root",
            "--group=root",
            f"--pid-file={self.lease_file.with_suffix('.pid')}",
            f"--interface={self.interface}",
            "--bind-interfaces",
            "--except-interface=lo",
            f"--dhcp-leasefile={self.lease_file}",
            "--dhcp-authoritative",
        ]
        if self.log_dhcp:
            args.append("--log-dhcp")
        if self.no_ping:
            args.append("--no-ping")
        for rng in self.ranges:
            tag = f"set:{rng.tag}," if rng.tag else ""
            args.append(
                f"--dhcp-range={tag}{rng.start},{rng.end},{rng.netmask},{rng.lease_time}"
            )
            if rng.tag and rng.router:
                args.append(f"--dhcp-option=tag:{rng.tag},option:router,{rng.router}")
        lease_max = self.effective_lease_max()
        if lease_max is not None:
            args.append(f"--dhcp-lease-max={lease_max}")
        if self.router is not None:
            args.append(f"--dhcp-option=option:router,{self.router}")
        else:
            args.append("--dhcp-option=option:router")  # send no router: the lab is not routed
        if self.ipv6_ra:
            args += ["--enable-ra", f"--dhcp-range=::,constructor:{self.interface},ra-only"]
        if self.hosts_file is not None:
            args.append(f"--dhcp-hostsfile={self.hosts_file}")
        args += [f"--dhcp-option={opt}" for opt in self.options]
        args += [f"--dhcp-option-force={opt}" for opt in self.force_options]
        if any(a.startswith("--dhcp-lease-max") for a in self.extra_args):
            # dnsmasq exits with "illegal repeated flag" when it is given twice
            raise ValueError("extra_args set --dhcp-lease-max, which DnsmasqConfig renders: "
                             "set lease_max instead")
        args += list(self.extra_args)
        return args


class RendersArgv(Protocol):
    """A dnsmasq config: it renders the command line that runs it."""

    def argv(self) -> list[str]:
        """dnsmasq's argv for this config."""
        ...


def require_dnsmasq() -> str:
    """Path of the dnsmasq binary, or a one-line DependencyError naming the package."""
    return require_binary("dnsmasq", "dnsmasq-base")


class DnsmasqComponent(Component):
    """One dnsmasq process on ``segment``'s address of lab host ``host``, run from a config
    that renders its argv: the life the site DHCP server and the ProxyDHCP share."""

    lab: Lab
    host: str
    segment: str
    config: RendersArgv

    @property
    def server_ip(self) -> str:
        """The address clients see: option 54 (and, for the proxy, siaddr and TFTP)."""
        return self.lab.address(self.host, self.segment)

    def start(self) -> None:
        """Launch dnsmasq in the host's namespace."""
        self.process = self.lab.start_process(self.name, self.config.argv(), self.host)


class SiteDhcp(DnsmasqComponent):
    """The site's own DHCP server on one host of a lab, serving one segment."""

    config: DnsmasqConfig

    def __init__(
        self,
        lab: Lab,
        host: str,
        segment: str,
        *,
        force_options: tuple[str, ...] = (),
        name: str | None = None,
        relayed_segments: tuple[str, ...] = (),
        relay_routers: dict[str, str] | None = None,
        reservations: dict[str, str] | None = None,
        router: str | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        """``reservations`` (MAC -> IPv4) become dnsmasq host entries: with ``--no-ping``
        dnsmasq holds nothing between OFFER and REQUEST, and in a storm of hundreds of
        machines it NAKs many of them ("address in use") over and over."""
        relay_routers = relay_routers or {}
        self.lab = lab
        self.host = host
        self.segment = segment
        self.name = name or f"site-dhcp-{segment}"
        info = lab.link(host, segment)
        # its own segment plus any segment whose relay forwards to it (matched by giaddr);
        # a relayed segment's router is its relay, so machines there reach the servers
        own = DhcpRange(*lab.dhcp_pool(segment), str(lab.subnets[segment].netmask))
        ranges = (own, *(
            DhcpRange(*lab.dhcp_pool(seg), str(lab.subnets[seg].netmask), tag=seg,
                      router=relay_routers.get(seg))
            for seg in relayed_segments
        ))
        hosts_file = None
        if reservations:
            hosts_file = lab.temp_dir / f"{self.name}.hosts"
            hosts_file.write_text("".join(f"{mac},{ip}\n" for mac, ip in reservations.items()))
        self.config = DnsmasqConfig(
            interface=info.host_iface,
            lease_file=lab.ram_dir / f"{self.name}.leases",  # fsynced per ACK: see ram_dir
            hosts_file=hosts_file,
            ranges=ranges,
            ipv6_ra=lab.topology.segment(segment).ipv6_ra,
            force_options=force_options,
            router=router,
            options=options,
            binary=require_dnsmasq(),
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when dnsmasq has logged its DHCP range and holds its socket on UDP 67."""
        self.wait_for(LogLine(r"DHCP, IP range"), UdpBound(67), timeout=timeout)

    def leases(self) -> list[dict[str, str]]:
        """Current leases from dnsmasq's lease file: expiry, mac, ip, hostname, client id."""
        out: list[dict[str, str]] = []
        try:
            text = self.config.lease_file.read_text()
        except OSError:
            return out
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                out.append({"expiry": parts[0], "mac": parts[1], "ip": parts[2],
                            "hostname": parts[3]})
        return out


