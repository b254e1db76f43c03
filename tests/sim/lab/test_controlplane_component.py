"""The Control Plane in a lab namespace drives the real Boot Proxy's MAC filter."""

from __future__ import annotations

import pytest

from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Host, HostLink, Segment, Topology
from harness.wait import wait_until

from .cp_seed import seed_one_machine
from .pxe_probe import pxe_discover

pytestmark = pytest.mark.sim

TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("cp", (HostLink("lan"),)), Host("dhcp", (HostLink("lan"),)),
           Host("bp1", (HostLink("lan"),)), Host("known", (HostLink("lan", None),)),
           Host("stranger", (HostLink("lan", None),))),
)


def test_proxy_answers_only_what_the_control_plane_assigned(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            token = seed_one_machine(cp, lab)
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token)
            with SiteDhcp(lab, "dhcp", "lan"), proxy:
                # the proxy logs each assignment list it takes from the Control Plane
                wait_until(lambda: '"assignments_updated"' in proxy.logs(), timeout=10,
                           what="the proxy to sync assignments", evidence=proxy.logs)
                known = pxe_discover(lab, "known", "lan")
                stranger = pxe_discover(lab, "stranger", "lan")
    finally:
        cp.close()
    proxy_offers = [r for r in known if r["yiaddr"] == "0.0.0.0"]
    assert len(proxy_offers) == 1, known
    assert proxy_offers[0]["server_id"] == lab.address("bp1", "lan")
    assert [r for r in stranger if r["yiaddr"] == "0.0.0.0"] == [], stranger
    assert len(stranger) == 1  # the site DHCP server still offers it an address


def test_control_plane_over_https_with_a_lab_ca(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    cp = ControlPlane(lab, "cp", tls=True)
    try:
        with cp:
            assert cp.url("lan").startswith("https://")
            assert cp.api.healthz().status == "ok"
            cp.api.create_cluster("beta", 2, mode="hybrid", environment="dev")
        cp.start()  # a restart keeps the store
        cp.wait_ready()
        assert cp.api.get_cluster("beta").expected_nodes == 2
    finally:
        cp.close()
