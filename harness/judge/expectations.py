"""Judging a scenario's expectations against the evidence: captures, the Control
Plane's final state, and the machines' own timelines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from harness.capture.events import Capture, DhcpEvent
from harness.judge.result import ExpectationResult, MachineResult, RunResult
from harness.judge.rule_verdicts import judge_rules
from harness.rules.site_facts import DnsName, NodeClock, SiteFacts
from harness.scenario.checks import machine_macs
from harness.scenario.model import MachineExpectation, Scenario

_Fact = TypeVar("_Fact", DnsName, NodeClock)

PROXY_CLASSES = ("PXEClient", "HTTPClient", "HW-Client")


def proxy_answers(captures: dict[str, Capture], mac: str) -> list[DhcpEvent]:
    """Every ProxyDHCP reply (yiaddr 0 with a PXE/HTTP vendor class, or a 4011 ACK) to ``mac``."""
    out = []
    for capture in captures.values():
        for e in capture.dhcp_of(mac):
            if e.op != 2:
                continue
            proxy_offer = e.yiaddr == "0.0.0.0" and (e.vendor_class or "").startswith(
                PROXY_CLASSES)
            if proxy_offer or e.sport == 4011:
                out.append(e)
    return out


def answered_after_boot_files(captures: dict[str, Capture], mac: str) -> bool:
    """True if anything but a DHCP reply went to this MAC (TFTP data, HTTP answers)."""
    for capture in captures.values():
        for t in capture.tftp:
            if t.dst_mac == mac and t.opcode in (3, 6):  # DATA, OACK
                return True
        for h in capture.http:
            if h.dst_mac == mac and h.kind == "response" and (h.status or 0) < 400:
                return True
    return False


def cp_state_missing(cp_state: dict[str, Any]) -> str | None:
    """Why the Control Plane's final state is unknown, or None when it was collected.

    Expectations about that state must then fail: an empty list of conflicts or
    machines read from nowhere would otherwise pass them."""
    if "error" in cp_state:
        return f"Control Plane state could not be collected: {cp_state['error']}"
    if "machines" not in cp_state:
        return ("Control Plane state could not be collected (it never started, or did "
                "not come back for the final read)")
    return None


def judge_expectations(
    scenario: Scenario,
    result: RunResult,
    captures: dict[str, Capture],
    cp_state: dict[str, Any],
    proxy_names: Callable[[list[str]], list[str]],
    keys: Callable[[str], list[str]],
    site: SiteFacts | None = None,
) -> list[ExpectationResult]:
    """Every expectation of ``scenario``, judged; a run error is itself a failed expectation.

    ``site``: the whole site's facts (DNS answers, node clocks) the ``dns`` and
    ``clock_within_s`` expectations read."""
    out: list[ExpectationResult] = []
    if result.error:
        out.append(ExpectationResult("run", scenario.name, "the run completes", "fail",
                                     result.error))
    out += judge_rules(scenario.expect, result.findings, proxy_names)
    missing = cp_state_missing(cp_state)
    macs = machine_macs(scenario)
    by_key = {m.name: m for m in result.machines}
    cp_machines = {m["mac"]: m for m in cp_state.get("machines", [])}
    for exp in scenario.expect.machines:
        for key, mac in zip(keys(exp.name), macs[exp.name], strict=True):
            out += _machine(exp, key, mac, captures, proxy_names, by_key.get(key),
                            cp_machines.get(mac), missing)
            out += site_expectations(exp, key, mac, site)
    out += _clusters(scenario, result, cp_state, missing)
    out += _conflicts(scenario, cp_state, proxy_names, missing)
    return out


def _machine(exp: MachineExpectation, key: str, mac: str, captures: dict[str, Capture],
             proxy_names: Callable[[list[str]], list[str]], seen: MachineResult | None,
             cp_machine: dict[str, Any] | None, missing: str | None
             ) -> list[ExpectationResult]:
    out = []
    answers = proxy_answers(captures, mac)
    # a relay delivers replies from its own address: option 54 names the server
    via = proxy_names(sorted({e.server_id or e.src_ip for e in answers}))
    if exp.booted_via is not None:
        ok = via == [exp.booted_via]
        out.append(ExpectationResult(
            "machine", key, f"booted via {exp.booted_via} (and no other proxy)",
            "pass" if ok else "fail",
            f"proxy replies came from: {', '.join(via) or 'nobody'}"))
    if exp.never_answered:
        leaked = answered_after_boot_files(captures, mac)
        ok = not answers and not leaked
        out.append(ExpectationResult(
            "machine", key, "never answered by any proxy (offer, 4011, TFTP, HTTP)",
            "pass" if ok else "fail",
            f"{len(answers)} proxy DHCP replies (frames "
            f"{', '.join(str(e.frame) for e in answers[:8])}); boot files sent: {leaked}"
            if not ok else "silence on every port"))
    if exp.received_proxy_offer is not None:
        got = seen.answered_by if seen is not None else []
        ok = bool(got) == exp.received_proxy_offer
        sent = f"; on the wire {', '.join(via)} answered" if via else ""
        dropped = (" — the reply was dropped on the way (DHCP snooping or a filter "
                   "between the proxy and the machine)") if via and not got else ""
        out.append(ExpectationResult(
            "machine", key,
            "received a proxy offer" if exp.received_proxy_offer else "received no proxy offer",
            "pass" if ok else "fail",
            f"machine saw offers from: {', '.join(got) or 'nobody'}{sent}{dropped}"))
    state = (cp_machine or {}).get("state", "Unknown")
    # the Control Plane's reasons, and what the machine itself reported (PXE-E55 …)
    reasons = list(dict.fromkeys([*(cp_machine or {}).get("reasons", []),
                                  *(seen.reasons if seen is not None else [])]))
    if exp.state is not None or exp.reason_contains is not None:
        label = " ".join(filter(None, (
            f"Control Plane state {exp.state}" if exp.state else "Control Plane reason",
            f"with a reason containing {exp.reason_contains!r}" if exp.reason_contains
            else None)))
        if missing:
            out.append(ExpectationResult("machine", key, label, "fail", missing))
        else:
            ok = exp.state is None or state == exp.state
            if ok and exp.reason_contains:
                ok = any(exp.reason_contains in r for r in reasons)
            out.append(ExpectationResult(
                "machine", key, label, "pass" if ok else "fail",
                f"state {state}" + (f"; reasons: {'; '.join(reasons)}" if reasons else "")))
    if exp.ready_within is not None:
        took = seen.ready_seconds if seen is not None else None
        ok = took is not None and took <= exp.ready_within
        never = f"never Ready ({missing or state})"
        out.append(ExpectationResult(
            "machine", key, f"Ready within {exp.ready_within:g} s of power-on",
            "pass" if ok else "fail",
            f"Ready after {took:.1f} s" if took is not None else never))
    return out


def site_expectations(exp: MachineExpectation, key: str, mac: str,
                      site: SiteFacts | None) -> list[ExpectationResult]:
    """A machine's ``dns`` and ``clock_within_s`` expectations, from the whole site's
    facts: what the site's BIND answered for its name and address, and the clock it
    reported when it registered. A fact that was not collected fails the expectation
    with the reason (a missing answer must never read as a pass)."""
    out = []
    if exp.dns is not None:
        out.append(_dns(exp.dns.resolves, key, mac, site))
    if exp.clock_within_s is not None:
        out.append(_clock(exp.clock_within_s, key, mac, site))
    return out


def _not_collected(site: SiteFacts | None, rule_id: str, otherwise: str) -> str:
    """Why a whole-site fact is missing: the builder's note under the rule that reads it,
    else ``otherwise`` (no whole site at all)."""
    return (site.notes.get(rule_id) if site is not None else None) or otherwise


def _machine_fact(site: SiteFacts | None, facts: Callable[[SiteFacts], tuple[_Fact, ...] | None],
                  mac: str, rule_id: str, uncollected: str, absent: str
                  ) -> tuple[_Fact | None, str]:
    """This machine's entry in one of the site's per-node facts (``facts(site)``), or None
    with why there is none: the fact was not collected (:func:`_not_collected`, else
    ``uncollected``), or it was but holds nothing for ``mac`` (``absent``)."""
    known = facts(site) if site is not None else None
    if known is None:
        return None, _not_collected(site, rule_id, uncollected)
    mine = next((f for f in known if f.mac == mac), None)
    return mine, "" if mine is not None else absent


def _dns(resolves: bool, key: str, mac: str, site: SiteFacts | None) -> ExpectationResult:
    label = ("its name resolves in the site's DNS (A, and PTR where a reverse zone exists)"
             if resolves else "its name does not resolve in the site's DNS")
    name, why = _machine_fact(
        site, lambda s: s.dns, mac, "DNS-1",
        "the site has no DNS server (dns:), or its answers were not collected",
        "never Ready, so its name was never looked up")
    if name is None:
        return ExpectationResult("machine", key, label, "fail", why)
    forward = bool(name.address) and name.address in name.resolved
    found = forward and name.reverse_names_it
    detail = (f"{name.hostname} A {', '.join(name.resolved) or 'no answer'} (its address "
              f"{name.address or 'unknown'})"
              + ("" if name.ptr is None else f"; PTR {', '.join(name.ptr) or 'no answer'}")
              + (f"; refused updates: {'; '.join(name.update_errors)}"
                 if name.update_errors else ""))
    return ExpectationResult("machine", key, label,
                             "pass" if found == resolves else "fail", detail)


def _clock(within: float, key: str, mac: str, site: SiteFacts | None) -> ExpectationResult:
    label = f"clock within {within:g} s after NTP"
    clock, why = _machine_fact(
        site, lambda s: s.clocks, mac, "NTP-1",
        "no node clocks were collected (not a whole site, or the Control Plane's state "
        "could not be read)",
        "never Ready, or it reported no clock when it registered")
    if clock is None:
        return ExpectationResult("machine", key, label, "fail", why)
    ok = not clock.beyond(within)
    source = f" (synced from {clock.source})" if clock.source else " (no time source offered)"
    return ExpectationResult("machine", key, label, "pass" if ok else "fail",
                             f"{clock.off_by()} off{source}")


def cluster_ready_seconds(events: list[dict[str, Any]], cluster: str,
                          powered: list[float]) -> float | None:
    """Seconds from the cluster's first power-on to its first ``cluster.ready`` after it."""
    if not powered:
        return None
    start = min(powered)
    ready = next((e["time"] for e in events if e.get("kind") == "cluster.ready"
                  and e.get("subject") == cluster and e["time"] >= start), None)
    return None if ready is None else ready - start


def _clusters(scenario: Scenario, result: RunResult, cp_state: dict[str, Any],
              missing: str | None) -> list[ExpectationResult]:
    out = []
    clusters = {c["name"]: c for c in cp_state.get("clusters", [])}
    for cexp in scenario.expect.clusters:
        label = ("Ready" if cexp.ready else "not Ready") + (
            f", within {cexp.within:g} s of its first power-on" if cexp.within else "")
        if missing:
            out.append(ExpectationResult("cluster", cexp.name, label, "fail", missing))
            continue
        status = clusters.get(cexp.name, {}).get("status", {})
        phase = status.get("phase", "Unknown")
        ok = (phase == "Ready") == cexp.ready
        missing_nodes = "; ".join(
            f"{m.get('hostname')} {m.get('state')}"
            + (f" ({', '.join(m.get('reasons') or [])})" if m.get("reasons") else "")
            for m in status.get("missing", []))
        detail = (f"{phase}: {status.get('ready', 0)}/{status.get('expected', '?')} nodes "
                  "Ready" + (f"; missing: {missing_nodes}" if missing_nodes else ""))
        if cexp.within is not None:
            powered = [m.powered_at for m in result.machines
                       if m.cluster == cexp.name and m.powered_at is not None]
            took = cluster_ready_seconds(cp_state.get("events", []), cexp.name, powered)
            ok = ok and took is not None and took <= cexp.within
            detail += (f"; Ready {took:.1f} s after its first power-on" if took is not None
                       else "; the Control Plane never reported it Ready after a power-on")
        out.append(ExpectationResult("cluster", cexp.name, label,
                                     "pass" if ok else "fail", detail))
    return out


def _conflicts(scenario: Scenario, cp_state: dict[str, Any],
               proxy_names: Callable[[list[str]], list[str]],
               missing: str | None) -> list[ExpectationResult]:
    out = []
    reported = cp_state.get("conflicts", [])
    for conflict in scenario.expect.conflicts:
        subject = " vs ".join(conflict.between)
        label = "conflict detected and reported to the Control Plane"
        if missing:
            out.append(ExpectationResult("conflict", subject, label, "fail", missing))
            continue
        pair = set(conflict.between)
        hits = [c for c in reported
                if {c.get("proxy"), *proxy_names([c.get("other_server", "")])} >= pair]
        out.append(ExpectationResult(
            "conflict", subject, label, "pass" if hits else "fail",
            f"{len(hits)} report(s)" if hits else
            f"no report names both ({len(reported)} conflict report(s) in total)"))
    if scenario.expect.no_conflicts:
        label = "no conflicts reported"
        if missing:
            out.append(ExpectationResult("conflict", "site", label, "fail", missing))
        else:
            out.append(ExpectationResult(
                "conflict", "site", label, "pass" if not reported else "fail",
                f"{len(reported)} conflict report(s)"))
    return out
