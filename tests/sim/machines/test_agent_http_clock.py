"""Where the site offers no NTP (no option 42), the emulated agent measures its clock
against the Control Plane's ``GET /api/v1/time`` by two-way exchanges, as the node
image's agent does, and reports the offset with its error bound; the Control Plane
judges that figure, not clock_unix at arrival. A clock that is really off is still
Rejected, the reason saying what was measured. The guide: clocks within 1 second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab, Topology
from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.machines.sim.agent import NodeFacts
from harness.machines.sim.fleet import FleetResult

from .webroot import CP_TOPOLOGY, seed_cluster

pytestmark = [pytest.mark.sim, pytest.mark.timeout(120)]

SKEWED = EmulatorSpec("52:54:00:c1:01:01", profile("ipxe-bios"), facts=NodeFacts(clock_skew=5.0))
CLOSE = EmulatorSpec("52:54:00:c1:01:02", profile("edk2-x64"), facts=NodeFacts(clock_skew=-0.4))


@dataclass
class _Booted:
    """What a boot without NTP left: the Control Plane's machines and when each
    registration arrived (its clock), the fleet's result, the time URL the agents used."""

    machines: dict[str, dict[str, Any]]
    arrived: dict[str, float]
    result: FleetResult
    time_url: str


def _boot_without_ntp(lab: Lab, specs: list[EmulatorSpec], *, slow_ms: int = 0) -> _Booted:
    """Boot `specs` through a Control Plane, site DHCP that offers no NTP and bp1; with
    `slow_ms`, the Control Plane holds every time request and registration that long
    before it reads its clock (its fault injection)."""
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            api = cp.api
            token = seed_cluster(api, [s.mac for s in specs], kernel_size=4096,
                                 initrd_size=4096)
            for route in ("time", "register") if slow_ms else ():
                api.set_fault(route, latency_ms=slow_ms)
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token)
            with SiteDhcp(lab, "dhcp", "lan"), proxy:
                result = Fleet(lab, "machines", "lan", specs, scale=0.1).run(90)
            machines = {s.mac: api.get_machine(s.mac).model_dump() for s in specs}
            arrived = {e.subject: e.time for e in api.events()
                       if e.kind in ("node.registered", "node.rejected")}
        return _Booted(machines, arrived, result, cp.url("lan").rstrip("/") + "/api/v1/time")
    finally:
        cp.close()


def test_without_ntp_the_two_way_offset_is_judged_and_a_skewed_clock_rejected(
        make_lab: Callable[[Topology], Lab]) -> None:
    booted = _boot_without_ntp(make_lab(CP_TOPOLOGY), [SKEWED, CLOSE])
    skewed, close = booted.machines[SKEWED.mac], booted.machines[CLOSE.mac]
    result, time_url = booted.result, booted.time_url

    facts = close["facts"]
    assert close["state"] == "Ready", close
    assert facts["clock_source"] == "http" and facts["clock_server"] == time_url
    assert abs(facts["clock_offset_s"] - -0.4) <= facts["clock_error_s"] + 0.01, facts
    events = [e for e in result.by_mac(CLOSE.mac)["timeline"]["events"]
              if e["summary"] == "clock" and "http" in e["detail"]]
    assert events and events[0]["detail"]["offset"] == pytest.approx(-0.4, abs=0.3)

    assert skewed["state"] == "Rejected", skewed
    measured = skewed["facts"]
    assert measured["clock_offset_s"] == pytest.approx(5.0, abs=measured["clock_error_s"] + 0.01)
    reason = next(r for r in skewed["reasons"] if r.startswith("clock"))
    assert reason == (f"clock offset {measured['clock_offset_s']:+.3f} s +/- "
                      f"{measured['clock_error_s']:.3f} s from the Control Plane's time "
                      f"(two-way HTTP to {time_url}) exceeds 1 s")


LATE = EmulatorSpec("52:54:00:c1:01:03", profile("ipxe-bios"))
LATE_SKEWED = EmulatorSpec("52:54:00:c1:01:04", profile("edk2-x64"),
                           facts=NodeFacts(clock_skew=-5.0))


def test_a_slow_path_to_the_control_plane_is_not_taken_for_skew(
        make_lab: Callable[[Topology], Lab]) -> None:
    """The starved-host case: every time request and registration reaches the Control
    Plane 1.5 s late (its fault injection delays them before it reads its clock), as a
    TCG guest running several times slower than real time and its transit make them.
    clock_unix is then 1.5 s behind at arrival, which the old check rejected; the
    two-way measurement sees the slowness as error, not offset, and a good clock is
    Ready. A clock 5 s slow is still Rejected on the same path."""
    booted = _boot_without_ntp(make_lab(CP_TOPOLOGY), [LATE, LATE_SKEWED], slow_ms=1500)
    good, skewed = booted.machines[LATE.mac], booted.machines[LATE_SKEWED.mac]
    arrived = booted.arrived

    facts = good["facts"]
    assert facts["clock_unix"] - arrived[LATE.mac] < -1.0, "the path was not slow"
    assert good["state"] == "Ready", good
    assert facts["clock_error_s"] >= 0.7, facts   # the 1.5 s is in the bound
    assert abs(facts["clock_offset_s"]) <= facts["clock_error_s"] + 0.05, facts

    assert skewed["state"] == "Rejected", skewed
    measured = skewed["facts"]
    assert measured["clock_offset_s"] == pytest.approx(-5.0,
                                                       abs=measured["clock_error_s"] + 0.05)
    assert [r for r in skewed["reasons"] if r.startswith("clock offset ")], skewed
