"""The whole site's wiring: the Control Plane placed like a real site's (management
segment, or the cloud beyond the WAN), routes instead of multi-homing, the site's DNS
and NTP announced by its DHCP, and the guide's modes enforced."""

from __future__ import annotations

import pytest

from harness.plan import PlanError, plan
from harness.plan.items import DefaultRoute, HostOn, Route
from harness.scenario.loader import parse_scenario

pytestmark = pytest.mark.unit

BASE = """
name: whole
segments: [{name: lan}, {name: far, relay: {upstream: lan}}]
site_dhcp: [{segment: lan%(kind)s}]
proxies: [{name: bp1, segments: [lan], clusters: [c1]}]
clusters: [{name: c1, mode: %(mode)s}]
machines:
  - {name: w, segment: lan, cluster: c1, count: 2}
  - {name: r, segment: far, cluster: c1}
steps: [{at: 0, action: power_on, machines: [w, r]}]
"""


def site(extra: str, *, mode: str = "standalone", kind: str = ""):
    return plan(parse_scenario(BASE % {"mode": mode, "kind": kind} + extra))


def hosts_of(p) -> dict[str, tuple[str, ...]]:
    return {h.name: tuple(link.segment for link in h.links) for h in p.topology.hosts}


def test_standalone_control_plane_lives_on_the_management_segment_only() -> None:
    p = site("control_plane: {location: site}\ndns: {}\nntp: {}\n")
    hosts = hosts_of(p)
    assert hosts["cp"] == ("mgmt",)            # no leg on any boot segment
    assert hosts["gw"] == ("lan", "mgmt")      # the site router; 'far' is behind its relay
    assert hosts["svc"] == ("mgmt",)
    assert "wan" not in hosts and "cloud" not in hosts
    assert p.control_plane.placement == "site"
    assert {m.cp_via for m in p.machines} == {HostOn("cp", "mgmt")}
    assert p.proxy("bp1").cp_via == HostOn("cp", "mgmt")
    assert p.control_plane.dns_updates is True
    routes = set(p.routes)
    assert DefaultRoute("bp1", HostOn("gw", "lan")) in routes
    assert DefaultRoute("dhcp0", HostOn("gw", "lan")) in routes
    assert DefaultRoute("relay1", HostOn("gw", "lan")) in routes
    assert Route("cp", "lan", HostOn("gw", "mgmt")) in routes
    assert Route("cp", "far", HostOn("gw", "mgmt")) in routes
    assert Route("gw", "far", HostOn("relay1", "lan")) in routes
    dhcp = p.dhcp_servers[0]
    assert dhcp.router == HostOn("gw", "lan")
    assert dhcp.dns == HostOn("svc", "mgmt") and dhcp.ntp == HostOn("svc", "mgmt")
    assert dhcp.domain == "site.test" and not dhcp.ddns
    assert dict(p.gateways) == {"lan": HostOn("gw", "lan"), "far": HostOn("relay1", "far")}


def test_hybrid_control_plane_is_in_the_cloud_behind_nat_and_the_tunnel() -> None:
    p = site("control_plane: {location: cloud}\nwan: {private: true}\n"
             "dns: {updates: dhcp}\nntp: {}\n", mode="hybrid", kind=", kind: kea")
    hosts = hosts_of(p)
    assert "cp" not in hosts
    assert hosts["wan"] == ("mgmt", "wan") and hosts["cloud"] == ("wan",)
    assert p.control_plane.placement == "cloud" and p.control_plane.tls
    assert {m.cp_via for m in p.machines} == {HostOn("cloud", "wan")}
    assert p.wan is not None and p.wan.private and p.wan.egress_ports == (80, 443, 8888)
    assert DefaultRoute("gw", HostOn("wan", "mgmt")) in p.routes
    assert Route("wan", "lan", HostOn("gw", "mgmt")) in p.routes
    dhcp = p.dhcp_servers[0]
    assert dhcp.kind == "kea" and dhcp.ddns
    assert dict(dhcp.hostnames) == {m.mac: m.key for m in p.machines}
    assert not p.control_plane.dns_updates


def test_a_wan_alone_puts_the_control_plane_in_the_cloud() -> None:
    p = site("wan: {ports: [443]}\n", mode="hybrid")
    assert p.control_plane.placement == "cloud"
    assert p.wan is not None and p.wan.egress_ports == (443,)
    assert p.dns is None and p.ntp is None and p.dhcp_servers[0].dns is None


def test_tls_fault_is_planned_for_the_control_plane() -> None:
    p = site("control_plane: {location: cloud, tls_fault: wrong-ca}\n", mode="hybrid")
    assert p.control_plane.tls_fault == "wrong-ca"


def test_the_lab_shortcut_stays_when_nothing_of_the_site_is_declared() -> None:
    p = site("")
    assert hosts_of(p)["cp"] == ("lan", "far")
    assert p.control_plane.placement == "every-segment" and p.routes == ()
    assert "gw" not in hosts_of(p)


@pytest.mark.parametrize(("extra", "mode", "kind", "message"), [
    ("control_plane: {location: site}\n", "hybrid", "", "cluster 'c1' is hybrid"),
    ("control_plane: {location: cloud}\n", "standalone", "", "no cluster is hybrid"),
    ("control_plane: {location: site}\ndns: {updates: dhcp}\n", "standalone", "",
     "site-dhcp0 is dnsmasq"),
    ("control_plane: {location: cloud}\ndns: {updates: control-plane}\n", "hybrid", "",
     "would open a connection into the site"),
])
def test_modes_and_dns_updates_are_checked(extra: str, mode: str, kind: str,
                                           message: str) -> None:
    with pytest.raises(PlanError) as err:
        site(extra, mode=mode, kind=kind)
    assert message in str(err.value)


def test_reserved_names_are_refused_in_a_whole_site() -> None:
    text = (BASE % {"mode": "standalone", "kind": ""}).replace("name: bp1", "name: gw") \
        .replace("[bp1]", "[gw]") + "control_plane: {location: site}\n"
    with pytest.raises(PlanError, match="'gw' names the whole site's own"):
        plan(parse_scenario(text))


@pytest.mark.parametrize(("text", "message"), [
    ("wan: {ports: [80, 80]}\n", "ports listed twice"),
    ("wan: {ports: [70000]}\n", "not TCP ports"),
    ("wan: {ports: []}\n", "no port open"),
    ("wan: {mtu: 9000}\n", "mtu"),
    ("dns: {zone: 'Bad_Zone'}\n", "zone"),
    ("control_plane: {tls_fault: stale}\n", "tls_fault"),
])
def test_bad_whole_site_input_is_a_clear_error(text: str, message: str) -> None:
    from harness.scenario.loader import ScenarioError

    with pytest.raises(ScenarioError, match=message):
        parse_scenario(BASE % {"mode": "hybrid", "kind": ""} + text)


MIXED = """
name: mixed
segments: [{name: lan}, {name: far, relay: {upstream: lan}}]
site_dhcp: [{segment: lan, kind: kea}]
proxies:
  - {name: bp1, segments: [lan], clusters: [cloudy]}
  - {name: bp2, segments: [lan], clusters: [local]}
clusters: [{name: cloudy, mode: hybrid}, {name: local, mode: standalone}]
machines:
  - {name: h, segment: lan, cluster: cloudy}
  - {name: s, segment: far, cluster: local}
  - {name: x, segment: lan}
control_plane: {location: cloud}
wan: {private: true}
dns: {updates: dhcp}
steps: [{at: 0, action: power_on, machines: [h, s, x]}]
"""


def test_a_mixed_site_has_a_cloud_and_a_site_control_plane_each_seeded_with_its_own() -> None:
    p = plan(parse_scenario(MIXED))
    hosts = hosts_of(p)
    assert hosts["cloud"] == ("wan",) and hosts["cp"] == ("mgmt",)
    assert p.control_plane.placement == "cloud" and p.control_plane.host == "cloud"
    site_cp = p.site_control_plane
    assert site_cp is not None and site_cp.placement == "site" and site_cp.host == "cp"
    assert site_cp.name != p.control_plane.name and not site_cp.tls_fault
    assert [cp.host for cp, _ in p.control_planes()] == ["cloud", "cp"]
    # each cluster, its machines and its proxy are registered at their own Control Plane
    cloud_seed, site_seed = p.seed, p.site_seed
    assert site_seed is not None
    assert [c.name for c in cloud_seed.clusters] == ["cloudy"]
    assert [c.name for c in site_seed.clusters] == ["local"]
    assert [m.key for m in cloud_seed.machines] == ["h"]
    assert [m.key for m in site_seed.machines] == ["s"]
    assert [px.name for px in cloud_seed.proxies] == ["bp1"]
    assert [px.name for px in site_seed.proxies] == ["bp2"]
    # and talk to it: the hybrid ones over the WAN, the standalone ones on site; a
    # stranger is nobody's, so it is pointed at the main one
    assert p.proxy("bp1").cp_via == HostOn("cloud", "wan")
    assert p.proxy("bp2").cp_via == HostOn("cp", "mgmt")
    via = {m.key: m.cp_via for m in p.machines}
    assert via == {"h": HostOn("cloud", "wan"), "s": HostOn("cp", "mgmt"),
                   "x": HostOn("cloud", "wan")}
    assert p.control_plane_of("cp") is site_cp
    # the site Control Plane is reached by routing too
    assert Route("cp", "far", HostOn("gw", "mgmt")) in set(p.routes)


def test_a_single_mode_site_has_one_control_plane() -> None:
    p = plan(parse_scenario(MIXED.replace("mode: standalone", "mode: hybrid")))
    assert p.site_control_plane is None and p.site_seed is None
    assert "cp" not in hosts_of(p)
    assert len(p.control_planes()) == 1


def test_a_proxy_serving_both_modes_is_refused() -> None:
    text = MIXED.replace("clusters: [cloudy]}", "clusters: [cloudy, local]}")
    with pytest.raises(PlanError, match="proxy 'bp1' serves hybrid and standalone clusters"):
        plan(parse_scenario(text))
