"""What the checker is told about the site, so rules check rather than assume.

Everything is optional. When a fact is missing, rules that need it report
not-applicable; proxies are then inferred from the traffic (a server sending an
OFFER with yiaddr 0, or answering on UDP 4011).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.macs import normalize_mac
from harness.rules.site_facts import SiteFacts


@dataclass(frozen=True)
class RuleContext:
    """Facts about the site under test.

    proxies: IPv4 addresses of the Boot Proxies under test.
    serves: per proxy IP, the MACs it is configured to serve (MAC filtering on).
    site_dhcp: IPv4 addresses of the site DHCP servers.
    relays: relay (giaddr) addresses expected on the wire.
    vendor_classes: option 60 prefixes a proxy may answer besides PXEClient/HTTPClient.
    time_scale: factor applied to timing limits (TCG guests, loaded hosts).
    site: what a whole-site run observed beyond the boot LAN (WAN flows, TLS, DNS,
    clocks), for the WAN/DNS/NTP rules; None on a capture alone.
    clusters: per cluster name, the MACs of its nodes (SITE-4).
    l2_domains: per layer-2 domain (a segment's name), the MACs heard directly on it,
    from every capture of the run (:func:`harness.rules.l2.l2_domains`); empty on a
    capture alone, where SITE-4 reads the one capture it has.
    served_from: per MAC, when (capture clock, epoch seconds) its proxy began to serve it:
    the Control Plane assigned it then, during the capture. Before that the MAC is not
    served: no answer is owed (TIME-1) and none may be sent (SILENT-5).
    """

    proxies: frozenset[str] = frozenset()
    serves: dict[str, frozenset[str]] = field(default_factory=dict)
    site_dhcp: frozenset[str] = frozenset()
    relays: frozenset[str] = frozenset()
    vendor_classes: tuple[str, ...] = ("PXEClient", "HTTPClient")
    time_scale: float = 1.0
    site: SiteFacts | None = None
    clusters: dict[str, frozenset[str]] = field(default_factory=dict)
    l2_domains: dict[str, frozenset[str]] = field(default_factory=dict)
    served_from: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # MACs are compared in lower-case colon form whatever the caller wrote
        def norm(groups: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
            return {k: frozenset(normalize_mac(m) for m in macs) for k, macs in groups.items()}

        object.__setattr__(self, "serves", norm(self.serves))
        object.__setattr__(self, "clusters", norm(self.clusters))
        object.__setattr__(self, "l2_domains", norm(self.l2_domains))
        object.__setattr__(self, "served_from",
                           {normalize_mac(m): t for m, t in self.served_from.items()})
        object.__setattr__(self, "proxies", frozenset(self.proxies))

    def vendor_prefix(self, vendor_class: str | None) -> str | None:
        """The accepted prefix ``vendor_class`` starts with, or None."""
        for p in self.vendor_classes:
            if (vendor_class or "").startswith(p):
                return p
        return None

    def accepts_vendor(self, vendor_class: str | None) -> bool:
        """True when a proxy may answer a client sending this option 60."""
        return bool(vendor_class) and any(
            (vendor_class or "").startswith(p) for p in self.vendor_classes
        )
