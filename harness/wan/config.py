"""The WAN router's settings, and everything they render: sysctls, the nftables ruleset,
WireGuard configs and the commands that apply them (STYLE rule 6: config objects render).

:class:`WanRouterConfig` is plain declared data (a scenario's ``wan:`` maps onto it): lab
host and segment names, optional fixed addresses, the egress ports, ``private``
(WireGuard), loss and latency. Interfaces and addresses chosen when the lab is built are
resolved into a :class:`WanAddressing`; every ``render`` method takes one, so the output
is a pure function of (config, addressing) and unit-tested on reference files.

The router is a lab host with one link on the site segment and one on the WAN segment;
the cloud is a lab host on the WAN segment. Site hosts route to the cloud through the
router, which masquerades them (NAT) and lets out only TCP to ``egress_ports``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TopologyError
from harness.lab.topology import Host, HostLink, Segment, Topology

DEFAULT_EGRESS_PORTS = (80, 443, 8888)
TABLE = "flexlab_wan"
ROUTER, CLOUD = "router", "cloud"  # the two ends of the WireGuard tunnel
# One-way persistent keepalive: the router is behind its own NAT and opens the tunnel,
# so the cloud can only answer; 25 s is wg(8)'s advice for keeping a NAT mapping open.
KEEPALIVE_S = 25
_FLOW_KEY = "ipv4_addr . ipv4_addr . inet_proto . inet_service"


class WanConfigError(TopologyError):
    """A WAN router declaration is inconsistent; raised before anything is built."""


def wg_iface(lab_id: str, side: str) -> str:
    """WireGuard interface name of one tunnel end: ``<lab id>-wgr`` / ``<lab id>-wgc``.

    It carries the lab id because wireguard-go's control socket
    (``/var/run/wireguard/<iface>.sock``) is shared by every namespace on the host.
    """
    return f"{lab_id}-wg{side[0]}"


@dataclass(frozen=True)
class WanAddressing:
    """The router's interfaces and every address, as built in one lab."""

    lab_id: str
    site_iface: str  # the router's interface on the site segment
    wan_iface: str  # the router's interface on the WAN segment
    router_site: ipaddress.IPv4Interface  # the site hosts' gateway
    router_wan: ipaddress.IPv4Interface  # what the cloud sees through NAT
    cloud_wan: ipaddress.IPv4Interface
    site_subnet: ipaddress.IPv4Network
    tunnel_router: ipaddress.IPv4Interface
    tunnel_cloud: ipaddress.IPv4Interface

    def wg_iface(self, side: str) -> str:
        """WireGuard interface of ``side`` (ROUTER or CLOUD)."""
        return wg_iface(self.lab_id, side)


@dataclass(frozen=True)
class WanRouterConfig:
    """A WAN router between a site segment and a cloud namespace.

    ``router`` and ``cloud`` are lab host names; ``site_address`` is the router's
    address on ``site_segment`` (the site's gateway), ``router_wan_address`` and
    ``cloud_address`` are on ``wan_segment`` (``"auto"``: picked at build, as for any
    lab link; a fixed one needs ``wan_subnet``). ``egress_ports`` are the TCP ports the
    site may open towards the cloud; nothing may open a connection into the site.
    ``private`` adds a WireGuard tunnel router↔cloud on ``tunnel_subnet`` for
    site↔Control Plane traffic (same egress rule inside it). ``loss_pct`` drops that
    share of frames in each direction of the WAN link; ``latency_ms`` delays each
    direction (needs the kernel's netem).
    """

    router: str = "wan"
    site_segment: str = "lan"
    site_address: str = "auto"
    wan_segment: str = "wan"
    wan_subnet: str | None = None
    router_wan_address: str = "auto"
    cloud: str = "cloud"
    cloud_address: str = "auto"
    egress_ports: tuple[int, ...] = DEFAULT_EGRESS_PORTS
    private: bool = False
    tunnel_subnet: str = "10.200.0.0/30"
    wg_port: int = 51820
    loss_pct: float = 0.0
    latency_ms: int = 0

    # -- validation -----------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`WanConfigError` naming the first problem (names and addresses
        are checked by the lab's own Topology rules)."""
        for port in self.egress_ports:
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise WanConfigError(f"wan: egress port {port!r} is not a TCP port (1-65535)")
        dups = sorted({p for p in self.egress_ports if self.egress_ports.count(p) > 1})
        if dups:
            raise WanConfigError(f"wan: egress ports listed twice: {dups}")
        if not 0 <= self.loss_pct <= 100:
            raise WanConfigError(f"wan: loss {self.loss_pct}% is not between 0 and 100")
        if not 0 <= self.latency_ms <= 10_000:
            raise WanConfigError(f"wan: latency {self.latency_ms} ms is not 0-10000")
        if not 1 <= self.wg_port <= 65535:
            raise WanConfigError(f"wan: WireGuard port {self.wg_port} is not 1-65535")
        if self.site_segment == self.wan_segment:
            raise WanConfigError(f"wan: site and WAN segment are both {self.wan_segment!r}")
        if self.router == self.cloud:
            raise WanConfigError(f"wan: router and cloud are both host {self.cloud!r}")
        try:
            tunnel = ipaddress.IPv4Network(self.tunnel_subnet)
        except ValueError as exc:
            raise WanConfigError(f"wan: bad tunnel subnet {self.tunnel_subnet!r}: {exc}") from None
        if tunnel.prefixlen > 30 or not tunnel.is_private:
            raise WanConfigError(f"wan: tunnel subnet {tunnel} must be private and at least a /30")
        if self.wan_subnet is not None and tunnel.overlaps(ipaddress.IPv4Network(
                self.wan_subnet, strict=False)):
            raise WanConfigError(f"wan: tunnel subnet {tunnel} overlaps WAN subnet "
                                 f"{self.wan_subnet}")
        if self.site_address != "auto":
            try:
                ipaddress.IPv4Address(self.site_address)
            except ValueError:
                raise WanConfigError(f"wan: bad site address {self.site_address!r}") from None
        segment, (router, cloud) = self.topology_parts()
        # the lab's rules for names, the WAN subnet and its fixed addresses, on the WAN's
        # part alone (the site segment's subnet is the planner's to check)
        router = Host(router.name, (HostLink(self.site_segment), router.links[1]), True)
        Topology(segments=(Segment(self.site_segment), segment),
                 hosts=(router, cloud)).validate()

    def topology_parts(self) -> tuple[Segment, tuple[Host, Host]]:
        """What a planner adds to the site's Topology: the WAN segment, the router
        (forwarding, linked to site and WAN) and the cloud host (WAN only)."""
        segment = Segment(self.wan_segment, subnet=self.wan_subnet, ipv6_ra=False, prefixlen=29)
        router = Host(self.router, (HostLink(self.site_segment, self.site_address),
                                    HostLink(self.wan_segment, self.router_wan_address)),
                      forwarding=True)
        cloud = Host(self.cloud, (HostLink(self.wan_segment, self.cloud_address),))
        return segment, (router, cloud)

    def tunnel_addresses(self) -> tuple[ipaddress.IPv4Interface, ipaddress.IPv4Interface]:
        """(router, cloud) tunnel addresses: the first two hosts of ``tunnel_subnet``."""
        net = ipaddress.IPv4Network(self.tunnel_subnet)
        first, second = list(net.hosts())[:2]
        return (ipaddress.IPv4Interface(f"{first}/{net.prefixlen}"),
                ipaddress.IPv4Interface(f"{second}/{net.prefixlen}"))

    # -- rendering ------------------------------------------------------------------
    def sysctls(self) -> dict[str, str]:
        """The router namespace's sysctls, each with a reason:

        - forwarding on (it is a router);
        - routes through a link without carrier are ignored, so a cut WAN link means
          "no route": the router answers ICMP unreachable and a site connect fails at
          once instead of hanging on a dead next hop;
        - no ICMP rate limit, so every such connect gets its answer.
        """
        return {"net.ipv4.ip_forward": "1",
                "net.ipv4.conf.all.ignore_routes_with_linkdown": "1",
                "net.ipv4.icmp_ratelimit": "0"}

    def sysctl_argv(self) -> list[str]:
        """One ``sysctl -w`` for all of :meth:`sysctls`."""
        return ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in self.sysctls().items())]

    def outbound_ifaces(self, a: WanAddressing) -> list[str]:
        """Interfaces towards the cloud: the WAN link and, if private, the tunnel."""
        return [a.wan_iface, *([a.wg_iface(ROUTER)] if self.private else [])]

    def nft_ruleset(self, a: WanAddressing) -> str:
        """The router's nftables table: NAT, the egress firewall, its counters.

        Flows are remembered in dynamic sets keyed by interface, source, destination,
        protocol and port, each element with its own packet counter, so the report can
        say which flows crossed (or were stopped) in which direction and path.
        """
        out = self.outbound_ifaces(a)
        outs = "{ " + ", ".join(f'"{i}"' for i in out) + " }"
        site = f'"{a.site_iface}"'
        out_key = "oifname . ip saddr . ip daddr . meta l4proto . th dport"
        in_key = "iifname . ip saddr . ip daddr . meta l4proto . th dport"
        sets = "".join(
            f"\tset {name} {{\n\t\ttype ifname . {_FLOW_KEY}\n\t\tflags dynamic\n"
            "\t\tsize 65536\n\t\tcounter\n\t}\n\n"
            for name in ("out_accepted", "out_dropped", "in_dropped"))
        counters = [f"out_{path}_tcp_{port}" for path in self._paths()
                    for port in self.egress_ports]
        counters += ["out_dropped", "in_dropped", "in_replies"]
        counter_text = "".join(f"\tcounter {c} {{\n\t}}\n\n" for c in counters)
        allow = "".join(
            f'\t\tiifname {site} oifname "{iface}" tcp dport {port} '
            f'add @out_accepted {{ {out_key} }} counter name "out_{path}_tcp_{port}" accept\n'
            for path, iface in zip(self._paths(), out, strict=True)
            for port in self.egress_ports)
        refuse_in = (
            f"\t\tiifname {outs} meta l4proto {{ tcp, udp }} "
            f'add @in_dropped {{ {in_key} }} counter name "in_dropped" drop\n'
            f'\t\tiifname {outs} counter name "in_dropped" drop\n')
        return (
            f"table inet {TABLE} {{\n{sets}{counter_text}"
            "\tchain forward {\n"
            "\t\ttype filter hook forward priority filter; policy drop;\n"
            f"\t\tiifname {outs} oifname {site} ct state established,related "
            'counter name "in_replies" accept\n'
            f"{allow}"
            f"\t\tiifname {site} oifname {outs} meta l4proto {{ tcp, udp }} "
            f'add @out_dropped {{ {out_key} }} counter name "out_dropped" drop\n'
            f'\t\tiifname {site} oifname {outs} counter name "out_dropped" drop\n'
            f"{refuse_in}"
            "\t}\n\n"
            "\tchain input {\n"
            "\t\ttype filter hook input priority filter; policy accept;\n"
            f"\t\tiifname {outs} ct state established,related accept\n"
            # IPv6 link chatter (neighbour discovery, MLD): the WAN is IPv4 and IPv6 is
            # never forwarded; refused, but not counted as a flow into the site
            f"\t\tiifname {outs} meta nfproto ipv6 drop\n"
            f"{refuse_in}"
            "\t}\n\n"
            "\tchain postrouting {\n"
            "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
            f"\t\toifname {outs} meta nfproto ipv4 masquerade\n"
            "\t}\n"
            "}\n")

    def _paths(self) -> list[str]:
        return ["wan", *(["tunnel"] if self.private else [])]

    def wg_config(self, side: str, a: WanAddressing, private_key: str,
                  peer_public_key: str) -> str:
        """``wg setconf`` text for one tunnel end. The router opens the tunnel (it sits
        behind NAT and lets nothing in); the cloud listens on ``wg_port`` and only
        answers. Each end accepts exactly its peer's tunnel address."""
        if side == ROUTER:
            return ("[Interface]\n"
                    f"PrivateKey = {private_key}\n\n"
                    "[Peer]\n"
                    f"PublicKey = {peer_public_key}\n"
                    f"Endpoint = {a.cloud_wan.ip}:{self.wg_port}\n"
                    f"AllowedIPs = {a.tunnel_cloud.ip}/32\n"
                    f"PersistentKeepalive = {KEEPALIVE_S}\n")
        if side == CLOUD:
            return ("[Interface]\n"
                    f"PrivateKey = {private_key}\n"
                    f"ListenPort = {self.wg_port}\n\n"
                    "[Peer]\n"
                    f"PublicKey = {peer_public_key}\n"
                    f"AllowedIPs = {a.tunnel_router.ip}/32\n")
        raise ValueError(f"tunnel side must be {ROUTER!r} or {CLOUD!r}, not {side!r}")

    def wg_create_argv(self, side: str, a: WanAddressing, backend: str) -> list[str]:
        """How the tunnel interface comes to exist: a kernel link, or wireguard-go in the
        foreground (it cannot daemonize under nsenter/ip netns exec; measured 2026-12)."""
        iface = a.wg_iface(side)
        if backend == "kernel":
            return ["ip", "link", "add", iface, "type", "wireguard"]
        if backend == "userspace":
            return ["wireguard-go", "-f", iface]
        raise ValueError(f"WireGuard backend must be 'kernel' or 'userspace', not {backend!r}")

    def wg_setup_commands(self, side: str, a: WanAddressing, conf: Path) -> list[list[str]]:
        """Commands run in ``side``'s namespace once its interface exists."""
        iface = a.wg_iface(side)
        addr = a.tunnel_router if side == ROUTER else a.tunnel_cloud
        return [["wg", "setconf", iface, str(conf)],
                ["ip", "address", "add", str(addr), "dev", iface],
                ["ip", "link", "set", iface, "up"]]

    def site_routes(self, a: WanAddressing) -> list[tuple[str, str]]:
        """(destination, gateway) routes a site host needs to reach the cloud: the WAN
        subnet and, if private, the tunnel subnet, both via the router."""
        gateway = str(a.router_site.ip)
        routes = [(str(a.cloud_wan.network), gateway)]
        if self.private:
            routes.append((str(a.tunnel_cloud.network), gateway))
        return routes

    def control_plane_address(self, a: WanAddressing) -> str:
        """The address site components should use for a Control Plane in the cloud
        host: its tunnel address when private, else its WAN address (through NAT)."""
        return str((a.tunnel_cloud if self.private else a.cloud_wan).ip)
