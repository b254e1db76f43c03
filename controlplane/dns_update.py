"""RFC 2136 updates from the Control Plane: a Ready node's name placed in the site's DNS.

The guide asks for unique, meaningful hostnames that resolve, put there by
dynamic DNS. One way is the site DHCP server's DDNS (Kea); the other is the
Control Plane itself, when a node reports Ready: its hostname (unique per site
in the store) and the IPv4 address the agent reported.

Every update is TSIG-signed when a key is given and carries a prerequisite, so
the DNS server, not this code, refuses to give a name that is already someone
else's: first "the name has no A record"; if that fails, "the name's A record is
exactly this address" (a node re-registering after a reset). The outcome of each
attempt — ok, or failed with the server's rcode or the network error — is
returned for the caller to record: a refused update is evidence, never dropped.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.tsigkeyring
import dns.update

from .errors import ControlPlaneError


@dataclass(frozen=True)
class DnsUpdateConfig:
    """Where and how to update: server, forward zone, optional reverse zone, TSIG key."""

    server: str
    zone: str
    port: int = 53
    key_name: str | None = None
    key_secret: str | None = None     # base64, hmac-sha256
    reverse_zones: tuple[str, ...] = ()  # in-addr.arpa zones; the one holding the address
    ttl: int = 300
    timeout: float = 2.0

    @staticmethod
    def parse_key(text: str) -> tuple[str, str]:
        """``NAME:BASE64SECRET`` (as in a key file) -> (name, secret); clear error if not."""
        name, sep, secret = text.strip().partition(":")
        if not sep or not name or not secret:
            raise ControlPlaneError("a TSIG key is NAME:BASE64SECRET (hmac-sha256)")
        return name, secret


@dataclass(frozen=True)
class DnsOutcome:
    """What one update attempt came to."""

    ok: bool
    fqdn: str
    address: str
    detail: str


class DnsUpdater:
    """Sends the forward (and reverse) update for one node."""

    def __init__(self, config: DnsUpdateConfig) -> None:
        self.config = config
        self.zone = dns.name.from_text(config.zone)
        self.keyring = (dns.tsigkeyring.from_text({config.key_name: config.key_secret})
                        if config.key_name and config.key_secret else None)

    def _update(self, zone: dns.name.Name) -> dns.update.Update:
        if self.keyring is None:
            return dns.update.Update(zone)
        return dns.update.Update(zone, keyring=self.keyring,
                                 keyname=dns.name.from_text(self.config.key_name or ""),
                                 keyalgorithm="hmac-sha256")

    def _send(self, update: dns.update.Update) -> dns.rcode.Rcode:
        answer = dns.query.udp(update, self.config.server, port=self.config.port,
                               timeout=self.config.timeout)
        return answer.rcode()

    def add(self, hostname: str, address: str, previous: str | None = None) -> DnsOutcome:
        """Place ``hostname`` -> ``address`` (and the PTR) unless the name belongs to another.

        ``previous`` is the address this Control Plane placed for the name before (a node
        that rebooted into a new lease): a record holding it is ours to replace.
        """
        fqdn = dns.name.from_text(hostname, origin=self.zone)
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            return DnsOutcome(False, fqdn.to_text(), address, f"not an IPv4 address: {address!r}")
        try:
            fresh = self._update(self.zone)
            fresh.absent(fqdn, dns.rdatatype.A)
            fresh.add(fqdn, self.config.ttl, dns.rdatatype.A, address)
            rcode = self._send(fresh)
            if rcode == dns.rcode.YXRRSET:
                # the name exists: take it only if it holds what we placed (or this address)
                same = self._update(self.zone)
                same.present(fqdn, dns.rdatatype.A, previous or address)
                same.replace(fqdn, self.config.ttl, dns.rdatatype.A, address)
                rcode = self._send(same)
                if rcode == dns.rcode.NXRRSET:
                    return DnsOutcome(False, fqdn.to_text(), address,
                                      "refused: the name already points at another address "
                                      "(hostnames must be unique in the site)")
            if rcode != dns.rcode.NOERROR:
                return DnsOutcome(False, fqdn.to_text(), address,
                                  f"refused by {self.config.server}: {dns.rcode.to_text(rcode)}")
            detail = "A added"
            ptr_name = dns.reversename.from_address(address)
            zone = next((z for z in map(dns.name.from_text, self.config.reverse_zones)
                         if ptr_name.is_subdomain(z)), None)
            if zone is not None:
                rev = self._update(zone)
                rev.replace(ptr_name, self.config.ttl, dns.rdatatype.PTR, fqdn.to_text())
                rcode = self._send(rev)
                if rcode != dns.rcode.NOERROR:
                    return DnsOutcome(False, fqdn.to_text(), address,
                                      f"A added; PTR refused: {dns.rcode.to_text(rcode)}")
                detail = "A and PTR added"
            return DnsOutcome(True, fqdn.to_text(), address, detail)
        except (dns.exception.DNSException, OSError) as exc:
            return DnsOutcome(False, fqdn.to_text(), address,
                              f"no answer from {self.config.server}: {type(exc).__name__}: {exc}")
