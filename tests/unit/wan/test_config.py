"""The WAN router's declared settings: validated before anything is built, and rendered
(sysctls, WireGuard configs, commands) exactly as the router applies them."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import TopologyError
from harness.wan.config import CLOUD, ROUTER, WanConfigError, WanRouterConfig

from .addressing import ADDRESSING

pytestmark = pytest.mark.unit
FIXTURES = Path(__file__).parents[3] / "fixtures" / "wan"
ROUTER_PUB = "cm91dGVyLXB1YmxpYy1rZXktMDAwMDAwMDAwMDAwMDA="
CLOUD_PUB = "Y2xvdWQtcHVibGljLWtleS0wMDAwMDAwMDAwMDAwMDA="
PRIV = "cHJpdmF0ZS1rZXktZm9yLXRlc3RzLW9ubHktMDAwMDA="


def test_defaults_are_the_guides_ports_and_valid() -> None:
    cfg = WanRouterConfig()
    cfg.validate()
    assert cfg.egress_ports == (80, 443, 8888)
    assert not cfg.private and cfg.loss_pct == 0 and cfg.latency_ms == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"egress_ports": (80, 0)}, "egress port 0"),
    ({"egress_ports": (80, 70000)}, "egress port 70000"),
    ({"egress_ports": (80, "443")}, "egress port '443'"),
    ({"egress_ports": (443, 80, 443)}, r"listed twice: \[443\]"),
    ({"loss_pct": 101}, "loss 101"),
    ({"loss_pct": -1}, "loss -1"),
    ({"latency_ms": -5}, "latency -5"),
    ({"wg_port": 0}, "WireGuard port 0"),
    ({"wan_segment": "lan"}, "site and WAN segment"),
    ({"cloud": "wan"}, "router and cloud"),
    ({"tunnel_subnet": "10.200.0.0/31"}, "at least a /30"),
    ({"tunnel_subnet": "8.8.8.0/30"}, "must be private"),
    ({"tunnel_subnet": "banana"}, "bad tunnel subnet"),
    ({"wan_subnet": "10.200.0.0/29"}, "overlaps WAN subnet"),
    ({"site_address": "10.9.0.300"}, "bad site address"),
])
def test_bad_settings_are_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(WanConfigError, match=message):
        WanRouterConfig(**change).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "message"), [
    ({"router": "Wan-Router"}, "host name 'Wan-Router'"),
    ({"cloud_address": "10.77.0.2"}, "needs a fixed subnet"),
    ({"wan_subnet": "10.77.0.0/29", "cloud_address": "10.78.0.2"}, "not a host address"),
    ({"wan_subnet": "10.77.0.0/29", "cloud_address": "10.77.0.2",
      "router_wan_address": "10.77.0.2"}, "address clash"),
])
def test_names_and_wan_addresses_follow_the_labs_topology_rules(
        change: dict[str, object], message: str) -> None:
    with pytest.raises(TopologyError, match=message):
        WanRouterConfig(**change).validate()  # type: ignore[arg-type]


def test_topology_parts_declare_router_between_site_and_wan_and_cloud_on_wan() -> None:
    cfg = WanRouterConfig(router="gw", cloud="cp", site_address="10.9.0.1",
                          wan_subnet="10.77.0.0/29", cloud_address="10.77.0.6")
    segment, (router, cloud) = cfg.topology_parts()
    assert (segment.name, segment.subnet, segment.ipv6_ra) == ("wan", "10.77.0.0/29", False)
    assert router.name == "gw" and router.forwarding
    assert [(link.segment, link.address) for link in router.links] == [
        ("lan", "10.9.0.1"), ("wan", "auto")]
    assert cloud.name == "cp" and [(lk.segment, lk.address) for lk in cloud.links] == [
        ("wan", "10.77.0.6")]


def test_sysctls_make_a_cut_link_an_immediate_no_route() -> None:
    assert WanRouterConfig().sysctl_argv() == [
        "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.ignore_routes_with_linkdown=1", "net.ipv4.icmp_ratelimit=0"]


@pytest.mark.parametrize("side", [ROUTER, CLOUD])
def test_wg_config_matches_reference(side: str) -> None:
    peer = CLOUD_PUB if side == ROUTER else ROUTER_PUB
    text = WanRouterConfig(private=True).wg_config(side, ADDRESSING, PRIV, peer)
    reference = FIXTURES / f"test_wg_config_matches_reference_{side}.conf"
    assert text == reference.read_text()


def test_wg_config_refuses_an_unknown_side() -> None:
    with pytest.raises(ValueError, match="tunnel side"):
        WanRouterConfig(private=True).wg_config("middle", ADDRESSING, PRIV, CLOUD_PUB)


def test_wg_interface_is_created_by_the_kernel_or_by_wireguard_go_in_the_foreground() -> None:
    cfg = WanRouterConfig(private=True)
    assert cfg.wg_create_argv(ROUTER, ADDRESSING, "kernel") == [
        "ip", "link", "add", "flab123-wgr", "type", "wireguard"]
    assert cfg.wg_create_argv(CLOUD, ADDRESSING, "userspace") == [
        "wireguard-go", "-f", "flab123-wgc"]
    with pytest.raises(ValueError, match="backend"):
        cfg.wg_create_argv(ROUTER, ADDRESSING, "boringtun")


def test_wg_setup_commands_load_config_address_and_raise_the_interface() -> None:
    cmds = WanRouterConfig(private=True).wg_setup_commands(CLOUD, ADDRESSING, Path("/x/c.conf"))
    assert cmds == [["wg", "setconf", "flab123-wgc", "/x/c.conf"],
                    ["ip", "address", "add", "10.200.0.2/30", "dev", "flab123-wgc"],
                    ["ip", "link", "set", "flab123-wgc", "up"]]


def test_site_routes_and_control_plane_address_follow_private() -> None:
    nat, private = WanRouterConfig(), WanRouterConfig(private=True)
    assert nat.site_routes(ADDRESSING) == [("10.77.0.0/29", "10.9.0.1")]
    assert private.site_routes(ADDRESSING) == [("10.77.0.0/29", "10.9.0.1"),
                                               ("10.200.0.0/30", "10.9.0.1")]
    assert nat.control_plane_address(ADDRESSING) == "10.77.0.2"
    assert private.control_plane_address(ADDRESSING) == "10.200.0.2"


def test_tunnel_addresses_are_the_first_two_hosts_of_the_tunnel_subnet() -> None:
    router, cloud = WanRouterConfig(tunnel_subnet="10.250.3.8/29").tunnel_addresses()
    assert (str(router), str(cloud)) == ("10.250.3.9/29", "10.250.3.10/29")
