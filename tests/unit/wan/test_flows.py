"""Observed flows read back from a real router's ``nft -j`` output (recorded in a lab with
a private WAN: site → 443 in the tunnel, → 8888 over NAT, → 22 refused; the cloud trying
the site's 8888 and the router's 22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.wan.flows import ObservedFlow, parse_counters, parse_flows

from .addressing import ADDRESSING

pytestmark = pytest.mark.unit
REFERENCE = Path(__file__).parents[3] / "fixtures" / "wan" / \
    "test_flows_from_reference_ruleset.json"
SITE, CLOUD, ROUTER_WAN, CP = "10.93.178.1", "10.112.239.250", "10.112.239.249", "10.200.0.2"


def test_flows_from_reference_ruleset() -> None:
    flows = parse_flows(REFERENCE.read_text(), ADDRESSING)
    assert flows == [
        ObservedFlow(CLOUD, ROUTER_WAN, "tcp", 22, "in", "wan", "dropped", 2, 120),
        ObservedFlow(CLOUD, SITE, "tcp", 8888, "in", "wan", "dropped", 2, 120),
        ObservedFlow(SITE, CP, "tcp", 443, "out", "tunnel", "accepted", 5, 386),
        ObservedFlow(SITE, CLOUD, "tcp", 8888, "out", "wan", "accepted", 6, 443),
        ObservedFlow(SITE, CP, "tcp", 22, "out", "tunnel", "dropped", 2, 120),
    ]
    assert flows[0].to_dict()["direction"] == "in"


def test_counters_from_reference_ruleset() -> None:
    assert parse_counters(REFERENCE.read_text()) == {
        "out_wan_tcp_80": 0, "out_wan_tcp_443": 0, "out_wan_tcp_8888": 6,
        "out_tunnel_tcp_80": 0, "out_tunnel_tcp_443": 5, "out_tunnel_tcp_8888": 0,
        "out_dropped": 2, "in_dropped": 4, "in_replies": 11}


def test_an_unknown_interface_is_named_not_guessed() -> None:
    data = json.loads(REFERENCE.read_text())
    for item in data["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            elem["elem"]["val"]["concat"][0] = "eth7"
    assert {f.path for f in parse_flows(json.dumps(data), ADDRESSING)} == {"eth7"}


def test_an_empty_table_has_no_flows() -> None:
    data = json.loads(REFERENCE.read_text())
    for item in data["nftables"]:
        item.get("set", {}).pop("elem", None)
    assert parse_flows(json.dumps(data), ADDRESSING) == []
