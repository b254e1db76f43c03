"""Many machines at once (FLEXLAB_SIM_MACHINES, default 100) against dnsmasq proxy + site DHCP.

Prints the figures docs/EMULATORS.md records: wall time, boots per second,
per-machine time to the script, DHCP retransmissions. Raise the count for a
real scale run: ``FLEXLAB_SIM_MACHINES=1000 pytest tests/sim/machines/test_scale.py -s``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import resource
import statistics
import time

import pytest

from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.components.dnsmasq_proxy import DnsmasqProxy
from harness.lab import Lab
from harness.machines.sim import EmulatorSpec, Fleet, FleetResult, profile

from .webroot import lan_topology, start_web, write_boot_files

# the host's neighbour table (gc_thresh3) is shared by every namespace: storms take turns
pytestmark = [pytest.mark.sim, pytest.mark.timeout(900), pytest.mark.xdist_group("neighbours")]

COUNT = int(os.environ.get("FLEXLAB_SIM_MACHINES", "100"))
SPREAD = float(os.environ.get("FLEXLAB_SIM_SPREAD", "5"))
# real firmware timers by default: a 0.1 scale makes retransmission storms 10x denser than real
SCALE = float(os.environ.get("FLEXLAB_SIM_SCALE", "1.0"))
MIX = ["pxe-bios", "edk2-x64", "ipxe-bios", "intel-no97", "hw-client"]
# a /20 each: its DHCP pool (the upper half) has room for 2,000 machines
TOPOLOGY = lan_topology("dhcp", "proxy", "web", subnet="10.200.0.0/20")
CP_TOPOLOGY = lan_topology("cp", "dhcp", "bp1", subnet="10.201.0.0/20")


def test_many_machines_boot_to_their_scripts(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab(TOPOLOGY)
    macs = _macs(1)
    root = lab.temp_dir / "www"
    write_boot_files(root, f"http://{lab.address('web', 'lan')}:8080", macs)
    web = start_web(lab, root)
    site = _reserved_site_dhcp(lab, macs)
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url=web.url + "/boot/${mac}.ipxe",
                         served_macs=tuple(macs))
    specs = _mixed(macs, stop_after="script")
    with site, proxy:
        cpu0 = _cpu()
        result, wall = _storm(lab, specs, timeout=600)
    result.write(lab.reports_dir / "machines.json")
    _report("dnsmasq", result, wall, _cpu() - cpu0)
    assert result.states.get("done", 0) == COUNT, result.states


def test_many_machines_reach_ready_through_bootproxy_and_cp(make_lab) -> None:  # type: ignore[no-untyped-def]
    """The same storm against our Boot Proxy and the Control Plane, all the way to Ready."""
    lab = make_lab(CP_TOPOLOGY)
    macs = _macs(2)
    site = _reserved_site_dhcp(lab, macs)
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            api = cp.api
            api.create_cluster("scale", COUNT, mode="standalone", environment="test")
            api.upload_artifact("vmlinuz", b"K" * 300_000)
            api.upload_artifact("initrd.img", b"I" * 500_000)
            api.create_profile("default", "vmlinuz", "initrd.img",
                               "console=ttyS0 flexlab.token={join_token} flexlab.cp={cp_url}")
            for i, mac in enumerate(macs):
                api.create_machine(mac, "scale", f"n{i}", "default")
            token = api.register_proxy("bp1", ["scale"], segments=["lan"])
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token)
            specs = _mixed(macs)
            with site, proxy:
                cpu0 = _cpu()
                result, wall = _storm(lab, specs, timeout=900)
                phase = api.get_cluster("scale").status
    finally:
        cp.close()
    result.write(lab.reports_dir / "machines.json")
    _report("bootproxy+cp", result, wall, _cpu() - cpu0)
    assert result.states.get("done", 0) == COUNT, result.states
    assert phase.ready == COUNT, phase


def _macs(storm: int) -> list[str]:
    """COUNT MACs ``52:54:<storm>:xx:xx:xx``: each storm test its own range."""
    return [f"52:54:{storm:02x}:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
            for i in range(1, COUNT + 1)]


def _mixed(macs: list[str], stop_after: str = "agent") -> list[EmulatorSpec]:
    """One emulated machine per MAC, the firmware profiles of MIX taking turns, booting to
    ``stop_after`` (the agent, all the way, by default: EmulatorSpec's own default)."""
    return [EmulatorSpec(mac, profile(MIX[i % len(MIX)]), stop_after=stop_after)
            for i, mac in enumerate(macs)]


def _storm(lab: Lab, specs: list[EmulatorSpec], timeout: float) -> tuple[FleetResult, float]:
    """Power every machine on within SPREAD s at firmware SCALE and wait for them all
    (``timeout`` s at most); returns the fleet's result and the wall time it took."""
    started = time.monotonic()
    result = Fleet(lab, "machines", "lan", specs, scale=SCALE, spread=SPREAD,
                   pin_neighbours=COUNT > 200).run(timeout)
    return result, time.monotonic() - started


def _reserved_site_dhcp(lab: Lab, macs: list[str]) -> SiteDhcp:
    """Site DHCP with room for every machine and, by default, a reservation per MAC."""
    site = SiteDhcp(lab, "dhcp", "lan")
    # A reservation per MAC, as provisioning networks do: dnsmasq with --no-ping reserves
    # nothing at OFFER time, so a boot storm of unreserved clients ends in NAK storms
    # (measured and written down in docs/EMULATORS.md; FLEXLAB_SIM_RESERVE=0 shows it).
    hosts = None
    if os.environ.get("FLEXLAB_SIM_RESERVE", "1") == "1":
        first = ipaddress.IPv4Address(lab.dhcp_pool("lan")[0])
        hosts = lab.temp_dir / "site-hosts"
        hosts.write_text("".join(f"{mac},{first + i}\n" for i, mac in enumerate(macs)))
    site.config = dataclasses.replace(
        site.config, log_dhcp=os.environ.get("FLEXLAB_SIM_LOG") == "1",
        lease_max=COUNT * 2, hosts_file=hosts)
    return site


def _cpu() -> float:
    """CPU seconds used so far by this process (the harness and its fleet thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(against: str, result: FleetResult, wall: float, harness_cpu: float) -> None:
    """Print the figures docs/EMULATORS.md records."""
    durations = []
    retrans = 0
    for m in result.machines:
        events = m["timeline"]["events"]
        done = [e["t"] for e in events if e["kind"] == "state" and e["summary"] == "done"]
        if done:
            durations.append(done[0])
        discovers = [e for e in events if e["kind"] == "sent" and e["summary"] == "DISCOVER"]
        retrans += max(0, len(discovers) - 2 if m["profile"] != "ipxe-bios" else
                       len(discovers) - 1)
    print(f"\nSCALE {against} machines={COUNT} spread={SPREAD}s scale={SCALE} wall={wall:.1f}s "
          f"states={result.states} "
          f"frames_sent={result.frames_sent} received={result.frames_received} "
          f"dropped={result.frames_dropped} kernel_drops={result.kernel_drops} "
          f"discover_retransmissions={retrans} "
          f"harness_cpu={harness_cpu:.1f}s")
    if durations:
        q = statistics.quantiles(durations, n=20) if len(durations) > 1 else durations * 19
        print(f"SCALE per-machine power-on→done: median={statistics.median(durations):.2f}s "
              f"p95={q[18]:.2f}s max={max(durations):.2f}s")
