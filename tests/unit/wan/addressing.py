"""One fixed addressing for the WAN unit tests (what a built lab would resolve)."""

from __future__ import annotations

import ipaddress

from harness.wan.config import WanAddressing

ADDRESSING = WanAddressing(
    lab_id="flab123", site_iface="eth0", wan_iface="eth1",
    router_site=ipaddress.IPv4Interface("10.9.0.1/24"),
    router_wan=ipaddress.IPv4Interface("10.77.0.1/29"),
    cloud_wan=ipaddress.IPv4Interface("10.77.0.2/29"),
    site_subnet=ipaddress.IPv4Network("10.9.0.0/24"),
    tunnel_router=ipaddress.IPv4Interface("10.200.0.1/30"),
    tunnel_cloud=ipaddress.IPv4Interface("10.200.0.2/30"),
)
