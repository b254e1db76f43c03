"""ISC Kea as the site's DHCP server, with DDNS: a second, independent site-DHCP kind.

A real site often runs Kea rather than dnsmasq. The Boot Proxy must coexist with
it exactly as with dnsmasq (the same rules hold: Kea hands out addresses, never
boot data), and Kea's DHCP-DDNS daemon (D2) places each node's name in the
site's DNS by TSIG-signed RFC 2136 updates as the lease is granted — one of the
two ways the guide's "unique, meaningful, resolvable hostnames" come about.

Two processes in the DHCP host's namespace:

- ``kea-dhcp4``: leases from a memfile, one subnet per served segment (relayed
  segments are matched by giaddr through ``relay.ip-addresses``), reservations
  carrying each machine's hostname, options 6 (DNS), 15 (domain) and 42 (NTP).
- ``kea-dhcp-ddns``: takes name-change requests from kea-dhcp4 on loopback and
  sends signed updates for the forward zone and, when given, the reverse zone.

Each daemon's JSON config is rendered by a frozen dataclass (STYLE rule 6) and
unit-tested on its structure; readiness is the daemon's own PID holding its UDP
socket, and its start-up log line, never a sleep.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.components.base import Component
from harness.components.binaries import require_binary
from harness.errors import ComponentError
from harness.lab.lab import Lab
from harness.lab.process import LabProcess
from harness.lab.waits import LogLine, UdpBound

D2_PORT = 53001
TSIG_ALGORITHM = "HMAC-SHA256"


def require_kea(binary: str) -> str:
    """Path of a Kea daemon, or a one-line DependencyError naming its Debian package."""
    package = {"kea-dhcp4": "kea-dhcp4-server", "kea-dhcp-ddns": "kea-dhcp-ddns-server"}
    return require_binary(binary, package.get(binary, binary))


def reverse_zone(subnet: str) -> str:
    """The in-addr.arpa zone holding PTR records of ``subnet`` (octet-aligned, /8 to /24).

    A /20 gets the zone of its /16: the zone must contain every address of the subnet.
    """
    net = ipaddress.ip_network(subnet, strict=False)
    octets = max(1, min(3, net.prefixlen // 8))
    head = str(net.network_address).split(".")[:octets]
    return ".".join(reversed(head)) + ".in-addr.arpa."


@dataclass(frozen=True)
class KeaSubnet:
    """One subnet Kea serves: its own segment (``relay`` empty) or a relayed one."""

    subnet: str                    # CIDR
    pool: tuple[str, str]          # first, last address handed out
    router: str | None = None
    relay: tuple[str, ...] = ()    # giaddr values that select this subnet
    reservations: Mapping[str, tuple[str | None, str]] = field(default_factory=dict)
    # MAC -> (IPv4 or None, hostname)


@dataclass(frozen=True)
class KeaDhcp4Config:
    """kea-dhcp4's configuration; :meth:`render` gives the JSON document."""

    interface: str
    lease_file: Path
    subnets: tuple[KeaSubnet, ...]
    domain: str = "site.test"
    dns_servers: tuple[str, ...] = ()
    ntp_servers: tuple[str, ...] = ()
    ddns: bool = True
    valid_lifetime: int = 3600
    force_options: Mapping[int, str] = field(default_factory=dict)
    # code -> text, e.g. {60: "PXEClient"}: a misconfigured site server (SITE-2)

    def render(self) -> dict[str, Any]:
        """The ``Dhcp4`` document; hostnames come from reservations so names mean something."""
        options: list[dict[str, Any]] = [{"name": "domain-name", "data": self.domain}]
        if self.dns_servers:
            options.append({"name": "domain-name-servers", "data": ", ".join(self.dns_servers)})
        if self.ntp_servers:
            # always sent: PXE ROMs and iPXE do not ask for 42, and the node's OS reads it
            # from the lease it inherits (dnsmasq's --dhcp-option-force, the same choice)
            options.append({"name": "ntp-servers", "data": ", ".join(self.ntp_servers),
                            "always-send": True})
        for code, text in sorted(self.force_options.items()):
            # standard options (60 is vendor-class-identifier) need no definition
            options.append({"code": code, "data": text, "always-send": True})
        subnets = []
        for i, sub in enumerate(self.subnets, start=1):
            entry: dict[str, Any] = {
                "id": i,
                "subnet": sub.subnet,
                "pools": [{"pool": f"{sub.pool[0]} - {sub.pool[1]}"}],
                "reservations": [
                    {"hw-address": mac, "hostname": name, **({"ip-address": ip} if ip else {})}
                    for mac, (ip, name) in sorted(sub.reservations.items())
                ],
            }
            if sub.router:
                entry["option-data"] = [{"name": "routers", "data": sub.router}]
            if sub.relay:
                entry["relay"] = {"ip-addresses": list(sub.relay)}
            subnets.append(entry)
        doc: dict[str, Any] = {
            "interfaces-config": {"interfaces": [self.interface], "dhcp-socket-type": "raw"},
            "lease-database": {"type": "memfile", "persist": True,
                               "name": str(self.lease_file), "lfc-interval": 0},
            "valid-lifetime": self.valid_lifetime,
            "host-reservation-identifiers": ["hw-address"],
            "option-data": options,
            "subnet4": subnets,
            "loggers": [_stdout_logger("kea-dhcp4")],
        }
        if self.ddns:
            doc["dhcp-ddns"] = {"enable-updates": True, "server-ip": "127.0.0.1",
                                "server-port": D2_PORT, "ncr-protocol": "UDP",
                                "ncr-format": "JSON"}
            doc.update({
                "ddns-send-updates": True,
                "ddns-override-no-update": True,
                "ddns-override-client-update": True,
                # a client that sends no name still gets its reserved one (PXE ROMs send none)
                "ddns-replace-client-name": "when-not-present",
                "ddns-qualifying-suffix": self.domain.rstrip(".") + ".",
            })
        return {"Dhcp4": doc}


@dataclass(frozen=True)
class KeaDdnsConfig:
    """kea-dhcp-ddns (D2): where forward and reverse updates go, signed with one TSIG key."""

    dns_server: str
    forward_zone: str
    reverse_zones: tuple[str, ...] = ()
    tsig_key: tuple[str, str] | None = None   # (name, base64 secret), hmac-sha256
    dns_port: int = 53

    def render(self) -> dict[str, Any]:
        """The ``DhcpDdns`` document."""
        def domain(name: str) -> dict[str, Any]:
            d: dict[str, Any] = {"name": name.rstrip(".") + ".",
                                 "dns-servers": [{"ip-address": self.dns_server,
                                                  "port": self.dns_port}]}
            if self.tsig_key is not None:
                d["key-name"] = self.tsig_key[0]
            return d

        doc: dict[str, Any] = {
            "ip-address": "127.0.0.1",
            "port": D2_PORT,
            "forward-ddns": {"ddns-domains": [domain(self.forward_zone)]},
            "reverse-ddns": {"ddns-domains": [domain(z) for z in self.reverse_zones]},
            "loggers": [_stdout_logger("kea-dhcp-ddns")],
        }
        if self.tsig_key is not None:
            doc["tsig-keys"] = [{"name": self.tsig_key[0], "algorithm": TSIG_ALGORITHM,
                                 "secret": self.tsig_key[1]}]
        return {"DhcpDdns": doc}


def _stdout_logger(name: str) -> dict[str, Any]:
    # INFO shows each lease and each DNS update (DHCP4_LEASE_ALLOC, DHCP_DDNS_ADD_SUCCEEDED)
    return {"name": name, "output_options": [{"output": "stdout", "flush": True}],
            "severity": "INFO"}


def kea_argv(binary: str, conf: Path, state_dir: Path) -> list[str]:
    """Run a Kea daemon in the foreground on ``conf``; its PID and lock files go in
    ``state_dir`` (by default Kea writes them under /run/kea, shared by every lab)."""
    return ["env", f"KEA_PIDFILE_DIR={state_dir}", f"KEA_LOCKFILE_DIR={state_dir}",
            binary, "-c", str(conf)]


class KeaSiteDhcp(Component):
    """Kea DHCPv4 (and, with ``ddns``, its DDNS daemon) on one lab host, serving a segment."""

    def __init__(
        self,
        lab: Lab,
        host: str,
        segment: str,
        *,
        relayed_segments: tuple[str, ...] = (),
        relay_routers: Mapping[str, str] | None = None,
        hostnames: Mapping[str, str] | None = None,
        reservations: Mapping[str, str] | None = None,
        domain: str = "site.test",
        dns_server: str | None = None,
        ntp_servers: tuple[str, ...] = (),
        tsig_key: tuple[str, str] | None = None,
        reverse: bool = True,
        force_options: Mapping[int, str] | None = None,
        name: str | None = None,
        router: str | None = None,
        ddns: bool = True,
    ) -> None:
        """``hostnames`` (MAC -> short name) become reservations that name each machine;
        ``reservations`` (MAC -> IPv4) pin addresses too. ``dns_server`` is announced in
        option 6; with ``ddns`` D2 also runs and updates ``domain`` there (and each
        subnet's reverse zone when ``reverse``). ``router``: the own segment's gateway."""
        relay_routers = dict(relay_routers or {})
        hostnames = dict(hostnames or {})
        reservations = dict(reservations or {})
        self.lab = lab
        self.host = host
        self.segment = segment
        self.name = name or f"kea-{segment}"
        self.domain = domain.rstrip(".")
        self.state_dir = lab.temp_dir / self.name
        info = lab.link(host, segment)

        def subnet(seg: str, relay: tuple[str, ...], router: str | None) -> KeaSubnet:
            # Kea looks reservations up per subnet: a pinned MAC belongs to the subnet of
            # its address; a MAC with only a name is named in every subnet it may ask from
            net = lab.subnets[seg]
            first, last = lab.dhcp_pool(seg)
            here: dict[str, tuple[str | None, str]] = {}
            for mac in sorted(set(hostnames) | set(reservations)):
                ip = reservations.get(mac)
                if ip is not None and ipaddress.ip_address(ip) not in net:
                    continue
                here[mac] = (ip, hostnames.get(mac) or mac.replace(":", ""))
            return KeaSubnet(str(net), (first, last), router, relay, here)

        subnets = [subnet(segment, (), router)]
        for seg in relayed_segments:
            giaddr = relay_routers.get(seg)
            if giaddr is None:
                raise ComponentError(f"{self.name}: relayed segment {seg!r} has no relay address")
            subnets.append(subnet(seg, (giaddr,), giaddr))
        self.dhcp_config = KeaDhcp4Config(
            interface=info.host_iface, lease_file=self.state_dir / "leases4.csv",
            subnets=tuple(subnets), domain=self.domain,
            dns_servers=(dns_server,) if dns_server else (), ntp_servers=ntp_servers,
            ddns=dns_server is not None and ddns, force_options=dict(force_options or {}))
        self.ddns_config: KeaDdnsConfig | None = None
        if dns_server is not None and ddns:
            zones = tuple(dict.fromkeys(reverse_zone(s.subnet) for s in subnets)) if reverse \
                else ()
            self.ddns_config = KeaDdnsConfig(dns_server, self.domain, zones, tsig_key)
        self.dhcp_bin = require_kea("kea-dhcp4")
        self.d2_bin = require_kea("kea-dhcp-ddns") if self.ddns_config else None
        self.ddns_process: LabProcess | None = None

    @property
    def server_ip(self) -> str:
        """The address clients see in option 54."""
        return self.lab.address(self.host, self.segment)

    def write_configs(self) -> tuple[Path, Path | None]:
        """Write both JSON documents into the component's state directory."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        dhcp = self.state_dir / "kea-dhcp4.json"
        dhcp.write_text(json.dumps(self.dhcp_config.render(), indent=2))
        d2 = None
        if self.ddns_config is not None:
            d2 = self.state_dir / "kea-dhcp-ddns.json"
            d2.write_text(json.dumps(self.ddns_config.render(), indent=2))
        return dhcp, d2

    def start(self) -> None:
        """Launch D2 first (kea-dhcp4 queues name changes for it), then kea-dhcp4."""
        dhcp, d2 = self.write_configs()
        if d2 is not None and self.d2_bin is not None:
            self.ddns_process = self.lab.start_process(
                f"{self.name}-ddns", kea_argv(self.d2_bin, d2, self.state_dir), self.host)
        self.process = self.lab.start_process(
            self.name, kea_argv(self.dhcp_bin, dhcp, self.state_dir), self.host)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Ready when D2 holds UDP 53001 and kea-dhcp4 holds UDP 67 and logged its start."""
        if self.ddns_process is not None:
            self.ddns_process.wait(UdpBound(D2_PORT), timeout=timeout)
        self.wait_for(UdpBound(67), LogLine(r"DHCP4_STARTED"), timeout=timeout)

    def stop(self) -> None:
        """Stop kea-dhcp4, then D2 (by PID)."""
        super().stop()
        if self.ddns_process is not None:
            self.ddns_process.stop()

    def logs(self) -> str:
        """Both daemons' logs."""
        text = super().logs()
        if self.ddns_process is not None:
            text += "\n" + self.ddns_process.log_text()
        return text

    def artifacts(self) -> list[Path]:
        """Both logs, and the rendered configs (what the site really ran)."""
        out = super().artifacts()
        if self.ddns_process is not None:
            out.append(self.ddns_process.log_path)
        out += sorted(self.state_dir.glob("*.json"))
        return out

    def ddns_outcomes(self) -> list[dict[str, str]]:
        """Every DNS update D2 reported, succeeded or not: a refused update is evidence,
        never dropped (DNS-1). Each: ``{"outcome": "ok"|"failed", "line": ...}``."""
        if self.ddns_process is None:
            return []
        out = []
        for line in self.ddns_process.log_text().splitlines():
            if "_SUCCEEDED" in line and "DHCP_DDNS" in line:
                out.append({"outcome": "ok", "line": line.strip()})
            elif "DHCP_DDNS" in line and ("_FAILED" in line or "REJECTED" in line
                                          or "_REFUSED" in line):
                out.append({"outcome": "failed", "line": line.strip()})
        return out

    def leases(self) -> list[dict[str, str]]:
        """Current leases from the memfile CSV: address, hwaddr, hostname."""
        try:
            lines = self.dhcp_config.lease_file.read_text().splitlines()
        except OSError:
            return []
        if not lines:
            return []
        head = lines[0].split(",")
        rows = [dict(zip(head, line.split(","), strict=False)) for line in lines[1:] if line]
        return [{"ip": r.get("address", ""), "mac": r.get("hwaddr", ""),
                 "hostname": r.get("hostname", "")} for r in rows]
