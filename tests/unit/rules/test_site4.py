"""SITE-4: all nodes of one cluster are in the same layer-2 domain.

The guide: "KubeFlex currently assumes that all node-to-node communication will be in a
LAN and that all nodes in the same cluster will be in the same layer-2 domain." A node's
domain is read off the wire: where its own requests are heard directly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from failing import shows_failing

from harness.capture import decode_pcap
from harness.capture.synth_flows import BIOS, UEFI, Flow, bios_flow, relayed_flow, uefi_flow
from harness.rules import Report, RuleContext
from harness.rules.l2 import heard_directly, l2_domains, relayed_in

pytestmark = pytest.mark.unit

PROXY_IP = "10.0.0.2"  # the synthetic flows' proxy (conftest.make_judge's default)
Judge = Callable[..., Report]

RELAYED_MAC = "52:54:00:00:00:55"  # relayed_flow's client


def ctx(clusters: dict[str, set[str]], domains: dict[str, set[str]] | None = None
        ) -> RuleContext:
    return RuleContext(proxies=frozenset({PROXY_IP}),
                       clusters={c: frozenset(m) for c, m in clusters.items()},
                       l2_domains={s: frozenset(m) for s, m in (domains or {}).items()})


def both(f: Flow) -> None:
    bios_flow(f)
    relayed_flow(f)


@shows_failing("SITE-4")
def test_a_cluster_heard_directly_and_behind_a_relay_is_split(judge: Judge) -> None:
    report = judge(both, context=ctx({"alpha": {BIOS.mac, RELAYED_MAC}}))
    assert report.failed_rules() == {"SITE-4"}
    (f,) = report.for_rule("SITE-4")
    assert f.message.startswith("cluster alpha is split across 2 layer-2 domains "
                                "(behind relay 10.1.0.1, this segment)"), f.message
    assert f"this segment: {BIOS.mac}" in f.message and RELAYED_MAC in f.message


@shows_failing("SITE-4")
def test_a_cluster_on_two_segments_fails_naming_both(judge: Judge) -> None:
    """The run's map (every segment's capture) places the other node on another segment,
    which this capture alone could never show."""
    context = ctx({"alpha": {BIOS.mac, UEFI.mac}},
                  {"lan1": {BIOS.mac}, "lan2": {UEFI.mac}, "lan3": set()})
    (f,) = judge(bios_flow, context=context).for_rule("SITE-4")
    assert f.verdict.value == "fail"
    assert f"(lan1, lan2) — lan1: {BIOS.mac}; lan2: {UEFI.mac}" in f.message


def test_one_domain_per_cluster_passes_and_clusters_may_share_it(judge: Judge) -> None:
    """Two clusters in one L2 domain are fine ("Multiple clusters may occupy the same
    layer-2 domain when MAC filtering is applied"); so is a cluster wholly behind a relay."""
    def three(f: Flow) -> None:
        bios_flow(f)
        uefi_flow(f)
        relayed_flow(f)

    context = ctx({"alpha": {BIOS.mac}, "beta": {UEFI.mac}, "far": {RELAYED_MAC}})
    (f,) = judge(three, context=context).for_rule("SITE-4")
    assert (f.verdict.value, f.message) == ("pass", "3 clusters checked")


def test_without_cluster_membership_it_is_not_applied(judge: Judge) -> None:
    (f,) = judge(both).for_rule("SITE-4")
    assert f.verdict.value == "not-applicable" and "cluster membership" in f.message
    (g,) = judge(both, context=ctx({"other": {"52:54:00:99:99:99"}})).for_rule("SITE-4")
    assert g.verdict.value == "not-applicable" and "no node of a known cluster" in g.message


def test_the_l2_map_counts_only_requests_a_client_sent_itself(tmp_path: Path) -> None:
    f = Flow()
    both(f)
    capture = decode_pcap(f.b.write(str(tmp_path / "both.pcap")))
    assert heard_directly(capture) == {BIOS.mac}
    assert relayed_in(capture) == {"10.1.0.1": frozenset({RELAYED_MAC})}
    assert l2_domains({"core": capture}) == {"core": frozenset({BIOS.mac})}
