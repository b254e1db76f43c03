"""dnsmasq in ProxyDHCP mode: a second, independent Boot Proxy to test emulators and rules against.

dnsmasq is the implementation most sites already run, so the firmware
emulators and the conformance rules must agree with it as well as with
flexlab's own Boot Proxy. The config is typed data that renders argv through
:class:`~harness.components.dnsmasq.DnsmasqConfig` (one renderer for both
dnsmasq roles): ``--dhcp-range=<net>,proxy`` hands out no address, one
``--pxe-service`` per architecture names the iPXE binary for it, a client
whose user class is ``iPXE`` gets the script URL instead (IPXE-1, breaking the
chainload loop), dnsmasq's own TFTP server serves the binaries, and MAC
filtering answers only the MACs listed (SILENT-5).
"""

from __future__ import annotations

import ipaddress
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from controlplane.client import ControlPlaneClient
from harness.components.dnsmasq import DnsmasqComponent, DnsmasqConfig, require_dnsmasq
from harness.errors import DependencyError
from harness.lab.lab import Lab
from harness.lab.waits import UdpBound

IPXE_DIR = Path("/usr/lib/ipxe")

#: dnsmasq's client-system names (CSA) for the architectures the emulators boot, and the
#: Debian ``ipxe`` binary each one chainloads.
DEFAULT_SERVICES: tuple[tuple[str, str], ...] = (
    ("x86PC", "undionly.kpxe"),
    ("x86-64_EFI", "ipxe.efi"),
    ("BC_EFI", "ipxe.efi"),
)


@dataclass(frozen=True)
class PxeService:
    """One ``--pxe-service``: clients of architecture ``csa`` (dnsmasq's name) boot ``bootfile``."""

    csa: str
    bootfile: str
    menu_text: str = "flexlab network boot"


@dataclass(frozen=True)
class DnsmasqProxyConfig:
    """A ProxyDHCP dnsmasq: typed, renders argv via :class:`DnsmasqConfig`.

    ``script_url`` is what an iPXE client (user class ``iPXE``) is given; it may
    contain iPXE settings such as ``${mac}``, which dnsmasq passes through
    verbatim. ``served_macs`` turns MAC filtering on: only those MACs get any
    answer (``None`` answers everyone; an empty tuple answers no one).
    ``tftp_max`` raises dnsmasq's limit of 50 concurrent transfers.
    ``pxe_vendors`` extends the option-60 prefixes dnsmasq treats as PXE
    (e.g. ``HW-Client`` for Huawei ROMs). ``relayed_subnets`` are the subnets of
    segments whose DHCP relays forward to this proxy: dnsmasq answers a relayed
    request only when a ``dhcp-range`` matches its giaddr, so each gets a proxy range.
    """

    interface: str
    subnet: str
    work_dir: Path
    tftp_root: Path
    script_url: str
    services: tuple[PxeService, ...] = tuple(PxeService(c, f) for c, f in DEFAULT_SERVICES)
    served_macs: tuple[str, ...] | None = None
    pxe_vendors: tuple[str, ...] = ("PXEClient", "HW-Client")
    log_dhcp: bool = True
    reply_delay: int | None = None
    tftp_max: int = 1000
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    binary: str = "dnsmasq"
    relayed_subnets: tuple[str, ...] = ()

    def proxy_args(self) -> list[str]:
        """The proxy-mode part of the command line (everything beyond the shared base)."""
        args = [
            *(f"--dhcp-range={net.network_address},proxy,{net.netmask}"
              for net in (ipaddress.IPv4Network(s, strict=False)
                          for s in (self.subnet, *self.relayed_subnets))),
            "--dhcp-userclass=set:ipxe,iPXE",
            f"--dhcp-pxe-vendor={','.join(self.pxe_vendors)}",
        ]
        for svc in self.services:
            args.append(f"--pxe-service=tag:!ipxe,{svc.csa},{svc.menu_text},{svc.bootfile}")
        # A client that is already iPXE gets the script: same menu shape, the URL as "basename".
        for svc in self.services:
            args.append(f"--pxe-service=tag:ipxe,{svc.csa},{svc.menu_text},{self.script_url}")
        # dnsmasq serves only 50 transfers at once by default; a rack boots more than that
        args += ["--enable-tftp", f"--tftp-root={self.tftp_root}", "--tftp-secure",
                 f"--tftp-max={self.tftp_max}"]
        if self.reply_delay is not None:
            args.append(f"--dhcp-reply-delay={self.reply_delay}")
        if self.served_macs is not None:
            args += [f"--dhcp-host={mac.lower()},set:known" for mac in self.served_macs]
            args.append("--dhcp-ignore=tag:!known")
        return args

    def dnsmasq(self) -> DnsmasqConfig:
        """The shared dnsmasq config this proxy renders through (no ranges, no RA)."""
        return DnsmasqConfig(
            interface=self.interface,
            lease_file=self.work_dir / "proxy.leases",
            ranges=(),
            ipv6_ra=False,
            log_dhcp=self.log_dhcp,
            extra_args=(*self.proxy_args(), *self.extra_args),
            binary=self.binary,
        )

    def argv(self) -> list[str]:
        """The full command line."""
        return self.dnsmasq().argv()


def served_macs_from_control_plane(api: ControlPlaneClient,
                                   clusters: Iterable[str]) -> tuple[str, ...]:
    """The MACs the Control Plane assigned to ``clusters``: the filter for ``served_macs``.

    ``api`` is a Control Plane admin client (``harness.components.controlplane``);
    dnsmasq reads its filter only at start, so restart the proxy after assignments change.
    """
    return tuple(sorted({m.mac.lower() for c in clusters for m in api.machines(c)}))


def prepare_tftp_root(root: Path, files: tuple[str, ...] = ("undionly.kpxe", "ipxe.efi"),
                      source: Path = IPXE_DIR) -> Path:
    """Copy the Debian ipxe binaries into ``root`` (``--tftp-secure`` wants files dnsmasq owns)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in files:
        src = source / name
        if not src.is_file():
            raise DependencyError(f"{src} not found: apt-get install ipxe")
        shutil.copyfile(src, root / name)
    return root


class DnsmasqProxy(DnsmasqComponent):
    """dnsmasq as a ProxyDHCP + TFTP server on one lab host, serving one segment (and the
    ``relayed_segments`` whose relays forward to it)."""

    config: DnsmasqProxyConfig

    def __init__(
        self,
        lab: Lab,
        host: str,
        segment: str,
        *,
        script_url: str,
        served_macs: tuple[str, ...] | None = None,
        tftp_root: Path | None = None,
        name: str | None = None,
        extra_args: tuple[str, ...] = (),
        relayed_segments: tuple[str, ...] = (),
    ) -> None:
        self.lab = lab
        self.host = host
        self.segment = segment
        self.name = name or f"dnsmasq-proxy-{segment}"
        work = lab.temp_dir / self.name
        work.mkdir(parents=True, exist_ok=True)
        root = tftp_root if tftp_root is not None else prepare_tftp_root(work / "tftp")
        self.config = DnsmasqProxyConfig(
            interface=lab.link(host, segment).host_iface,
            subnet=str(lab.subnets[segment]),
            work_dir=work,
            tftp_root=root,
            script_url=script_url,
            served_macs=served_macs,
            extra_args=extra_args,
            binary=require_dnsmasq(),
            relayed_subnets=tuple(str(lab.subnets[s]) for s in relayed_segments),
        )

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when dnsmasq holds its sockets on UDP 67, 4011 and 69."""
        # an early exit is almost always a bad argv: the log shows it
        self.wait_for(UdpBound(67, 4011, 69), timeout=timeout)
