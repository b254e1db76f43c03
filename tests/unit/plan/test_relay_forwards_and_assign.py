"""Two site mistakes made plannable: a relay whose helper list lacks the Boot Proxy
(``relay.forwards_to``), and machines the Control Plane assigns only later (``assign``)."""

from __future__ import annotations

import pytest

from harness.plan import PlanError, plan
from harness.scenario.loader import ScenarioError, parse_scenario

pytestmark = pytest.mark.unit

RELAYED = """
name: t
segments: [{name: core}, {name: lan, relay: {upstream: core%s}}]
site_dhcp: [{segment: core}]
proxies: [{name: bp1, segments: [core], clusters: [alpha]}, {name: bp2, segments: [lan]}]
clusters: [{name: alpha}]
machines: [{name: m, segment: lan, cluster: alpha}]
"""


def test_a_relay_forwards_to_every_upstream_server_unless_told() -> None:
    (relay,) = plan(parse_scenario(RELAYED % "")).relays
    assert [s.host for s in relay.servers] == ["dhcp0", "bp1"]


def test_forwards_to_site_dhcp_leaves_the_proxy_out_but_keeps_its_route() -> None:
    (relay,) = plan(parse_scenario(RELAYED % ", forwards_to: [site-dhcp]")).relays
    assert [s.host for s in relay.servers] == ["dhcp0"]
    assert [r.host for r in relay.routes] == ["dhcp0", "bp1"]  # routing is not the mistake


def test_forwards_to_a_proxy_that_is_not_upstream_cannot_be_wired() -> None:
    with pytest.raises(PlanError) as caught:
        plan(parse_scenario(RELAYED % ", forwards_to: [site-dhcp, bp2]"))
    assert caught.value.problems == (
        "relay on segment 'lan' forwards to 'bp2', which is not on its upstream segment "
        "'core'",)


def test_forwards_to_an_unknown_name_is_a_file_problem() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(RELAYED % ", forwards_to: [nobody]")
    assert str(caught.value) == ("<string>:3: relay forwards to 'nobody', neither 'site-dhcp' "
                                 "nor a declared proxy")


ASSIGNED = RELAYED % "" + """steps:
  - {at: 0, action: power_on, machines: [m]}
  - {at: 2, action: assign, machines: [m]}
"""


def test_a_machine_assigned_by_a_step_is_not_seeded_at_the_start() -> None:
    seed = plan(parse_scenario(ASSIGNED)).seed
    assert [m.key for m in seed.machines] == []
    assert [(m.key, m.cluster) for m in seed.later] == [("m", "alpha")]
    assert [s.action for s in plan(parse_scenario(ASSIGNED)).steps] == ["power_on", "assign"]


def test_assigning_a_stranger_or_an_unknown_machine_is_refused() -> None:
    text = ASSIGNED.replace("machines: [{name: m, segment: lan, cluster: alpha}]",
                            "machines: [{name: m, segment: lan}]").replace(
        "action: assign, machines: [m]", "action: assign, machines: [m, x]")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    assert str(caught.value).splitlines() == [
        "<string>:10: step 2 names unknown machine 'x'",
        "<string>:10: step 2 assigns machine 'm', which has no cluster"]
