"""Cross-reference checks a schema cannot express: names that must exist, clashes, time order.

Each problem is returned with the path of the offending value inside the
file, so the loader can point at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.rules.catalog import RULES
from harness.scenario.model import (
    AssignStep,
    FaultStep,
    LinkStep,
    NetemStep,
    PowerStep,
    ProxyStep,
    Scenario,
    StepBase,
    WanStep,
)

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]
HOST_KINDS = "a proxy, a machine, 'site-dhcp' or 'cp'"


@dataclass(frozen=True)
class Declared:
    """The names a file declares, read from the file itself: a declaration with an error
    of its own is still declared, so what refers to it is not reported a second time."""

    segments: frozenset[str]
    clusters: frozenset[str]
    proxies: frozenset[str]
    machines: frozenset[str]

    @classmethod
    def of(cls, scenario: Scenario) -> Declared:
        """The names a valid scenario declares."""
        return cls(frozenset(s.name for s in scenario.segments),
                   frozenset(c.name for c in scenario.clusters),
                   frozenset(p.name for p in scenario.proxies),
                   frozenset(m.name for m in scenario.machines))

    @classmethod
    def in_file(cls, data: dict[str, Any]) -> Declared:
        """The names in the raw file (each section's items' ``name:``, when a string)."""
        def names(section: str) -> frozenset[str]:
            items = data.get(section)
            if not isinstance(items, list):
                return frozenset()
            return frozenset(i["name"] for i in items
                             if isinstance(i, dict) and isinstance(i.get("name"), str))

        return cls(names("segments"), names("clusters"), names("proxies"), names("machines"))


def machine_macs(scenario: Scenario) -> dict[str, list[str]]:
    """Every machine copy's MAC: explicit ones, else derived from its index in the file.

    Derived MACs are locally administered (52:54:00 is QEMU's prefix, used so
    the vm tier's NICs look the same) and stable for a given scenario.
    """
    out: dict[str, list[str]] = {}
    for m_index, machine in enumerate(scenario.machines):
        if machine.macs is not None:
            out[machine.name] = list(machine.macs)
            continue
        macs = []
        for copy in range(machine.count):
            n = (m_index << 16) | copy
            macs.append(f"52:54:00:{m_index:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}")
        out[machine.name] = macs
    return out


def check(scenario: Scenario, declared: Declared | None = None) -> list[tuple[Loc, str]]:
    """All cross-reference problems, in file order.

    ``declared`` are the names to resolve references against (default: the scenario's
    own); the loader passes the file's, so a partly valid file is checked as a whole."""
    problems: list[tuple[Loc, str]] = []
    names = declared or Declared.of(scenario)
    segments = [s.name for s in scenario.segments]
    seg_set = set(names.segments)
    clusters = set(names.clusters)
    proxies = set(names.proxies)
    machines = set(names.machines)

    for i, name in enumerate(segments):
        if name in segments[:i]:
            problems.append((("segments", i, "name"), f"duplicate segment name {name!r}"))
    for i, seg in enumerate(scenario.segments):
        if seg.relay is not None:
            if seg.relay.upstream not in seg_set:
                problems.append(((("segments", i, "relay", "upstream")),
                                 f"relay on segment {seg.name!r} has no upstream: segment "
                                 f"{seg.relay.upstream!r} is not declared"))
            elif seg.relay.upstream == seg.name:
                problems.append((("segments", i, "relay", "upstream"),
                                 f"relay on segment {seg.name!r} cannot relay to itself"))
        if seg.relay is not None:
            for j, server in enumerate(seg.relay.forwards_to or ()):
                if server not in proxies | {"site-dhcp"}:
                    problems.append((("segments", i, "relay", "forwards_to", j),
                                     f"relay forwards to {server!r}, neither 'site-dhcp' "
                                     "nor a declared proxy"))
        if seg.snooping is not None:
            known = proxies | {"site-dhcp"}
            for j, trusted in enumerate(seg.snooping.trusted):
                if trusted not in known:
                    problems.append((("segments", i, "snooping", "trusted", j),
                                     f"trusted port {trusted!r} is neither 'site-dhcp' nor a "
                                     "declared proxy"))
    for i, dhcp in enumerate(scenario.site_dhcp):
        if dhcp.segment not in seg_set:
            problems.append((("site_dhcp", i, "segment"),
                             f"site DHCP server on unknown segment {dhcp.segment!r}"))
    for i, proxy in enumerate(scenario.proxies):
        for j, seg_name in enumerate(proxy.segments):
            if seg_name not in seg_set:
                problems.append((("proxies", i, "segments", j),
                                 f"proxy {proxy.name!r} on unknown segment {seg_name!r}"))
        for j, cluster in enumerate(proxy.clusters):
            if cluster not in clusters:
                problems.append((("proxies", i, "clusters", j),
                                 f"proxy {proxy.name!r} serves unknown cluster {cluster!r}"))
    proxy_names = [p.name for p in scenario.proxies]
    for i, name in enumerate(proxy_names):
        if name == "cp" or re.match(r"^(dhcp|relay|mach)\d+$", name):
            problems.append((("proxies", i, "name"),
                             f"proxy name {name!r} is reserved for the lab's own hosts"))
        if name in proxy_names[:i]:
            problems.append((("proxies", i, "name"), f"duplicate proxy name {name!r}"))
    seen_names: set[str] = set()
    for i, machine in enumerate(scenario.machines):
        if machine.name in seen_names:
            problems.append((("machines", i, "name"), f"duplicate machine name {machine.name!r}"))
        seen_names.add(machine.name)
        if machine.segment not in seg_set:
            problems.append((("machines", i, "segment"),
                             f"machine {machine.name!r} is on segment {machine.segment!r}, "
                             f"which does not exist (declared: "
                             f"{', '.join(sorted(seg_set))})"))
        if machine.cluster is not None and machine.cluster not in clusters:
            problems.append((("machines", i, "cluster"),
                             f"machine {machine.name!r} joins unknown cluster {machine.cluster!r}"))
    seen_macs: dict[str, str] = {}
    macs = machine_macs(scenario)
    for i, machine in enumerate(scenario.machines):
        for mac in macs.get(machine.name, []):
            if mac in seen_macs:
                problems.append((("machines", i, "macs"),
                                 f"duplicate MAC {mac}: machines {seen_macs[mac]!r} and "
                                 f"{machine.name!r}"))
            seen_macs[mac] = machine.name
    problems += _steps(scenario, names)
    for i, exp in enumerate(scenario.expect.machines):
        if exp.name not in machines:
            problems.append((("expect", "machines", i, "name"),
                             f"expectation names unknown machine {exp.name!r}"))
        if exp.booted_via is not None and exp.booted_via not in proxies:
            problems.append((("expect", "machines", i, "booted_via"),
                             f"expectation names unknown proxy {exp.booted_via!r}"))
    for i, cexp in enumerate(scenario.expect.clusters):
        if cexp.name not in clusters:
            problems.append((("expect", "clusters", i, "name"),
                             f"expectation names unknown cluster {cexp.name!r}"))
    for i, conflict in enumerate(scenario.expect.conflicts):
        for j, name in enumerate(conflict.between):
            if name not in proxies:
                problems.append((("expect", "conflicts", i, "between", j),
                                 f"conflict names unknown proxy {name!r}"))
            elif name in conflict.between[:j]:
                problems.append((("expect", "conflicts", i, "between", j),
                                 f"conflict names proxy {name!r} twice: a conflict is "
                                 "between two different proxies"))
    problems += _snooping_expectations(scenario, names)
    problems += _rule_ids(scenario)
    return problems


def _snooping_expectations(scenario: Scenario, names: Declared) -> Problems:
    """A snooping expectation names a snooping segment and ports that exist there."""
    problems: Problems = []
    snooping = {s.name for s in scenario.segments if s.snooping is not None}
    for i, exp in enumerate(scenario.expect.snooping):
        if exp.segment not in snooping:
            problems.append((("expect", "snooping", i, "segment"),
                             f"segment {exp.segment!r} has no snooping switch"))
        for j, name in enumerate(exp.dropped_from):
            if name not in names.proxies | {"site-dhcp"}:
                problems.append((("expect", "snooping", i, "dropped_from", j),
                                 f"{name!r} is neither 'site-dhcp' nor a declared proxy"))
    return problems


def _steps(scenario: Scenario, names: Declared) -> Problems:
    """Time order, and what each step names exists (and has the link it acts on)."""
    problems: Problems = []
    last_at = 0.0
    for i, step in enumerate(scenario.steps):
        what = f"step {i + 1}"
        if step.at < last_at:
            problems.append((("steps", i, "at"),
                             f"{what} ({step.action}) at {step.at}s is in the past: the "
                             f"step before it is at {last_at}s (steps run in time order)"))
        last_at = max(last_at, step.at)
        problems += [(("steps", i, *loc), f"{what}{message}")
                     for loc, message in _step_refs(scenario, names, step)]
    return problems


def _step_refs(scenario: Scenario, names: Declared, step: StepBase) -> Problems:
    """References of one step; messages continue ``step N``."""
    out: Problems = []
    if isinstance(step, PowerStep | AssignStep):
        out += [(("machines", j), f" names unknown machine {name!r}")
                for j, name in enumerate(step.machines) if name not in names.machines]
    if isinstance(step, AssignStep):
        strangers = {m.name for m in scenario.machines if m.cluster is None}
        out += [(("machines", j), f" assigns machine {name!r}, which has no cluster")
                for j, name in enumerate(step.machines) if name in strangers]
    elif isinstance(step, ProxyStep) and step.proxy not in names.proxies:
        out.append((("proxy",), f" names unknown proxy {step.proxy!r}"))
    elif isinstance(step, LinkStep | NetemStep):
        if step.segment not in names.segments:
            out.append((("segment",), f" names unknown segment {step.segment!r}"))
        elif step.host not in names.proxies | names.machines | {"site-dhcp", "cp"}:
            out.append((("host",), f" names unknown host {step.host!r} ({HOST_KINDS})"))
        else:
            out += [(("segment",), f": {m}") for m in _link_of(scenario, step.host,
                                                               step.segment)]
    elif isinstance(step, FaultStep):
        pass  # the fault's own fields are validated by its model
    elif isinstance(step, WanStep) and scenario.wan is None \
            and scenario.control_plane.location != "cloud":
        out.append((("action",), f" {step.action} needs a WAN: declare wan: (or "
                    "control_plane.location: cloud)"))
    return out


def _link_of(scenario: Scenario, host: str, segment: str) -> list[str]:
    """Why ``host`` has no link on ``segment`` (empty when it has one, or is not known)."""
    for proxy in scenario.proxies:
        if proxy.name == host and segment not in proxy.segments:
            return [f"proxy {host!r} has no link on segment {segment!r} (it is on "
                    f"{', '.join(repr(s) for s in proxy.segments)})"]
    for machine in scenario.machines:
        if machine.name == host and machine.segment != segment:
            return [f"machine {host!r} has no link on segment {segment!r} (it is on "
                    f"{machine.segment!r})"]
    if host == "site-dhcp" and all(d.segment != segment for d in scenario.site_dhcp):
        return [f"no site DHCP server is on segment {segment!r}"]
    return []


def _rule_ids(scenario: Scenario) -> Problems:
    """Rule ids the expectations name exist; none must both hold and fail."""
    problems: Problems = []
    expect = scenario.expect
    for field, ids in (("rules", expect.rules), ("violations", expect.violations)):
        for j, rule in enumerate(ids):
            if rule == "MUST":
                if field == "violations":
                    problems.append((("expect", field, j),
                                     "violations lists rule ids; 'MUST' is not one"))
            elif rule not in RULES:
                problems.append((("expect", field, j),
                                 f"unknown rule id {rule!r} in expect.{field} (the ids of "
                                 "CONFORMANCE.md, e.g. SITE-1)"))
    for j, diagnosis in enumerate(expect.diagnoses):
        if diagnosis.rule not in RULES:
            problems.append((("expect", "diagnoses", j, "rule"),
                             f"unknown rule id {diagnosis.rule!r} in expect.diagnoses"))
    for j, rule in enumerate(expect.violations):
        if rule in expect.rules and rule != "MUST":
            problems.append((("expect", "violations", j),
                             f"{rule} is both a rule that must hold and an expected violation"))
    return problems
