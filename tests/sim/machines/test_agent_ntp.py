"""A node whose clock starts skewed sets it from the site's NTP server (DHCP option 42,
chrony) before it registers, and is Ready; the same node with no NTP offered is Rejected
for its clock. The guide: clocks within 1 second."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.components.bootproxy import BootProxy
from harness.components.chrony import ChronyNtp
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab, Topology
from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.machines.sim.agent import NodeFacts

from .webroot import CP_TOPOLOGY, seed_cluster

pytestmark = [pytest.mark.sim, pytest.mark.timeout(120)]

SKEWED = EmulatorSpec("52:54:00:c1:00:01", profile("ipxe-bios"),
                     facts=NodeFacts(clock_skew=-6.5))


@pytest.mark.parametrize("ntp", [True, False], ids=["ntp-offered", "no-ntp"])
def test_a_skewed_node_is_ready_only_when_the_site_offers_ntp(
        ntp: bool, make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(CP_TOPOLOGY)
    cp = ControlPlane(lab, "cp")
    chrony = ChronyNtp(lab, "dhcp", "lan")
    force = (f"42,{chrony.address}",) if ntp else ()
    try:
        with cp:
            api = cp.api
            token = seed_cluster(api, [SKEWED.mac], kernel_size=4096, initrd_size=4096)
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token)
            with chrony, SiteDhcp(lab, "dhcp", "lan", force_options=force), proxy:
                result = Fleet(lab, "machines", "lan", [SKEWED], scale=0.1).run(60)
            machine = api.get_machine(SKEWED.mac).model_dump()
    finally:
        cp.close()
    clock = [e for e in result.by_mac(SKEWED.mac)["timeline"]["events"]
             if e["summary"] == "clock"]
    if ntp:
        assert machine["state"] == "Ready", (machine, clock)
        assert abs(machine["facts"]["clock_unix"] - machine["updated_at"]) < 1.0
        assert clock and clock[0]["detail"]["ntp"] == chrony.address
        assert clock[0]["detail"]["stepped"] == pytest.approx(6.5, abs=0.5)
        assert machine["facts"]["nics"][0]["ipv4"]  # the leased address, for DNS
    else:
        assert machine["state"] == "Rejected", machine
        assert "clock" in " ".join(machine["reasons"])
        assert clock and clock[0]["detail"]["ntp"] is None
