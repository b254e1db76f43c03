"""A standalone site built from its plan: the Control Plane on a management segment
reached by routing (not a leg on the boot LAN), BIND and chrony on the site, the site
DHCP announcing gateway, DNS and NTP, the Control Plane placing names by RFC 2136.
Machines boot to Ready; the WAN/DNS/NTP rules judge the facts the lab collected.

The scenario runner builds the same items from the same plan; this test pins the
whole-site pieces (harness.site_build) on their own, with the dnsmasq and Kea kinds."""

from __future__ import annotations

import contextlib

import pytest

from harness.capture.events import Capture
from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.lab import Lab
from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.machines.sim.agent import NodeFacts
from harness.plan import plan
from harness.rules import RuleContext, check_capture
from harness.scenario.loader import parse_scenario
from harness.site_build import control_plane_args, dhcp_server, site_facts, start_site

pytestmark = [pytest.mark.sim, pytest.mark.timeout(180)]

SCENARIO = """
name: standalone-site
segments: [{name: lan}]
site_dhcp: [{segment: lan, kind: %(kind)s}]
proxies: [{name: bp1, segments: [lan], clusters: [c1]}]
clusters: [{name: c1, mode: standalone}]
machines: [{name: w, segment: lan, cluster: c1, count: 2, firmware: seabios-ipxe,
             facts: {clock_skew_s: 4.0}}]
control_plane: {location: site}
dns: {updates: %(updates)s}
ntp: {}
"""


def judge(site) -> dict[str, set[str]]:
    report = check_capture(Capture(path="-", frames=0), RuleContext(site=site),
                           rules=["WAN-1", "DNS-1", "NTP-1"])
    out: dict[str, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.rule_id, set()).add(f.verdict.value)
    return out


@pytest.mark.parametrize(("kind", "updates"), [("dnsmasq", "control-plane"),
                                               ("kea", "dhcp")])
def test_a_standalone_site_built_from_its_plan(kind: str, updates: str,
                                               make_lab) -> None:
    p = plan(parse_scenario(SCENARIO % {"kind": kind, "updates": updates}))
    lab: Lab = make_lab(p.topology)
    with contextlib.ExitStack() as stack:
        built = start_site(stack, lab, p)
        cp = ControlPlane(lab, p.control_plane.host,
                          extra_args=control_plane_args(lab, p, built))
        stack.callback(cp.close)
        cp.start()
        cp.wait_ready()
        api = cp.api
        api.create_cluster("c1", 2, mode="standalone", environment="test")
        api.upload_artifact("vmlinuz", b"K" * 4096)
        api.upload_artifact("initrd.img", b"I" * 4096)
        api.create_profile("default", "vmlinuz", "initrd.img", p.seed.profile.cmdline)
        for m in p.seed.machines:
            api.create_machine(m.mac, m.cluster, m.key, "default")
        token = api.register_proxy("bp1", ["c1"], segments=["lan"])
        cp_url = cp.url(p.control_plane.segments[0])
        assert lab.address("cp", "mgmt") in cp_url
        dhcp = dhcp_server(lab, p.dhcp_servers[0], built, None)
        dhcp.start()
        stack.callback(dhcp.stop)
        dhcp.wait_ready()
        proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp_url, cp_token=token)
        proxy.start()
        stack.callback(proxy.stop)
        proxy.wait_ready()
        specs = [EmulatorSpec(m.mac, profile("ipxe-bios"), facts=NodeFacts(clock_skew=4.0))
                 for m in p.machines]
        result = Fleet(lab, p.machine_host("lan"), "lan", specs, scale=0.1).run(90)
        state = {"machines": [m.model_dump(mode="json") for m in api.machines()],
                 "events": [e.model_dump(mode="json") for e in api.events()]}
        facts = site_facts(lab, p, built, state, None)
    for spec in specs:
        m = result.by_mac(spec.mac)
        assert m["state"] == "done", (m["error"], m["timeline"])
    assert {m["state"] for m in state["machines"]} == {"Ready"}
    assert facts is not None and facts.dns is not None and facts.clocks is not None
    assert {n.hostname for n in facts.dns} == {"w1", "w2"}
    verdicts = judge(facts)
    assert verdicts["DNS-1"] == {"pass"}, facts.dns
    assert verdicts["NTP-1"] == {"pass"}, facts.clocks
    assert verdicts["WAN-1"] == {"not-applicable"}   # standalone: no WAN in this site
