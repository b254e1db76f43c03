"""plan(): the decisions it makes, spelled out, and every scenario it refuses to wire."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.errors import FlexlabError
from harness.plan import PlanError, describe, plan
from harness.plan.items import (
    HostOn,
    RelayedRange,
    RelayPlan,
    Route,
    SitePlan,
)
from harness.plan.topology import pool_size
from harness.scenario.loader import load_scenario, parse_scenario
from harness.scenario.model import Scenario

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
ALL = sorted([*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("scenarios/vm/*.yaml"),
              *ROOT.glob("fixtures/sites/*.yaml")])


def scenario(path: str) -> Scenario:
    return load_scenario(ROOT / path)


def planned(text: str, **kw: str) -> SitePlan:
    return plan(parse_scenario(text), **kw)


def problems(text: str) -> tuple[str, ...]:
    """The problems plan() names for a scenario that parses but cannot be wired."""
    with pytest.raises(PlanError) as caught:
        plan(parse_scenario(text))
    return caught.value.problems


LAN = """
name: t
segments: [{name: lan}]
site_dhcp: [{segment: lan}]
clusters: [{name: alpha}]
"""


# -- decisions -------------------------------------------------------------------------
def test_relay_forwards_to_every_upstream_server_and_each_gets_a_route_back() -> None:
    site = plan(scenario("scenarios/relay.yaml"))
    gateway = HostOn("relay1", "core")
    assert site.relays == (RelayPlan(
        name="relay-lan", host="relay1", downstream="lan", upstream="core",
        servers=(HostOn("dhcp0", "core"), HostOn("bp1", "core")),
        routes=(Route("dhcp0", "lan", gateway), Route("bp1", "lan", gateway))),)
    assert site.relays[0].giaddr == HostOn("relay1", "lan")
    (dhcp,) = site.dhcp_servers
    assert dhcp.relayed == (RelayedRange("lan", HostOn("relay1", "lan")),)
    assert site.rule_inputs.relays == (HostOn("relay1", "lan"),)
    assert {m.attach_host for m in site.machines} == {"mach1"}
    assert {m.cp_via for m in site.machines} == {HostOn("cp", "lan")}
    assert site.proxy("bp1").cp_via == HostOn("cp", "core")


def test_snooping_trust_is_resolved_to_hosts_and_a_relay_port_is_trusted() -> None:
    assert plan(scenario("scenarios/snooping.yaml")).snooping[0].trusted == ("dhcp0",)
    site = planned("""
name: t
segments:
  - {name: core}
  - {name: lan, relay: {upstream: core}, snooping: {trusted: [bp2]}}
site_dhcp: [{segment: core}]
proxies: [{name: bp1, segments: [core]}, {name: bp2, segments: [lan]}]
""")
    assert site.snooping[0].segment == "lan"
    assert site.snooping[0].trusted == ("relay1", "bp2")


def test_storm_segment_is_sized_and_its_machines_reserved_in_order() -> None:
    site = plan(scenario("scenarios/boot-storm.yaml"))
    assert site.topology.segment("lan").prefixlen == 22   # 4 x 200 + 64 addresses
    (pool,) = site.dhcp_servers[0].reserved
    assert pool.segment == "lan" and len(pool.macs) == 200
    assert pool.macs == tuple(m.mac for m in site.machines)
    assert pool.leases("10.0.2.0")[pool.macs[1]] == "10.0.2.1"
    assert plan(scenario("scenarios/smoke.yaml")).dhcp_servers[0].reserved == ()


def test_proxy_kind_is_decided_by_kind_image_and_tier() -> None:
    text = LAN + """
proxies:
  - {name: dflt, segments: [lan]}
  - {name: proc, segments: [lan], kind: process}
  - {name: cont, segments: [lan], kind: container}
  - {name: img, segments: [lan], image: "example/bp:2"}
  - {name: dq, segments: [lan], kind: dnsmasq}
"""
    def kinds(text: str, **run: str) -> dict[str, tuple[str, str | None]]:
        return {p.name: (p.kind, p.image) for p in planned(text, **run).proxies}

    # the container (the image a site deploys) unless the file says process
    assert kinds(text) == {"dflt": ("container", None), "proc": ("process", None),
                           "cont": ("container", None), "img": ("container", "example/bp:2"),
                           "dq": ("dnsmasq", None)}
    run_image = kinds(text, boot_proxy_image="example/bp:9")
    assert run_image["proc"] == run_image["dflt"] == ("container", "example/bp:9")
    assert run_image["dq"] == ("dnsmasq", None)
    # a run's --boot-proxy-kind process debugs our proxy everywhere, not someone's image
    debug = kinds(text, boot_proxy_kind="process")
    assert debug == {"dflt": ("process", None), "proc": ("process", None),
                     "cont": ("process", None), "img": ("container", "example/bp:2"),
                     "dq": ("dnsmasq", None)}
    assert kinds(text, boot_proxy_kind="container")["proc"] == ("container", None)
    vm = kinds(text.replace("name: t", "name: t\ntier: vm"))
    assert vm["proc"][0] == vm["dflt"][0] == "container" and vm["dq"][0] == "dnsmasq"


def test_dnsmasq_proxy_serves_exactly_its_clusters_macs() -> None:
    site = plan(scenario("scenarios/dnsmasq-proxy.yaml"))
    by_group = {m.group: m.mac for m in site.machines}
    assert site.proxy("dq1").served_macs == tuple(sorted([by_group["bios"], by_group["uefi"]]))
    assert by_group["stranger"] not in site.proxy("dq1").served_macs


def test_seed_profile_and_copies_of_the_vm_tier() -> None:
    site = plan(scenario("scenarios/vm/vm-cluster.yaml"))
    assert site.seed.profile is not None
    assert site.seed.profile.artifacts == "node-image"
    assert site.seed.profile.cmdline.startswith("console=ttyS0 panic=-1 flexlab.cp={cp_url} ")
    assert {m.driver for m in site.machines} == {"vm"}
    assert [(m.key, m.nic, m.role) for m in site.machines] == [
        ("bios", "virtio", "control-plane"), ("uefi", "virtio", "worker"),
        ("e1000", "e1000", "worker")]
    sim = plan(scenario("scenarios/smoke.yaml"))
    assert sim.seed.profile is not None and sim.seed.profile.artifacts == "stand-in"


def test_stranger_gets_no_seed_and_a_cluster_without_machines_expects_one() -> None:
    site = planned("""
name: t
segments: [{name: lan}]
site_dhcp: [{segment: lan}]
clusters: [{name: alpha}, {name: empty}]
machines: [{name: n, segment: lan, cluster: alpha, count: 2}, {name: s, segment: lan}]
""")
    assert [m.key for m in site.seed.machines] == ["n1", "n2"]
    assert [(c.name, c.expected_nodes) for c in site.seed.clusters] == [("alpha", 2),
                                                                       ("empty", 1)]
    assert site.keys("n") == ["n1", "n2"] and site.keys("s") == ["s"]


def test_a_clusterless_site_has_no_boot_profile() -> None:
    site = planned("name: t\nsegments: [{name: lan}]\n")
    assert site.seed.profile is None and site.seed.clusters == ()


def test_steps_are_in_time_order_with_targets_resolved() -> None:
    site = planned(LAN + """
proxies: [{name: bp1, segments: [lan], clusters: [alpha], start: by-step}]
machines: [{name: n, segment: lan, cluster: alpha, count: 2}]
steps:
  - {at: 0, action: power_on, machines: [n]}
  - {at: 0, action: start_proxy, proxy: bp1}
  - {at: 1, action: cut_link, host: site-dhcp, segment: lan}
  - {at: 1, action: netem, host: n, segment: lan, delay_ms: 5}
  - {at: 2, action: restore_link, host: bp1, segment: lan}
""")
    assert [(s.at, s.action, s.keys, s.link) for s in site.steps] == [
        (0, "power_on", ("n1", "n2"), None), (0, "start_proxy", (), None),
        (1, "cut_link", (), HostOn("dhcp0", "lan")), (1, "netem", (), HostOn("mach0", "lan")),
        (2, "restore_link", (), HostOn("bp1", "lan"))]


def test_whole_site_slots_are_empty_today() -> None:
    site = plan(scenario("scenarios/smoke.yaml"))
    assert (site.wan, site.dns, site.ntp) == (None, None, None)
    assert site.control_plane.placement == "every-segment"


def test_plan_is_frozen_and_pure() -> None:
    first, again = plan(scenario("scenarios/relay.yaml")), plan(scenario("scenarios/relay.yaml"))
    assert first == again
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.relays[0].servers = ()  # type: ignore[misc]


def test_rule_inputs_resolve_to_a_rule_context() -> None:
    site = plan(scenario("scenarios/multi-proxy.yaml"))
    ctx = site.rule_inputs.context(lambda host, seg: f"{host}.{seg}")
    assert ctx.proxies == frozenset({"bp1.lan", "bp2.lan"})
    assert ctx.site_dhcp == frozenset({"dhcp0.lan"}) and ctx.relays == frozenset()
    alpha = {m.mac for m in site.machines if m.cluster == "alpha"}
    assert ctx.serves["bp1.lan"] == alpha
    assert site.proxy_name("bp2.lan", lambda host, seg: f"{host}.{seg}") == "bp2"
    assert site.proxy_name("10.9.9.9", lambda host, seg: f"{host}.{seg}") == "10.9.9.9"


def test_pool_size_matches_the_labs_upper_half() -> None:
    assert pool_size(24) == 127     # .128-.254
    assert pool_size(16) == 32767


# -- what cannot be wired ----------------------------------------------------------------
def test_dnsmasq_proxy_on_two_segments_or_with_an_image() -> None:
    found = problems("""
name: t
segments: [{name: a}, {name: b}]
site_dhcp: [{segment: a}, {segment: b}]
proxies: [{name: dq, segments: [a, b], kind: dnsmasq, image: "x/y:1"}]
""")
    assert len(found) == 2
    assert "kind dnsmasq serves exactly one segment, not 2 (a, b)" in found[0]
    assert "image 'x/y:1' cannot be used" in found[1]


def test_relay_without_anything_upstream() -> None:
    found = problems("""
name: t
segments: [{name: core}, {name: lan, relay: {upstream: core}}]
site_dhcp: [{segment: lan}]
""")
    assert found == ("relay on segment 'lan' forwards to segment 'core', where no site DHCP "
                     "server or Boot Proxy listens; put one there or change the upstream",)


def test_powered_machine_without_site_dhcp_but_an_unpowered_one_is_fine() -> None:
    text = """
name: t
segments: [{name: lan}, {name: far, relay: {upstream: lan}}, {name: dark}]
proxies: [{name: bp1, segments: [lan]}]
machines: [{name: n, segment: dark, count: 2}, {name: r, segment: far}]
"""
    assert planned(text).machines  # site-check labs power nothing on
    found = problems(text + "steps: [{at: 0, action: power_on, machines: [n, r]}]\n")
    assert found == (
        "machine 'n' is powered on, but segment 'dark' has no site DHCP server (none on it, "
        "none behind a relay): it would never get an address",
        "machine 'r' is powered on, but segment 'far' has no site DHCP server (none on it, "
        "none behind a relay): it would never get an address")
    # behind a relay whose upstream has a site DHCP server: served
    planned(text.replace("segments: [{name: lan}", "site_dhcp: [{segment: lan}]\n"
                         "segments: [{name: lan}").replace(", {name: dark}", "")
            .replace("{name: n, segment: dark, count: 2}, ", "")
            + "steps: [{at: 0, action: power_on, machines: [r]}]\n")


def test_snooping_trusting_a_proxy_with_no_port_there() -> None:
    found = problems("""
name: t
segments: [{name: lan, snooping: {trusted: [bp1]}}, {name: core}]
site_dhcp: [{segment: lan}]
proxies: [{name: bp1, segments: [core]}]
""")
    assert found == ("snooping on segment 'lan' trusts 'bp1', which has no port on 'lan'; "
                     "trust only components linked to that segment",)


def test_steps_that_cannot_act() -> None:
    found = problems(LAN + """
proxies: [{name: bp1, segments: [lan], start: by-step}, {name: bp2, segments: [lan]}]
machines: [{name: n, segment: lan}]
steps:
  - {at: 0, action: stop_proxy, proxy: bp1}
  - {at: 1, action: stop_proxy, proxy: bp2}
  - {at: 2, action: netem, host: cp, segment: lan}
""")
    # a step missing what its action needs, or naming an unknown host, no longer loads
    # (tests/unit/scenario/test_steps.py); the plan still refuses what only it can see
    assert found == (
        "step 1 (stop_proxy at 0s) stops proxy 'bp1' before any step starts it",)


def test_copy_name_clash_and_a_driver_the_tier_cannot_give() -> None:
    found = problems(LAN + """
machines:
  - {name: a, segment: lan, count: 2}
  - {name: a1, segment: lan, driver: vm}
""")
    assert found == (
        "machine 'a1': copy 'a1' has the name of a copy of 'a'; rename one of the machines",
        "machine 'a1' asks for driver 'vm', but a sim-tier run drives every machine with "
        "'sim'; drop driver: or change the scenario's tier")


def test_every_problem_is_reported_at_once_as_a_flexlab_error() -> None:
    with pytest.raises(FlexlabError) as caught:
        plan(parse_scenario("""
name: t
segments: [{name: lan}, {name: far, relay: {upstream: core}}, {name: core}]
proxies: [{name: dq, segments: [lan, far], kind: dnsmasq}]
machines: [{name: n, segment: lan, driver: vm}]
steps: [{at: 0, action: power_on, machines: [n]}]
"""))
    error = caught.value
    assert isinstance(error, PlanError)
    assert len(error.problems) == 4
    assert str(error).startswith("scenario 't' cannot be wired (4 problems):\n  - ")
    assert all(f"  - {p}" in str(error) for p in error.problems)


def test_unresolved_names_from_an_unloaded_scenario_are_plan_errors() -> None:
    built_in_code = Scenario.model_validate({
        "name": "t", "segments": [{"name": "lan"}],
        "machines": [{"name": "n", "segment": "nowhere"}]})
    with pytest.raises(PlanError) as caught:
        plan(built_in_code)
    assert "which does not exist" in caught.value.problems[0]


# -- describe ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_describe_fits_one_screen(path: Path) -> None:
    text = describe(plan(load_scenario(path)))
    assert len(text.splitlines()) <= 40
    assert text.splitlines()[0].startswith(f"plan {load_scenario(path).name}: ")


def test_describe_says_who_talks_to_whom() -> None:
    relay = describe(plan(scenario("scenarios/relay.yaml")))
    assert ("relay:      relay-lan on relay1: lan -> core, servers dhcp0@core, bp1@core; "
            "routes back on bp1, dhcp0") in relay.splitlines()
    assert "dhcp:       site-dhcp0 dhcp0@core; relayed lan (router relay1@lan)" in relay
    storm = describe(plan(scenario("scenarios/boot-storm.yaml")))
    assert "machines:   bios x100 seabios-ipxe/virtio (sim) on lan via mach0, storm worker" \
        in storm.splitlines()
    assert "reserves 200 on lan" in storm and "… +196" in storm
    assert "snooping:   lan trusts dhcp0" in describe(plan(scenario("scenarios/snooping.yaml")))
    assert "proxy:      dq1 dnsmasq on lan" in describe(
        plan(scenario("scenarios/dnsmasq-proxy.yaml")))
