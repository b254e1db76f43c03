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

from harness.components.dnsmasq import SiteDhcp
from harness.components.dnsmasq_proxy import DnsmasqProxy
from harness.lab import Host, HostLink, Segment, Topology
from harness.machines.sim import Fleet, MachineSpec, profile
from tests.sim.machines.conftest import start_web, write_boot_files

pytestmark = [pytest.mark.sim, pytest.mark.timeout(900)]

COUNT = int(os.environ.get("FLEXLAB_SIM_MACHINES", "100"))
SPREAD = float(os.environ.get("FLEXLAB_SIM_SPREAD", "5"))
# real firmware timers by default: a 0.1 scale makes retransmission storms 10x denser than real
SCALE = float(os.environ.get("FLEXLAB_SIM_SCALE", "1.0"))
MIX = ["pxe-bios", "edk2-x64", "ipxe-bios", "intel-no97", "hw-client"]
TOPOLOGY = Topology(
    segments=(Segment("lan", subnet="10.200.0.0/20"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("proxy", (HostLink("lan"),)),
           Host("web", (HostLink("lan"),)), Host("machines", (HostLink("lan", None),))),
)


def test_many_machines_boot_to_their_scripts(make_lab) -> None:  # type: ignore[no-untyped-def]
    lab = make_lab(TOPOLOGY)
    macs = [f"52:54:01:{i >> 16 & 0xff:02x}:{i >> 8 & 0xff:02x}:{i & 0xff:02x}"
            for i in range(1, COUNT + 1)]
    root = lab.temp_dir / "www"
    write_boot_files(root, f"http://{lab.address('web', 'lan')}:8080", macs)
    web = start_web(lab, root)
    site = SiteDhcp(lab, "dhcp", "lan")
    # A reservation per MAC, as provisioning networks do: dnsmasq with --no-ping reserves
    # nothing at OFFER time, so a boot storm of unreserved clients ends in NAK storms
    # (measured and written down in docs/EMULATORS.md; FLEXLAB_SIM_RESERVE=0 shows it).
    extra = [f"--dhcp-lease-max={COUNT * 2}"]
    if os.environ.get("FLEXLAB_SIM_RESERVE", "1") == "1":
        first = ipaddress.IPv4Address(lab.dhcp_pool("lan")[0])
        hosts = lab.temp_dir / "site-hosts"
        hosts.write_text("".join(f"{mac},{first + i}\n" for i, mac in enumerate(macs)))
        extra.append(f"--dhcp-hostsfile={hosts}")
    site.config = dataclasses.replace(
        site.config, log_dhcp=os.environ.get("FLEXLAB_SIM_LOG") == "1", extra_args=tuple(extra))
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url=web.url + "/boot/${mac}.ipxe",
                         served_macs=tuple(macs))
    specs = [MachineSpec(mac, profile(MIX[i % len(MIX)]), stop_after="script")
             for i, mac in enumerate(macs)]
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with site, proxy:
        started = time.monotonic()
        result = Fleet(lab, "machines", "lan", specs, scale=SCALE, spread=SPREAD,
                       pin_neighbours=COUNT > 200).run(600)
        wall = time.monotonic() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result.write(lab.reports_dir / "machines.json")
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
    harness_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(f"\nSCALE machines={COUNT} spread={SPREAD}s scale={SCALE} wall={wall:.1f}s "
          f"states={result.states} "
          f"frames_sent={result.frames_sent} received={result.frames_received} "
          f"dropped={result.frames_dropped} kernel_drops={result.kernel_drops} "
          f"discover_retransmissions={retrans} "
          f"harness_cpu={harness_cpu:.1f}s")
    if durations:
        q = statistics.quantiles(durations, n=20) if len(durations) > 1 else durations * 19
        print(f"SCALE per-machine power-on→script: median={statistics.median(durations):.2f}s "
              f"p95={q[18]:.2f}s max={max(durations):.2f}s")
    assert result.states.get("done", 0) == COUNT, result.states
