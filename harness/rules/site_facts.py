"""Facts about the site around the boot LAN, as a whole-site run collects them.

The WAN, DNS and NTP rules are not about packets on a boot segment: they read what
the lab observed elsewhere — the WAN router's flow sets, the TLS outcome of each
Control Plane hop, the site's DNS answers after the run, each Ready node's clock.
The builder (or site-check on a real site) fills a :class:`SiteFacts`; a fact it
could not collect stays None, and the rule that needs it says so (not applicable,
with that reason — never "holds").

Plain data only: no import of the lab, the WAN router or the Control Plane, so the
rules stay a lower layer that any caller can feed (a WAN flow's fields come from the
neutral :mod:`harness.wanflow`, which the router's read-back shares).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.wanflow import RouterFlow


@dataclass(frozen=True)
class WanFlow(RouterFlow):
    """One flow the WAN router saw (:class:`harness.wanflow.RouterFlow`: who, where,
    which way, let through or not, how many packets), as the rules read it.

    ``party`` names the site host behind ``src`` where known (``proxy bp1``, a machine).
    """

    party: str = ""


@dataclass(frozen=True)
class WanFacts:
    """The WAN as built and as observed."""

    allowed_ports: tuple[int, ...]
    private: bool                         # site↔Control Plane traffic must use the tunnel
    nat_address: str                      # what the cloud side sees for every site host
    flows: tuple[WanFlow, ...]
    control_plane: str                    # the Control Plane's address beyond the WAN
    seen_by_control_plane: tuple[str, ...] = ()  # client addresses the Control Plane logged


@dataclass(frozen=True)
class OutageBoot:
    """A machine that booted while the WAN was down: was the proxy right about it?"""

    mac: str
    known: bool          # assigned to a served cluster before the outage
    answered: bool       # a proxy answered it during the outage
    ready_after: bool    # Ready once the WAN came back (known machines only)


@dataclass(frozen=True)
class TlsHop:
    """One client's exchanges with the Control Plane, as the client reported them.

    ``crossed_wan``: the hop goes through the WAN router; ``scheme`` what it used;
    ``verified`` True when it checked the certificate against its CA and accepted,
    False when it refused it (``refused_reason``), None when it never tried TLS;
    ``expect_refusal`` when the run served a bad certificate on purpose.
    """

    client: str
    url: str
    crossed_wan: bool
    scheme: str
    verified: bool | None
    refused_reason: str = ""
    expect_refusal: bool = False


@dataclass(frozen=True)
class DnsName:
    """A Ready node's name in the site's DNS after the run."""

    mac: str
    hostname: str
    address: str                          # the node's own IPv4 address
    resolved: tuple[str, ...]             # A answers for the name
    ptr: tuple[str, ...] | None           # PTR answers (None: the site has no reverse zone)
    update_errors: tuple[str, ...] = ()   # refused or failed RFC 2136 updates, with reasons

    @property
    def reverse_names_it(self) -> bool:
        """A PTR answer names this node (its first label is the hostname), or the site has
        no reverse zone to ask (``ptr`` None): the one reading DNS-1 and the scenario's
        ``dns`` expectation share, so they cannot disagree."""
        return self.ptr is None or any(p.rstrip(".").split(".")[0] == self.hostname
                                       for p in self.ptr)


@dataclass(frozen=True)
class NodeClock:
    """A Ready node's clock against the site's time source, when it registered."""

    mac: str
    offset_s: float
    source: str          # the NTP server it synced from ("" when none was offered)
    error_s: float = 0.0  # the offset is known to within this (a two-way exchange's bound)

    def beyond(self, limit_s: float) -> bool:
        """Off by more than ``limit_s`` even at the near end of its error bound."""
        return abs(self.offset_s) - self.error_s > limit_s

    def off_by(self) -> str:
        """The offset as a person reads it, with its bound when it has one."""
        bound = f" +/- {self.error_s:.3f} s" if self.error_s else ""
        return f"{self.offset_s:+.3f} s{bound}"


@dataclass(frozen=True)
class SiteFacts:
    """Everything the WAN/DNS/NTP rules read; None: not part of this site or not collected."""

    wan: WanFacts | None = None
    outage: tuple[OutageBoot, ...] | None = None
    tls: tuple[TlsHop, ...] | None = None
    dns: tuple[DnsName, ...] | None = None
    clocks: tuple[NodeClock, ...] | None = None
    notes: dict[str, str] = field(default_factory=dict)  # rule id -> why a fact is missing
