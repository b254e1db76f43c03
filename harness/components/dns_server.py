"""The site's DNS server in a lab: BIND accepting RFC 2136 updates, or dnsmasq refusing them.

site-check's DNS test needs both kinds of site: one whose DNS server takes dynamic updates
for a zone (KubeFlex can then register node names there) and one that does not (the site
must delegate a subdomain instead). Both answer the "public" names a node needs, pointed
at a lab address, since the lab never reaches the real internet.

- :class:`BindDns`: ``named -g`` (foreground, logging to stderr) authoritative for the root
  zone (so every public name can be listed in one file, and anything else is an honest
  NXDOMAIN) and for an update zone with ``allow-update { any; }`` (or none: REFUSED).
- :class:`DnsmasqDns`: dnsmasq as a plain DNS server with ``--host-record`` entries; it
  implements no UPDATE at all.

Each config object renders its files and argv (STYLE rule 6) and is unit-tested on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.components.base import Component
from harness.components.binaries import require_binary
from harness.errors import ComponentError
from harness.lab.lab import Lab
from harness.lab.waits import UdpBound

DNS_PORT = 53


def require_named() -> str:
    """Path of BIND's ``named``, or a one-line DependencyError naming the package."""
    return require_binary("named", "bind9")


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


@dataclass(frozen=True)
class BindConfig:
    """named.conf and zone files for a lab DNS server; :meth:`write` puts them in place.

    ``records`` (name → IPv4) go into the root zone; ``update_zone`` is a separate zone
    whose ``allow-update`` is ``any`` when ``allow_update`` is set, ``none`` otherwise;
    with ``tsig_key`` (name, base64 secret) only updates signed with that key (hmac-sha256)
    are accepted, as a careful site would configure it.
    """

    directory: Path
    listen: str
    records: Mapping[str, str] = field(default_factory=dict)
    update_zone: str | None = "site.test"
    allow_update: bool = True
    port: int = DNS_PORT
    binary: str = "named"
    tsig_key: tuple[str, str] | None = None
    reverse_zones: tuple[str, ...] = ()   # in-addr.arpa zones for PTR records, updated alike

    @property
    def conf_path(self) -> Path:
        """Where named.conf is written."""
        return self.directory / "named.conf"

    def named_conf(self) -> str:
        """The whole configuration: authoritative only, no recursion, no rndc."""
        d = self.directory
        text = (
            "options {\n"
            f'  directory "{d}";\n'
            f"  listen-on port {self.port} {{ {self.listen}; }};\n"
            "  listen-on-v6 { none; };\n"
            "  pid-file none;\n"
            f'  session-keyfile "{d}/session.key";\n'
            f'  managed-keys-directory "{d}";\n'
            "  recursion no;\n"
            "  allow-query { any; };\n"
            "  dnssec-validation no;\n"
            "  notify no;\n"
            "};\n"
            "controls { };\n"
            f'zone "." {{ type primary; file "{d}/root.zone"; }};\n'
        )
        if self.tsig_key is not None:
            text += (f'key "{self.tsig_key[0]}" {{ algorithm hmac-sha256; '
                     f'secret "{self.tsig_key[1]}"; }};\n')
        if self.update_zone:
            allow = "any" if self.allow_update else "none"
            if self.allow_update and self.tsig_key is not None:
                allow = f'key "{self.tsig_key[0]}"'
            text += (f'zone "{self.update_zone.rstrip(".")}" {{ type primary; '
                     f'file "{d}/update.zone"; allow-update {{ {allow}; }}; }};\n')
            for zone in self.reverse_zones:
                text += (f'zone "{zone.rstrip(".")}" {{ type primary; '
                         f'file "{d}/{zone.rstrip(".")}.zone"; allow-update {{ {allow}; }}; }};\n')
        return text

    def root_zone(self) -> str:
        """The root zone: SOA, NS and one A record per public name."""
        lines = [
            "$TTL 300",
            ". IN SOA ns.flexlab. hostmaster.flexlab. 1 3600 600 86400 300",
            ". IN NS ns.flexlab.",
            f"ns.flexlab. IN A {self.listen}",
        ]
        lines += [f"{_fqdn(name)} IN A {ip}" for name, ip in sorted(self.records.items())]
        return "\n".join(lines) + "\n"

    def update_zone_text(self) -> str:
        """The (initially almost empty) dynamic zone."""
        assert self.update_zone is not None
        origin = _fqdn(self.update_zone)
        return (f"$ORIGIN {origin}\n$TTL 300\n"
                f"@ IN SOA ns.{origin} hostmaster.{origin} 1 3600 600 86400 300\n"
                f"@ IN NS ns.{origin}\n"
                f"ns IN A {self.listen}\n")

    def reverse_zone_text(self, zone: str) -> str:
        """An empty reverse zone whose name server is the update zone's."""
        assert self.update_zone is not None
        ns = f"ns.{_fqdn(self.update_zone)}"
        return (f"$ORIGIN {_fqdn(zone)}\n$TTL 300\n"
                f"@ IN SOA {ns} hostmaster.{_fqdn(self.update_zone)} 1 3600 600 86400 300\n"
                f"@ IN NS {ns}\n")

    def write(self) -> None:
        """Write named.conf and the zone files into ``directory``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(self.named_conf())
        (self.directory / "root.zone").write_text(self.root_zone())
        if self.update_zone:
            (self.directory / "update.zone").write_text(self.update_zone_text())
            for zone in self.reverse_zones:
                (self.directory / f"{zone.rstrip('.')}.zone").write_text(
                    self.reverse_zone_text(zone))

    def argv(self) -> list[str]:
        """Foreground, logging to stderr, one worker thread (the CI host has 2 shared cores)."""
        return [self.binary, "-g", "-n", "1", "-c", str(self.conf_path)]


@dataclass(frozen=True)
class DnsmasqDnsConfig:
    """dnsmasq as a DNS-only server answering ``records`` (name → IPv4) and nothing else."""

    listen: str
    pid_file: Path
    records: Mapping[str, str] = field(default_factory=dict)
    port: int = DNS_PORT
    binary: str = "dnsmasq"

    def argv(self) -> list[str]:
        """Foreground, queries logged to stderr, DHCP off, no upstream servers."""
        args = [self.binary, "--keep-in-foreground", "--log-facility=-", "--log-queries",
                "--conf-file=/dev/null", "--no-resolv", "--no-hosts", f"--port={self.port}",
                f"--listen-address={self.listen}", "--bind-interfaces",
                "--user=root", "--group=root", f"--pid-file={self.pid_file}"]
        args += [f"--host-record={name.rstrip('.')},{ip}"
                 for name, ip in sorted(self.records.items())]
        return args


class _DnsComponent(Component):
    """Shared life of both servers: start in a lab host, ready when bound to UDP 53."""

    def __init__(self, lab: Lab, host: str, segment: str, name: str) -> None:
        self.lab = lab
        self.host = host
        self.segment = segment
        self.name = name

    @property
    def address(self) -> str:
        """The server's address on its segment (what DHCP option 6 should carry)."""
        return self.lab.address(self.host, self.segment)

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        """Launch the server in the host's namespace."""
        self.process = self.lab.start_process(self.name, self._argv(), self.host)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Ready when this very process holds UDP 53 (zones are loaded before it binds)."""
        self.wait_for(UdpBound(DNS_PORT), timeout=timeout)


class BindDns(_DnsComponent):
    """BIND ``named`` for ``records`` plus a dynamic ``update_zone`` (updates allowed or not)."""

    def __init__(self, lab: Lab, host: str, segment: str, records: Mapping[str, str], *,
                 update_zone: str | None = "site.test", allow_update: bool = True,
                 tsig_key: tuple[str, str] | None = None,
                 reverse_zones: tuple[str, ...] = (),
                 name: str | None = None) -> None:
        super().__init__(lab, host, segment, name or f"named-{host}")
        self.config = BindConfig(
            directory=lab.temp_dir / self.name, listen=lab.address(host, segment),
            records=dict(records), update_zone=update_zone, allow_update=allow_update,
            tsig_key=tsig_key, reverse_zones=reverse_zones,
            binary=require_named())

    def _argv(self) -> list[str]:
        self.config.write()
        return self.config.argv()

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Bound to UDP 53 and logged ``running``; every zone loaded (named keeps running
        without a zone that has errors, and would then answer SERVFAIL for it)."""
        super().wait_ready(timeout)
        proc = self.process
        assert proc is not None
        proc.wait_for_log(r" running$", timeout)  # not "running on Linux", "running as"
        log = proc.output()
        zones = ["."] + ([self.config.update_zone.rstrip(".")] if self.config.update_zone
                         else [])
        zones += [z.rstrip(".") for z in self.config.reverse_zones if self.config.update_zone]
        missing = [z for z in zones if f"zone {z}/IN: loaded serial" not in log]
        if missing:
            raise ComponentError(f"{self.name}: zone(s) {', '.join(missing)} not loaded "
                                 "(see the zone errors above):\n" + proc.log_tail())


class DnsmasqDns(_DnsComponent):
    """dnsmasq answering ``records``; it implements no RFC 2136 UPDATE."""

    def __init__(self, lab: Lab, host: str, segment: str, records: Mapping[str, str], *,
                 name: str | None = None) -> None:
        from harness.components.dnsmasq import require_dnsmasq

        super().__init__(lab, host, segment, name or f"dnsmasq-dns-{host}")
        self.config = DnsmasqDnsConfig(
            listen=lab.address(host, segment), pid_file=lab.temp_dir / f"{self.name}.pid",
            records=dict(records), binary=require_dnsmasq())

    def _argv(self) -> list[str]:
        return self.config.argv()
