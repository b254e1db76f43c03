"""Every firmware profile boots against the reference Boot Proxy and the Control Plane to Ready."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.capture.decode import decode_pcap
from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab, Topology
from harness.machines.sim import PROFILES, EmulatorSpec, Fleet, profile
from harness.machines.sim.agent import NodeFacts
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture
from harness.rules.model import Level
from harness.wait import wait_until

from .webroot import CP_TOPOLOGY, seed_cluster

pytestmark = [pytest.mark.sim, pytest.mark.timeout(240)]



def test_every_profile_reaches_ready_and_a_small_machine_is_rejected(
        make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(CP_TOPOLOGY)
    names = sorted(PROFILES)
    specs = [EmulatorSpec(f"52:54:00:c0:00:{i + 1:02x}", profile(n)) for i, n in enumerate(names)]
    small = EmulatorSpec("52:54:00:c0:00:ee", profile("pxe-bios"),
                        facts=NodeFacts(cpu_cores=1, clock_skew=5.0))
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            api = cp.api
            token = seed_cluster(api, [spec.mac for spec in [*specs, small]], expected=len(specs))
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token)
            with SiteDhcp(lab, "dhcp", "lan"), proxy:
                result = Fleet(lab, "machines", "lan", [*specs, small], scale=0.1).run(120)
                result.write(lab.reports_dir / "machines.json")
                machines = {m.mac: m.model_dump() for m in api.machines()}
                cluster = wait_until(
                    lambda: (c := api.get_cluster("alpha")).status.phase == "Ready" and c,
                    timeout=10, what="cluster alpha to be Ready",
                    evidence=lambda: str(api.get_cluster("alpha")))
    finally:
        cp.close()
    for spec in specs:
        m = result.by_mac(spec.mac)
        assert m["state"] == "done", (spec.profile.name, m["error"], m["timeline"])
        assert "ready" in [e["summary"] for e in m["timeline"]["events"] if e["kind"] == "state"]
        assert machines[spec.mac]["state"] == "Ready", machines[spec.mac]
        assert machines[spec.mac]["facts"]["firmware"] == ("bios" if spec.profile.arch == 0
                                                           else "efi")
    assert cluster.status.ready == len(specs)
    rejected = result.by_mac(small.mac)
    assert rejected["state"] == "failed"
    assert machines[small.mac]["state"] == "Rejected"
    reasons = " ".join(machines[small.mac]["reasons"])
    assert "cpu_cores" in reasons and "clock" in reasons

    pcap = lab.pcaps["lan"]
    proxy_ip = lab.address("bp1", "lan")
    lab.teardown()
    report = check_capture(decode_pcap(str(pcap)), RuleContext(
        proxies=frozenset({proxy_ip}),
        serves={proxy_ip: frozenset(s.mac for s in [*specs, small])},
        site_dhcp=frozenset({lab.address("dhcp", "lan")}),
        vendor_classes=("PXEClient", "HTTPClient", "HW-Client"), time_scale=0.1))
    for f in report.failures():
        print(f.rule_id, f.level.value, f.client, f.message[:160])
    cli = [(f.rule_id, f.client) for f in report.failures() if f.rule_id.startswith("CLI-")]
    no97 = next(s.mac for s in specs if s.profile.name == "intel-no97")
    assert cli == [("CLI-1", no97)], cli
    assert report.ok, report.failures(Level.MUST)
