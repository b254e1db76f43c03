"""The router's nftables table, rendered from the config and checked against references."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.wan.config import WanRouterConfig

from .addressing import ADDRESSING

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).parents[3] / "fixtures" / "wan"


@pytest.mark.parametrize("private", [False, True], ids=["nat", "private"])
def test_nft_ruleset_matches_reference(private: bool) -> None:
    text = WanRouterConfig(private=private).nft_ruleset(ADDRESSING)
    name = "private" if private else "nat"
    assert text == (FIXTURES / f"test_nft_ruleset_matches_reference_{name}.nft").read_text()


def _forward_rules(text: str) -> list[str]:
    chain = text.split("chain forward {", 1)[1].split("}\n\n", 1)[0]
    return [line.strip() for line in chain.splitlines() if line.strip()]


def test_only_the_listed_tcp_ports_are_accepted_out_and_nothing_new_in() -> None:
    rules = _forward_rules(WanRouterConfig(egress_ports=(443, 8443)).nft_ruleset(ADDRESSING))
    assert rules[0] == "type filter hook forward priority filter; policy drop;"
    accepts = [r for r in rules if r.endswith(" accept")]
    # replies, then one rule per listed port from the site to the WAN; nothing else
    assert accepts[0].startswith('iifname { "eth1" } oifname "eth0" ct state established')
    assert [r.split("tcp dport ")[1].split()[0] for r in accepts[1:]] == ["443", "8443"]
    assert all(r.startswith('iifname "eth0" oifname "eth1" tcp dport') for r in accepts[1:])
    assert not [r for r in rules if r.startswith('iifname { "eth1" }') and "accept" in r
                and "established" not in r]


def test_a_rule_per_port_and_path_has_its_own_counter() -> None:
    text = WanRouterConfig(private=True, egress_ports=(80,)).nft_ruleset(ADDRESSING)
    for name in ("out_wan_tcp_80", "out_tunnel_tcp_80", "out_dropped", "in_dropped",
                 "in_replies"):
        assert f"counter {name} {{" in text and f'counter name "{name}"' in text
    assert "out_wan_tcp_443" not in text


def test_masquerade_on_every_way_to_the_cloud_and_only_there() -> None:
    nat = WanRouterConfig().nft_ruleset(ADDRESSING)
    private = WanRouterConfig(private=True).nft_ruleset(ADDRESSING)
    assert 'oifname { "eth1" } meta nfproto ipv4 masquerade' in nat
    assert 'oifname { "eth1", "flab123-wgr" } meta nfproto ipv4 masquerade' in private
    assert nat.count("masquerade") == 1 and private.count("masquerade") == 1
