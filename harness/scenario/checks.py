"""Cross-reference checks a schema cannot express: names that must exist, clashes, time order.

Each problem is returned with the path of the offending value inside the
file, so the loader can point at its line.
"""

from __future__ import annotations

import re

from harness.scenario.model import Scenario

Loc = tuple[str | int, ...]


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


def check(scenario: Scenario) -> list[tuple[Loc, str]]:
    """All cross-reference problems, in file order."""
    problems: list[tuple[Loc, str]] = []
    segments = [s.name for s in scenario.segments]
    seg_set = set(segments)
    clusters = {c.name for c in scenario.clusters}
    proxies = {p.name for p in scenario.proxies}
    machines = {m.name for m in scenario.machines}

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
                             f"which does not exist (declared: {', '.join(segments)})"))
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
    last_at = 0.0
    for i, step in enumerate(scenario.steps):
        if step.at < last_at:
            problems.append((("steps", i, "at"),
                             f"step {i + 1} ({step.action}) at {step.at}s is in the past: the "
                             f"step before it is at {last_at}s (steps run in time order)"))
        last_at = max(last_at, step.at)
        for j, name in enumerate(step.machines):
            if name not in machines:
                problems.append((("steps", i, "machines", j),
                                 f"step names unknown machine {name!r}"))
        if step.proxy is not None and step.proxy not in proxies:
            problems.append((("steps", i, "proxy"), f"step names unknown proxy {step.proxy!r}"))
        if step.segment is not None and step.segment not in seg_set:
            problems.append((("steps", i, "segment"),
                             f"step names unknown segment {step.segment!r}"))
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
    return problems
