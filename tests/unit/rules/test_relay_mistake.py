"""SITE-3's diagnosis of a common site mistake: a relay (ip helper) that forwards PXE
DISCOVERs to the site DHCP server but not to the Boot Proxy, read off the servers'
segment, where the relayed copies show every address the relay sends them to."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from failing import shows_failing

from harness.capture.synth import ip4
from harness.capture.synth_flows import Client, Flow, Spec, relayed_flow
from harness.rules import Report, RuleContext

pytestmark = pytest.mark.unit

Judge = Callable[..., Report]
PROXY_IP = "10.0.0.2"
NODE = Client(mac="52:54:00:00:00:55", ip="10.1.0.50", xid=0x55555555)
SERVES_NODE = RuleContext(proxies=frozenset({PROXY_IP}),
                          serves={PROXY_IP: frozenset({NODE.mac})})


def helper_to_dhcp_only(f: Flow) -> None:
    """The relay sends the node's DISCOVER (twice, 4 s apart) to the site DHCP server
    alone, which offers an address; nothing reaches the Boot Proxy."""
    relay, dhcp = f.site.relay, f.site.dhcp
    opts = f.client_options(NODE, 1, [])
    for dt in (0.01, 4.5):
        f.emit("discover", Spec(relay, dhcp, 67, 67, 1, NODE.xid, NODE.mac, opts,
                                {"giaddr": relay.ip, "hops": 1}), dt=dt)
        f.emit("offer", Spec(dhcp, relay, 67, 67, 2, NODE.xid, NODE.mac,
                             [(53, b"\x02"), (54, ip4(dhcp.ip)), (51, b"\x00\x00\x0e\x10")],
                             {"giaddr": relay.ip, "yiaddr": NODE.ip, "flags": 0x8000}),
               dt=0.05)


@shows_failing("SITE-3")
def test_a_relay_that_skips_the_boot_proxy_is_named(judge: Judge) -> None:
    report = judge(helper_to_dhcp_only, context=SERVES_NODE)
    assert report.failed_rules() == {"SITE-3"}
    (f,) = report.for_rule("SITE-3")
    assert f.message == (
        "no ProxyDHCP offer although a Boot Proxy serves it: the relay does not forward to "
        "the Boot Proxy — relay 10.1.0.1 sent this client's DISCOVERs to 10.0.0.1 only, "
        "never to 10.0.0.2, which serves it (add it to the relay's helper addresses)")


def test_a_relay_that_reaches_the_proxy_is_not_blamed(judge: Judge) -> None:
    """Relayed to the proxy, which stays silent: SITE-3 fails, but not on the relay."""
    def silent(f: Flow) -> None:
        relayed_flow(f, NODE)
        helper_to_dhcp_only(f)

    report = judge(silent, context=SERVES_NODE,
                   tweaks={"proxy_offer": lambda spec: False})
    (f,) = report.for_rule("SITE-3")
    assert f.verdict.value == "fail" and f.message == (
        "no ProxyDHCP offer although a Boot Proxy serves it")
