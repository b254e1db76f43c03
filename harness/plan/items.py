"""A site plan's items: every wiring decision of a scenario run, as frozen typed data.

Nothing here touches the kernel, Docker or libvirt, and nothing holds an IPv4 address:
labs pick random subnets at build time so that several can share a host. Wherever a
component needs an address, the plan names a :class:`HostOn` (a lab host on a segment)
and the builder resolves it with ``lab.address(host, segment)``; a route's destination
is a segment, resolved to ``lab.subnets[segment]``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from harness.lab import Topology
from harness.lab.topology import by_name
from harness.rules.context import RuleContext
from harness.scenario.drivers import MachinePlan
from harness.scenario.model import Facts, Fault, Step
from harness.wan.config import WanRouterConfig

# lab.address(host, segment) as the builder has it; tests pass a fake
AddressOf = Callable[[str, str], str]
ProxyKind = Literal["process", "container", "dnsmasq"]
DriverKind = Literal["sim", "vm"]


@dataclass(frozen=True)
class HostOn:
    """Lab host ``host``'s link on ``segment``: its interface, and the address the lab
    gives it there when built (:meth:`address`)."""

    host: str
    segment: str

    def address(self, address_of: AddressOf) -> str:
        """The IPv4 address, from the built lab's ``address(host, segment)``."""
        return address_of(self.host, self.segment)

    def __str__(self) -> str:
        return f"{self.host}@{self.segment}"


class ServedOnSegment:
    """A site service run by lab host ``host`` for clients on ``segment`` (the plans of
    the site DHCP, DNS and NTP servers): the fields come from each plan's dataclass."""

    host: str
    segment: str

    @property
    def address(self) -> HostOn:
        """Where its clients reach it (a DHCP server's option 54, the DNS or NTP server
        announced to clients): its host's link on its segment."""
        return HostOn(self.host, self.segment)


# -- the Control Plane -----------------------------------------------------------------
CpPlacement = Literal["every-segment", "site", "cloud"]


@dataclass(frozen=True)
class ControlPlanePlan:
    """Where the Control Plane runs and how it is reached.

    ``placement`` is the decision: today ``every-segment`` (host ``cp`` has a link on
    every segment, so proxies and machines reach it without routing). The whole-site
    work adds a management segment, or a cloud namespace behind the WAN router; consumers
    only ever use their own ``cp_via`` (a :class:`HostOn`), so they need no change.
    """

    host: str
    placement: CpPlacement
    segments: tuple[str, ...]
    tls: bool
    tls_fault: str | None = None      # serve a certificate clients must refuse (WAN-3)
    dns_updates: bool = False          # put Ready nodes' names in the site's DNS
    name: str = "controlplane"         # component and log name (two on a mixed site)


@dataclass(frozen=True)
class ClusterSeed:
    """A cluster to create; ``expected_nodes`` already defaulted (its machines, else 1)."""

    name: str
    expected_nodes: int
    mode: str
    environment: str


@dataclass(frozen=True)
class MachineSeed:
    """One machine copy the Control Plane assigns to a cluster (strangers get none)."""

    key: str
    mac: str
    cluster: str
    role: str
    profile: str


@dataclass(frozen=True)
class ProxySeed:
    """A Boot Proxy registration (its token goes to the proxy when it starts)."""

    name: str
    clusters: tuple[str, ...]
    segments: tuple[str, ...]


@dataclass(frozen=True)
class BootProfile:
    """The boot profile machines get: artifact names, the kernel command line template,
    and where the artifacts come from (``node-image``: the real kernel and initrd, built
    and cached by content hash; ``stand-in``: bytes emulated machines fetch, never run)."""

    name: str
    kernel: str
    initrd: str
    cmdline: str
    artifacts: Literal["node-image", "stand-in"]


@dataclass(frozen=True)
class ControlPlaneSeed:
    """What the Control Plane is loaded with before anything else starts, in this order."""

    clusters: tuple[ClusterSeed, ...]
    profile: BootProfile | None        # None: no cluster, so no machine boots anything
    machines: tuple[MachineSeed, ...]
    proxies: tuple[ProxySeed, ...]
    faults: tuple[Fault, ...]
    later: tuple[MachineSeed, ...] = ()  # assigned by an ``assign`` step, not at the start


# -- site DHCP, relays, snooping -------------------------------------------------------
@dataclass(frozen=True)
class RelayedRange:
    """A relayed segment a site DHCP server also leases on (matched by giaddr); its
    router option is the relay, so machines there reach the servers."""

    segment: str
    router: HostOn


@dataclass(frozen=True)
class ReservedPool:
    """Fixed leases on one segment: ``macs`` get the DHCP pool's addresses in order, from
    its first (``lab.dhcp_pool``), so a boot storm measures the proxy, not dnsmasq NAKs."""

    segment: str
    macs: tuple[str, ...]

    def leases(self, first: str) -> dict[str, str]:
        """MAC -> IPv4, counting up from the pool's ``first`` address (the plan's
        validation made sure the pool is big enough)."""
        start = ipaddress.IPv4Address(first)
        return {mac: str(start + i) for i, mac in enumerate(self.macs)}


@dataclass(frozen=True)
class DhcpServerPlan(ServedOnSegment):
    """One site DHCP server (dnsmasq or Kea) on host ``host`` serving ``segment``.

    Whole site: ``router`` is the segment's gateway (option 3), ``dns`` and ``ntp`` the
    site's servers (options 6, 42), ``domain`` option 15; ``hostnames`` (MAC, name) name
    each machine for Kea's DDNS."""

    name: str                                   # component and log name
    host: str
    segment: str
    relayed: tuple[RelayedRange, ...]
    forced_options: tuple[str, ...]             # dnsmasq "code,value", e.g. 60,PXEClient
    reserved: tuple[ReservedPool, ...]
    kind: Literal["dnsmasq", "kea"] = "dnsmasq"
    router: HostOn | None = None
    dns: HostOn | None = None
    ntp: HostOn | None = None
    domain: str | None = None
    ddns: bool = False
    hostnames: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Route:
    """A static route on ``host``: ``segment``'s subnet via ``via``."""

    host: str
    segment: str
    via: HostOn


@dataclass(frozen=True)
class DefaultRoute:
    """``host``'s default route via ``via`` (whole site: off-segment traffic to a router)."""

    host: str
    via: HostOn


@dataclass(frozen=True)
class RelayPlan:
    """A DHCP relay on forwarding host ``host`` from ``downstream`` to ``upstream``.

    ``servers`` are every site DHCP server and Boot Proxy on the upstream segment (their
    addresses there); ``routes`` send each of them back to the downstream subnet through
    the relay's upstream address. ``giaddr`` is the relay's downstream address."""

    name: str
    host: str
    downstream: str
    upstream: str
    servers: tuple[HostOn, ...]
    routes: tuple[Route, ...]

    @property
    def giaddr(self) -> HostOn:
        """The relay agent address machines' requests carry upstream."""
        return HostOn(self.host, self.downstream)


@dataclass(frozen=True)
class SnoopingPlan:
    """A DHCP-snooping switch on ``segment``: server replies entering on any port but
    the ``trusted`` hosts' are dropped. Trust is resolved: ``site-dhcp`` became the
    segment's DHCP hosts, a relayed segment's relay port is trusted implicitly."""

    segment: str
    trusted: tuple[str, ...]


# -- Boot Proxies ----------------------------------------------------------------------
@dataclass(frozen=True)
class ProxyPlan:
    """A Boot Proxy under test, as it will run.

    ``kind`` is decided, not declared: ``container`` when the scenario or the run names an
    image, and always in the vm tier; ``image`` None means the container builder's
    default image. ``served_macs`` are its clusters' machines (the rules' MAC filter
    and the dnsmasq kind's ``--dhcp-host`` list). ``cp_via`` is the Control Plane
    address it is given.
    """

    name: str
    kind: ProxyKind
    image: str | None
    segments: tuple[str, ...]
    clusters: tuple[str, ...]
    served_macs: tuple[str, ...]
    start: Literal["at-start", "by-step"]
    cp_via: HostOn

    @property
    def addresses(self) -> tuple[HostOn, ...]:
        """One per segment it serves (the proxy's host is named after it)."""
        return tuple(HostOn(self.name, s) for s in self.segments)


# -- machines --------------------------------------------------------------------------
@dataclass(frozen=True)
class MachineCopy:
    """One machine copy: everything its driver needs, with the CP address unresolved."""

    key: str
    group: str
    mac: str
    firmware: str
    segment: str
    attach_host: str
    nic: str
    facts: Facts
    driver: DriverKind
    cluster: str | None
    role: str
    cp_via: HostOn

    def driver_plan(self, cp_url: str) -> MachinePlan:
        """The :class:`MachinePlan` a driver takes, once the lab is built and ``cp_via``
        resolved to the Control Plane's URL (its scheme and port are the component's)."""
        return MachinePlan(key=self.key, group=self.group, mac=self.mac,
                           firmware=self.firmware, segment=self.segment,
                           attach_host=self.attach_host, nic=self.nic, facts=self.facts,
                           cp_urls=(cp_url,))


# -- steps -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedStep:
    """A scenario step with its targets resolved: ``keys`` (machine copies it acts on)
    and ``link`` (the lab link a cut_link / restore_link / netem step acts on)."""

    at: float
    step: Step
    keys: tuple[str, ...] = ()
    link: HostOn | None = None

    @property
    def action(self) -> str:
        """The step's action name."""
        return str(self.step.action)


# -- the rules' view of the site -------------------------------------------------------
VENDOR_CLASSES = ("PXEClient", "HTTPClient", "HW-Client")


@dataclass(frozen=True)
class RuleInputs:
    """What the rules are told about the site (checked, not assumed), unresolved:
    each proxy address with the MACs it serves, the site DHCP servers' and the
    relays' (giaddr) addresses."""

    proxies: tuple[tuple[HostOn, tuple[str, ...]], ...]
    site_dhcp: tuple[HostOn, ...]
    relays: tuple[HostOn, ...]
    vendor_classes: tuple[str, ...] = VENDOR_CLASSES

    def context(self, address_of: AddressOf) -> RuleContext:
        """The :class:`RuleContext` of the built lab."""
        serves = {at.address(address_of): frozenset(macs) for at, macs in self.proxies}
        return RuleContext(
            proxies=frozenset(serves), serves=serves,
            site_dhcp=frozenset(a.address(address_of) for a in self.site_dhcp),
            relays=frozenset(a.address(address_of) for a in self.relays),
            vendor_classes=self.vendor_classes)


# -- whole-site slots (issue 13) -------------------------------------------------------
# wan: harness.wan's WanRouterConfig (declared router/cloud hosts and segments, egress
# ports, WireGuard), None until scenarios declare ``wan:``; the Control Plane may then
# move to the cloud host, and consumers' ``cp_via`` follows it.
@dataclass(frozen=True)
class DnsPlan(ServedOnSegment):
    """The site's DNS server (BIND; RFC 2136 updates for ``zone``, TSIG-signed), announced
    in DHCP option 6; ``updates`` says who places node names (control-plane, dhcp, none)."""

    host: str
    segment: str
    zone: str
    reverse: bool = True
    updates: str = "control-plane"


@dataclass(frozen=True)
class NtpPlan(ServedOnSegment):
    """The site's time source (chrony); ``offered``: announced in DHCP option 42."""

    host: str
    segment: str
    offered: bool = True


# -- the plan --------------------------------------------------------------------------
@dataclass(frozen=True)
class SitePlan:
    """Every wiring decision of one scenario run; :func:`harness.plan.plan` makes it.

    A builder builds ``topology``, then the Control Plane (``control_plane``, loaded
    with ``seed``), ``dhcp_servers``, ``relays`` (with their routes), ``snooping``,
    the ``at-start`` ``proxies``, adds ``machines`` to the ``tier``'s driver and plays
    ``steps`` in order; the judge reads ``rule_inputs`` and the copies' keys.
    ``wan``, ``dns`` and ``ntp`` are the whole site's pieces: None until scenarios
    declare them.
    """

    name: str
    tier: DriverKind
    time_scale: float
    timeout: float
    topology: Topology
    control_plane: ControlPlanePlan
    seed: ControlPlaneSeed
    dhcp_servers: tuple[DhcpServerPlan, ...]
    relays: tuple[RelayPlan, ...]
    snooping: tuple[SnoopingPlan, ...]
    proxies: tuple[ProxyPlan, ...]
    machine_hosts: tuple[tuple[str, str], ...]       # (segment, host machines attach via)
    machines: tuple[MachineCopy, ...]
    steps: tuple[PlannedStep, ...]
    rule_inputs: RuleInputs
    wan: WanRouterConfig | None = None
    dns: DnsPlan | None = None
    ntp: NtpPlan | None = None
    routes: tuple[Route | DefaultRoute, ...] = ()    # whole site: static routes to add
    gateways: tuple[tuple[str, HostOn], ...] = ()     # whole site: segment -> gateway
    # a mixed site (hybrid and standalone clusters): the on-site Control Plane of the
    # standalone clusters, with its own seed; ``control_plane`` is then the cloud one
    site_control_plane: ControlPlanePlan | None = None
    site_seed: ControlPlaneSeed | None = None

    def control_planes(self) -> tuple[tuple[ControlPlanePlan, ControlPlaneSeed], ...]:
        """Every Control Plane with its seed, the main one first."""
        out = [(self.control_plane, self.seed)]
        if self.site_control_plane is not None and self.site_seed is not None:
            out.append((self.site_control_plane, self.site_seed))
        return tuple(out)

    def control_plane_of(self, host: str) -> ControlPlanePlan:
        """The Control Plane running in lab host ``host`` (a ``cp_via.host``)."""
        for cp, _seed in self.control_planes():
            if cp.host == host:
                return cp
        return self.control_plane

    def proxy(self, name: str) -> ProxyPlan:
        """The proxy called ``name`` (KeyError naming it otherwise)."""
        found = by_name(self.proxies, name)
        if found is None:
            raise KeyError(f"no proxy {name!r} in plan {self.name!r}")
        return found

    def machine_host(self, segment: str) -> str:
        """The host machines on ``segment`` attach through."""
        return dict(self.machine_hosts)[segment]

    def keys(self, group: str) -> list[str]:
        """The copy keys of scenario machine ``group``, in order."""
        return [m.key for m in self.machines if m.group == group]

    def proxy_name(self, address: str, address_of: AddressOf) -> str:
        """The proxy behind server ``address`` (the address itself when no proxy has it)."""
        for p in self.proxies:
            if any(a.address(address_of) == address for a in p.addresses):
                return p.name
        return address
