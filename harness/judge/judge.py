"""``judge()``: a run's verdicts from its plan, its captures and what it observed.

Pure: no lab, no Control Plane, no clock. The builder calls it at the end of a run;
``flexlab report --rejudge`` calls it again on a saved run (pcaps and ``observed``
from run.json), so a run is always judged by the rules of the flexlab that judges it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.capture.decode import decode_pcap
from harness.capture.errors import CaptureError
from harness.capture.events import Capture
from harness.judge.expectations import judge_expectations
from harness.judge.observed import Observed
from harness.judge.result import ExpectationResult, MachineResult, RunResult
from harness.judge.snooping import judge_snooping
from harness.plan.items import SitePlan
from harness.rules.engine import check_capture
from harness.rules.l2 import l2_domains
from harness.scenario.drivers import MachineProgress
from harness.scenario.model import Scenario


def ready_after(events: list[dict[str, Any]], mac: str, powered: float | None) -> float | None:
    """When the Control Plane first saw ``mac`` Ready after its last power-on (None if never).

    A machine reset after it was Ready must not be timed against its earlier boot: taking
    the first ``node.ready`` of the run gave negative seconds and a vacuous ready_within."""
    return next((e["time"] for e in events
                 if e["kind"] == "node.ready" and e["subject"] == mac
                 and (powered is None or e["time"] >= powered)), None)


def decode_captures(pcaps: Mapping[str, Path]) -> tuple[dict[str, Capture], list[str]]:
    """Each segment's pcap decoded, and a message per pcap that could not be read (the
    run then fails: verdicts without that segment's frames would be guesses)."""
    captures: dict[str, Capture] = {}
    problems: list[str] = []
    for seg, pcap in pcaps.items():
        try:
            captures[seg] = decode_pcap(str(pcap), require_dhcp=False)
        except CaptureError as exc:
            problems.append(f"capture {pcap}: {exc}")
    return captures, problems


def judge(scenario: Scenario, site: SitePlan, captures: Mapping[str, Capture],
          observed: Observed, run: RunResult) -> RunResult:
    """``run`` with its machines, rule findings and expectations judged afresh.

    ``run`` brings what is not judged (names, times, versions, pcaps, logs, phases) and
    ``run.error`` (the run's own error, a capture that could not be decoded); whatever
    judgement it held before is replaced. ``captures`` are the decoded pcaps by segment;
    ``observed`` holds the lab's addresses, the Control Plane's final state, each copy's
    progress and power-on time, capture drop counts and the whole site's facts."""
    out = dataclasses.replace(run, machines=[], findings={}, expectations=[])
    if not observed.addresses:  # the lab never came up: run.error says why
        return out
    context = dataclasses.replace(site.rule_inputs.context(observed.address_of),
                                  site=observed.site, clusters=cluster_macs(site),
                                  l2_domains=l2_domains(captures),
                                  served_from=assigned_at(site, observed))
    for seg, capture in captures.items():
        if capture.dhcp:
            out.findings[seg] = check_capture(capture, context).findings

    def proxy_names(addresses: list[str]) -> list[str]:
        return sorted({site.proxy_name(a, observed.address_of) for a in addresses})

    out.machines = machine_results(site, observed, proxy_names)
    out.expectations = judge_expectations(scenario, out, dict(captures), observed.cp_state,
                                          proxy_names, site.keys, observed.site)
    out.expectations += judge_snooping(scenario, site, observed, captures)
    out.expectations += _capture_losses(observed, run.pcaps)
    return out


def cluster_macs(site: SitePlan) -> dict[str, frozenset[str]]:
    """Each cluster's node MACs (SITE-4 reads where on the wire each was heard)."""
    out: dict[str, set[str]] = {}
    for copy in site.machines:
        if copy.cluster is not None:
            out.setdefault(copy.cluster, set()).add(copy.mac)
    return {cluster: frozenset(macs) for cluster, macs in out.items()}


def assigned_at(site: SitePlan, observed: Observed) -> dict[str, float]:
    """When the Control Plane learnt each machine an ``assign`` step gave it (its
    ``machine.created`` event): the proxies serve it from then on, not before."""
    later = {m.mac for seed in (site.seed, site.site_seed) if seed is not None
             for m in seed.later}
    return {e["subject"]: float(e["time"]) for e in observed.cp_state.get("events", [])
            if e.get("kind") == "machine.created" and e.get("subject") in later}


def machine_results(site: SitePlan, observed: Observed,
                    proxy_names: Callable[[list[str]], list[str]]) -> list[MachineResult]:
    """Each machine copy at the end: its Control Plane state and reasons, who answered
    it, how long it took to be Ready after its last power-on, its timeline."""
    cp_machines = {m["mac"]: m for m in observed.cp_state.get("machines", [])}
    events = observed.cp_state.get("events", [])
    out = []
    for copy in site.machines:
        prog = observed.progress.get(copy.key, MachineProgress(copy.key))
        cp_machine = cp_machines.get(copy.mac, {})
        powered = observed.powered_at.get(copy.key)
        ready_at = ready_after(events, copy.mac, powered)
        out.append(MachineResult(
            name=copy.key, mac=copy.mac, firmware=copy.firmware, segment=copy.segment,
            cluster=copy.cluster, driver=observed.driver,
            state=cp_machine.get("state", "Unknown" if prog.phase != "off" else "Off"),
            reasons=list(cp_machine.get("reasons", []))
            + ([f"machine: {prog.error}"] if prog.error else []),
            answered_by=proxy_names(prog.answered_by),
            ready_seconds=(ready_at - powered) if ready_at and powered else None,
            powered_at=powered, timeline=list(prog.timeline),
            console=Path(prog.console) if prog.console else None))
    return out


def _capture_losses(observed: Observed, pcaps: Mapping[str, Path]) -> list[ExpectationResult]:
    """A failed 'run' expectation per segment whose tcpdump dropped frames: rule
    verdicts on an incomplete capture can be false, so say so, loudly."""
    out = []
    for seg in pcaps:
        stats = observed.capture_stats.get(seg, {})
        if stats.get("dropped"):
            out.append(ExpectationResult(
                "run", f"capture {seg}", "the capture is complete", "fail",
                f"tcpdump dropped {stats['dropped']} of {stats.get('received', '?')} "
                "frames: findings on this segment may be wrong"))
    return out
