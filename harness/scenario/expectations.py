"""Judging a scenario's expectations against the evidence: captures, the Control
Plane's final state, and the machines' own timelines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.capture.events import Capture, DhcpEvent
from harness.rules.model import Level
from harness.rules.model import Verdict as RuleVerdict
from harness.scenario.checks import machine_macs
from harness.scenario.model import Scenario
from harness.scenario.result import ExpectationResult, RunResult

PROXY_CLASSES = ("PXEClient", "HTTPClient", "HW-Client")


def proxy_answers(captures: dict[str, Capture], mac: str) -> list[DhcpEvent]:
    """Every ProxyDHCP reply (yiaddr 0 with a PXE/HTTP vendor class, or a 4011 ACK) to ``mac``."""
    out = []
    for capture in captures.values():
        for e in capture.dhcp:
            if e.op != 2 or e.chaddr != mac:
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


def judge_expectations(
    scenario: Scenario,
    result: RunResult,
    captures: dict[str, Capture],
    cp_state: dict[str, Any],
    proxy_names: Callable[[list[str]], list[str]],
    keys: Callable[[str], list[str]],
) -> list[ExpectationResult]:
    """Every expectation of ``scenario``, judged; a run error is itself a failed expectation."""
    out: list[ExpectationResult] = []
    if result.error:
        out.append(ExpectationResult("run", scenario.name, "the run completes", "fail",
                                     result.error))
    out += _rules(scenario, result)
    macs = machine_macs(scenario)
    by_key = {m.name: m for m in result.machines}
    cp_machines = {m["mac"]: m for m in cp_state.get("machines", [])}
    for exp in scenario.expect.machines:
        for key, mac in zip(keys(exp.name), macs[exp.name], strict=True):
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
                got = by_key[key].answered_by if key in by_key else []
                ok = bool(got) == exp.received_proxy_offer
                sent = f"; on the wire {', '.join(via)} answered" if via else ""
                dropped = (" — the reply was dropped on the way (DHCP snooping or a filter "
                           "between the proxy and the machine)") if via and not got else ""
                out.append(ExpectationResult(
                    "machine", key,
                    "received a proxy offer" if exp.received_proxy_offer
                    else "received no proxy offer",
                    "pass" if ok else "fail",
                    f"machine saw offers from: {', '.join(got) or 'nobody'}{sent}{dropped}"))
            state = cp_machines.get(mac, {}).get("state", "Unknown")
            if exp.state is not None:
                reasons = cp_machines.get(mac, {}).get("reasons", [])
                ok = state == exp.state
                if ok and exp.reason_contains:
                    ok = any(exp.reason_contains in r for r in reasons)
                out.append(ExpectationResult(
                    "machine", key, f"Control Plane state {exp.state}"
                    + (f" with a reason containing {exp.reason_contains!r}"
                       if exp.reason_contains else ""),
                    "pass" if ok else "fail",
                    f"state {state}" + (f"; reasons: {'; '.join(reasons)}" if reasons else "")))
            if exp.ready_within is not None:
                took = by_key[key].ready_seconds if key in by_key else None
                ok = took is not None and took <= exp.ready_within
                out.append(ExpectationResult(
                    "machine", key, f"Ready within {exp.ready_within:g} s of power-on",
                    "pass" if ok else "fail",
                    f"Ready after {took:.1f} s" if took is not None else f"never Ready ({state})"))
    clusters = {c["name"]: c for c in cp_state.get("clusters", [])}
    for cexp in scenario.expect.clusters:
        status = clusters.get(cexp.name, {}).get("status", {})
        phase = status.get("phase", "Unknown")
        ok = (phase == "Ready") == cexp.ready
        missing = "; ".join(
            f"{m.get('hostname')} {m.get('state')}"
            + (f" ({', '.join(m.get('reasons') or [])})" if m.get("reasons") else "")
            for m in status.get("missing", []))
        out.append(ExpectationResult(
            "cluster", cexp.name, "Ready" if cexp.ready else "not Ready",
            "pass" if ok else "fail",
            f"{phase}: {status.get('ready', 0)}/{status.get('expected', '?')} nodes Ready"
            + (f"; missing: {missing}" if missing else "")))
    reported = cp_state.get("conflicts", [])
    for conflict in scenario.expect.conflicts:
        pair = set(conflict.between)
        hits = [c for c in reported
                if {c.get("proxy"), *proxy_names([c.get("other_server", "")])} >= pair]
        out.append(ExpectationResult(
            "conflict", " vs ".join(conflict.between),
            "conflict detected and reported to the Control Plane",
            "pass" if hits else "fail",
            f"{len(hits)} report(s)" if hits else
            f"no report names both ({len(reported)} conflict report(s) in total)"))
    if scenario.expect.no_conflicts:
        out.append(ExpectationResult(
            "conflict", "site", "no conflicts reported", "pass" if not reported else "fail",
            f"{len(reported)} conflict report(s)"))
    return out


def _rules(scenario: Scenario, result: RunResult) -> list[ExpectationResult]:
    out = []
    findings = [f for fs in result.findings.values() for f in fs]
    for rule in scenario.expect.rules:
        if rule == "MUST":
            selected = [f for f in findings if f.level == Level.MUST]
            label = "every MUST rule holds"
        else:
            selected = [f for f in findings if f.rule_id == rule]
            label = f"{rule} holds"
        fails = [f for f in selected if f.verdict == RuleVerdict.FAIL]
        if not selected:
            out.append(ExpectationResult("rule", rule, label, "fail",
                                         "no capture was judged: nothing shows it holds"))
            continue
        detail = "; ".join(f"{f.rule_id}: {f.message}" for f in fails[:5])
        if len(fails) > 5:
            detail += f"; and {len(fails) - 5} more"
        out.append(ExpectationResult("rule", rule, label, "fail" if fails else "pass",
                                     detail or f"{len(selected)} finding(s), none failing"))
    return out
