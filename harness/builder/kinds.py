"""The component kinds a build makes, passed in rather than chosen by if/elif.

As Mininet takes its switch and host classes, :class:`Kinds` names what the builder
instantiates for each plan item: the lab, the Control Plane, site DHCP, relays,
snooping, one factory per Boot Proxy kind (``process``, ``container``, ``dnsmasq``:
the plan decided which), the machine driver and the boot files. Tests pass fakes;
a new proxy kind is one more entry in :data:`PROXY_KINDS`.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__
from harness.components.base import Component
from harness.components.bootproxy import BootProxy
from harness.components.container import DEFAULT_IMAGE, BootProxyContainer
from harness.components.controlplane import CP_PORT, ControlPlane
from harness.components.dnsmasq_proxy import DnsmasqProxy
from harness.components.relay import DhcpRelay
from harness.components.snooping import enable_snooping
from harness.errors import FlexlabError
from harness.lab import Lab, Topology
from harness.localboot import stand_in_artifact
from harness.plan.items import (
    BootProfile,
    ControlPlanePlan,
    DhcpServerPlan,
    ProxyPlan,
    RelayPlan,
    SitePlan,
)
from harness.reports.bundle import tool_version
from harness.scenario.drivers import MachineDriver
from harness.scenario.model import Scenario
from harness.site_build import BuiltSite, control_plane_args, dhcp_server, start_site

CLOUD_CP_PORT = 443  # a cloud Control Plane listens where the site's WAN lets traffic out


@dataclass(frozen=True)
class ProxyStart:
    """What a proxy factory gets: the built lab, the plan, the proxy's plan item, the
    Control Plane URL it is given, its registration token and the CA to verify with."""

    lab: Lab
    site: SitePlan
    proxy: ProxyPlan
    cp_url: str
    token: str
    cp_ca: Path | None


ProxyFactory = Callable[[ProxyStart], Component]


def process_proxy(s: ProxyStart) -> Component:
    """The Boot Proxy as a process in its lab host."""
    return BootProxy(s.lab, s.proxy.name, list(s.proxy.segments), cp_url=s.cp_url,
                     cp_token=s.token, name=s.proxy.name, cp_ca=s.cp_ca)


def container_proxy(s: ProxyStart) -> Component:
    """The Boot Proxy image as a container (what a site deploys)."""
    return BootProxyContainer(s.lab, s.proxy.name, list(s.proxy.segments),
                              image=s.proxy.image or DEFAULT_IMAGE, cp_url=s.cp_url,
                              cp_token=s.token, name=s.proxy.name, cp_ca=s.cp_ca)


def dnsmasq_proxy(s: ProxyStart) -> Component:
    """dnsmasq in proxy mode: the second, independent ProxyDHCP implementation, filtered
    to the MACs the plan says this proxy serves. It serves no HTTP: iPXE's script URL
    points at port 8080 of the proxy host, where nothing answers, so machines stop there."""
    if len(s.proxy.segments) != 1:
        raise FlexlabError(f"proxy {s.proxy.name!r}: kind dnsmasq serves exactly one segment")
    seg = s.proxy.segments[0]
    relayed = tuple(r.downstream for r in s.site.relays if r.upstream == seg)
    return DnsmasqProxy(
        s.lab, s.proxy.name, seg, name=f"dnsmasq-proxy-{s.proxy.name}",
        script_url=f"http://{s.lab.address(s.proxy.name, seg)}:8080/boot/${{mac}}.ipxe",
        served_macs=s.proxy.served_macs, relayed_segments=relayed)


PROXY_KINDS: Mapping[str, ProxyFactory] = {
    "process": process_proxy, "container": container_proxy, "dnsmasq": dnsmasq_proxy}


def dhcp_relay(lab: Lab, plan: RelayPlan) -> Component:
    """dhcrelay from the plan's downstream segment to its upstream servers."""
    return DhcpRelay(lab, plan.host, plan.downstream, plan.upstream,
                     [s.address(lab.address) for s in plan.servers])


def control_plane(lab: Lab, site: SitePlan, built: BuiltSite,
                  which: ControlPlanePlan | None = None) -> ControlPlane:
    """The Control Plane where the plan put it: TLS (or a deliberately bad certificate),
    the address clients use through a NAT or tunnel, its DNS updater's flags, and port
    443 in the cloud (what a site's WAN lets out). ``which``: one of a mixed site's two
    (default: the main one)."""
    cp = which or site.control_plane
    main = cp is site.control_plane
    return ControlPlane(lab, cp.host, tls=cp.tls, tls_fault=cp.tls_fault,
                        advertised=built.control_plane_address(lab, site) if main else None,
                        extra_args=control_plane_args(lab, site, built) if main else (),
                        port=CLOUD_CP_PORT if cp.placement == "cloud" else CP_PORT,
                        name=cp.name)


def site_dhcp(lab: Lab, server: DhcpServerPlan, built: BuiltSite) -> Component:
    """A site DHCP server of the plan's kind, with its reserved pools resolved against the
    built lab's DHCP ranges."""
    leases: dict[str, str] = {}
    for pool in server.reserved:
        leases.update(pool.leases(lab.dhcp_pool(pool.segment)[0]))
    return dhcp_server(lab, server, built, leases or None)


def boot_artifacts(profile: BootProfile) -> tuple[bytes | Path, bytes | Path]:
    """The kernel and initrd machines boot: the node image (built and cached by content
    hash), or stand-in bytes emulated machines fetch over HTTP but never run."""
    if profile.artifacts == "node-image":
        from nodeimage.build import build_image

        image = build_image()
        return image.kernel, image.initrd
    return (stand_in_artifact(profile.kernel, 256 * 1024),
            stand_in_artifact(profile.initrd, 512 * 1024))


def default_driver(lab: Lab, scenario: Scenario) -> MachineDriver:
    """Emulated machines in the sim tier, libvirt VMs in the vm tier."""
    if scenario.tier == "vm":
        from harness.builder.vm_driver import VmDriver

        return VmDriver(lab, scenario)
    from harness.builder.sim_driver import SimDriver

    return SimDriver(lab, scenario)


def new_lab(topology: Topology, reports_dir: Path) -> Lab:
    """A lab for ``topology`` whose evidence goes under ``reports_dir``."""
    return Lab(topology, reports_dir=reports_dir)


@dataclass(frozen=True)
class Kinds:
    """Everything the builder instantiates, by plan item (defaults: the real ones)."""

    lab: Callable[[Topology, Path], Lab] = new_lab
    control_plane: Callable[..., ControlPlane] = control_plane
    whole_site: Callable[[contextlib.ExitStack, Lab, SitePlan], BuiltSite] = start_site
    site_dhcp: Callable[[Lab, DhcpServerPlan, BuiltSite], Component] = site_dhcp
    relay: Callable[[Lab, RelayPlan], Component] = dhcp_relay
    snooping: Callable[[Lab, str, list[str]], object] = enable_snooping
    proxies: Mapping[str, ProxyFactory] = field(default_factory=lambda: dict(PROXY_KINDS))
    driver: Callable[[Lab, Scenario], MachineDriver] = default_driver
    artifacts: Callable[[BootProfile], tuple[bytes | Path, bytes | Path]] = boot_artifacts


def versions() -> dict[str, str]:
    """Versions of what a run used, for the report and the results bundle."""
    return {
        "flexlab": __version__,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "dnsmasq": tool_version(["dnsmasq", "--version"]),
        "tcpdump": tool_version(["tcpdump", "--version"]),
    }
