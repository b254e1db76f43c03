"""The whole site around the boot LAN, as a scenario declares it (issue: the whole site).

The guide draws more than a boot LAN: a Control Plane on site (standalone) or in the
cloud beyond a WAN (hybrid), NAT and an outbound-only port filter on the WAN, a
private WAN (a tunnel) in hybrid mode, TLS to the Control Plane, DNS with RFC 2136
updates and unique names, and clocks within a second. These models declare that
site; :mod:`harness.plan` decides its wiring and the builder makes it. Plain data,
validated, no side effects (STYLE: declare, then build).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_WAN_PORTS = (80, 443, 8888)
ZONE = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
TlsFault = Literal["wrong-ca", "wrong-name", "expired"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WanSpec(_Strict):
    """The router between the site and the cloud Control Plane."""

    ports: list[int] = Field(
        default_factory=lambda: list(DEFAULT_WAN_PORTS),
        description="TCP ports the site may open towards the Control Plane (nothing comes in)")
    private: bool = Field(
        False, description="carry site<->Control Plane traffic in a WireGuard tunnel "
        "(the guide's private WAN of hybrid mode)")
    loss_pct: float = Field(0.0, ge=0, le=100, description="frames dropped on the WAN link")
    latency_ms: int = Field(0, ge=0, le=10_000,
                            description="one-way delay on the WAN link (needs sch_netem)")

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        bad = [p for p in value if not 1 <= p <= 65535]
        if bad:
            raise ValueError(f"not TCP ports (1-65535): {bad}")
        dups = sorted({p for p in value if value.count(p) > 1})
        if dups:
            raise ValueError(f"ports listed twice: {dups}")
        if not value:
            raise ValueError("no port open: the site could not reach the Control Plane")
        return value


class DnsSpec(_Strict):
    """The site's authoritative DNS server (BIND) and who puts node names in it."""

    zone: str = Field("site.test", pattern=ZONE, description="the zone node names go in")
    reverse: bool = Field(True, description="also a reverse zone per subnet (PTR records)")
    updates: Literal["control-plane", "dhcp", "none"] = Field(
        "control-plane", description="who sends the RFC 2136 updates: the Control Plane when "
        "a node is Ready, the site DHCP server's DDNS (kind: kea), or nobody")


class NtpSpec(_Strict):
    """The site's time source (chrony), offered by the site DHCP in option 42."""

    offered: bool = Field(True, description="site DHCP hands out option 42; false: a site "
                          "whose nodes are told of no time source")
