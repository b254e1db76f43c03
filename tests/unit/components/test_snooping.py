"""The snooping switch's ruleset and its per-port counters (read back as nft prints them)."""

from __future__ import annotations

import json

import pytest

from harness.components.snooping import parse_port_counters, snooping_ruleset
from harness.errors import LabError

pytestmark = pytest.mark.unit


def rule(port: str, packets: int) -> dict[str, object]:
    """One rule as `nft -j list table bridge snoop_lan` (nftables 1.0.6) prints it."""
    return {"rule": {"family": "bridge", "table": "snoop_lan", "chain": "ingress", "handle": 2,
                     "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}},
                                         "right": port}},
                              {"match": {"op": "==", "left": {"payload": {
                                  "protocol": "udp", "field": "sport"}}, "right": 67}},
                              {"counter": {"packets": packets, "bytes": packets * 342}},
                              {"drop": None}]}}


def listing(*rules: dict[str, object]) -> str:
    head = [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
            {"table": {"family": "bridge", "name": "snoop_lan", "handle": 1}},
            {"chain": {"family": "bridge", "table": "snoop_lan", "name": "ingress",
                       "handle": 1, "type": "filter", "hook": "prerouting", "prio": 0,
                       "policy": "accept"}}]
    return json.dumps({"nftables": [*head, *rules]})


def test_each_untrusted_port_gets_its_own_counted_rule() -> None:
    text = snooping_ruleset("snoop_lan", ["p1", "p2"])
    for port in ("p1", "p2"):
        assert f'iifname "{port}" udp sport 67 counter\n' in text  # counted once, entering
        assert f'iifname "{port}" udp sport 67 drop\n' in text     # dropped, forwarding
    assert "udp sport 67" not in snooping_ruleset("snoop_lan", [])  # all trusted


def test_counters_are_read_per_port() -> None:
    assert parse_port_counters(listing(rule("p1", 4), rule("p2", 0))) == {"p1": 4, "p2": 0}
    assert parse_port_counters(listing()) == {}


def test_unreadable_output_is_an_error_not_zero_drops() -> None:
    with pytest.raises(LabError, match="unreadable"):
        parse_port_counters("table bridge snoop_lan {")
