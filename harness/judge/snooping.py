"""Judging a snooping switch: which of its ports dropped DHCP server replies, and what.

The switch's per-port counters (``Observed.switch_drops``) say how many replies each
untrusted port dropped; the segment's capture (taken on the bridge, before the filter)
says what they were: each dropped sender's DHCP replies by type and client. Together
they let a report say "bp1's port dropped 4 replies: 2 OFFER, 2 ACK to 52:54:…" — the
site engineer's "trust the Boot Proxy's port" made concrete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from harness.capture.events import Capture
from harness.judge.observed import Observed
from harness.judge.result import ExpectationResult
from harness.plan.items import SitePlan
from harness.scenario.model import Scenario, SnoopingExpectation


def port_owner(site: SitePlan, host: str) -> str:
    """A lab host as the scenario names it: a proxy's name, ``site-dhcp``, a relay."""
    if any(d.host == host for d in site.dhcp_servers):
        return "site-dhcp"
    if any(r.host == host for r in site.relays):
        return f"relay ({host})"
    if any(h == host for _, h in site.machine_hosts):
        return f"machines ({host})"
    return host


def what_was_sent(capture: Capture | None, address: str | None) -> str:
    """The DHCP server replies ``address`` sent on the captured segment, summed up."""
    if capture is None:
        return "no capture of the segment"
    if address is None:
        return "its address on the segment is unknown"
    sent = [e for e in capture.dhcp if e.op == 2 and e.sport in (67, 4011)
            and e.src_ip == address]
    if not sent:
        return "no DHCP reply from it in the capture"
    kinds = Counter(e.msg_type for e in sent)
    clients = sorted({e.chaddr for e in sent})
    return (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + " to "
            + ", ".join(clients[:4]) + (f" and {len(clients) - 4} more" if len(clients) > 4
                                        else ""))


def judge_snooping(scenario: Scenario, site: SitePlan, observed: Observed,
                   captures: Mapping[str, Capture]) -> list[ExpectationResult]:
    """Each ``expect.snooping`` entry: exactly the named ports dropped replies."""
    return [_one(exp, site, observed, captures) for exp in scenario.expect.snooping]


def _one(exp: SnoopingExpectation, site: SitePlan, observed: Observed,
         captures: Mapping[str, Capture]) -> ExpectationResult:
    label = ("ports that dropped DHCP server replies: "
             + (", ".join(exp.dropped_from) if exp.dropped_from else "none"))
    subject = f"switch {exp.segment}"
    drops = observed.switch_drops.get(exp.segment)
    if drops is None:
        return ExpectationResult("run", subject, label, "fail",
                                 "the switch's counters were not read in this run"
                                 + (f" ({observed.run_error})" if observed.run_error else ""))
    owners = {host: port_owner(site, host) for host in drops}
    dropped = {host: n for host, n in drops.items() if n}

    def said(host: str) -> str:
        address = observed.addresses.get(f"{host}@{exp.segment}")
        return (f"{owners[host]}'s port dropped {dropped[host]} DHCP server "
                f"repl{'y' if dropped[host] == 1 else 'ies'} ("
                f"{what_was_sent(captures.get(exp.segment), address)})")

    wanted = set(exp.dropped_from)
    silent = sorted(w for w in wanted if not any(owners[h] == w for h in dropped))
    extra = sorted(h for h in dropped if owners[h] not in wanted)
    parts = [said(h) for h in sorted(dropped)] or ["no port dropped anything"]
    if silent:
        parts.append(f"expected drops on {', '.join(silent)}'s port, counted none")
    if extra:
        parts.append(f"unexpected: {', '.join(owners[h] for h in extra)}")
    ok = not silent and not extra
    return ExpectationResult("run", subject, label, "pass" if ok else "fail", "; ".join(parts))
