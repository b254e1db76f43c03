"""The site's WAN: a router with NAT, an egress firewall, an optional WireGuard tunnel
and link impairments, between a site segment and a cloud namespace (docs/WAN.md)."""

from harness.wan.config import (
    DEFAULT_EGRESS_PORTS,
    WanAddressing,
    WanConfigError,
    WanRouterConfig,
)
from harness.wan.flows import ObservedFlow
from harness.wan.router import WanRouter, requirements

__all__ = ["DEFAULT_EGRESS_PORTS", "ObservedFlow", "WanAddressing", "WanConfigError",
           "WanRouter", "WanRouterConfig", "requirements"]
