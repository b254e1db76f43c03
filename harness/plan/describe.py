"""A site plan as one screen of plain text (what ``flexlab plan SCENARIO`` prints).

Machines are shown per scenario machine, not per copy, and long lists are cut with a
count, so a 1,000-machine storm fits the same screen as the smoke test.
"""

from __future__ import annotations

from harness.plan.items import HostOn, PlannedStep, SitePlan

MAX_STEPS = 8
MAX_ITEMS = 6


def _some(items: list[str], limit: int = MAX_ITEMS) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" … +{len(items) - limit}" if len(items) > limit else "") if items \
        else "none"


def _at(items: tuple[HostOn, ...]) -> str:
    return _some([str(a) for a in items])


def _step(step: PlannedStep) -> str:
    target = ""
    if step.keys:
        target = " " + _some(list(step.keys), 4)
    elif step.link is not None:
        target = f" {step.link}"
    else:
        for name in ("proxy", "fault"):
            value = getattr(step.step, name, None)
            if value is not None:
                target = f" {value.endpoint if name == 'fault' else value}"
    return f"  {step.at:>6g}s {step.action}{target}"


def describe(site: SitePlan) -> str:
    """The plan in about 30 lines: where everything is, who talks to whom, what happens."""
    lines = [f"plan {site.name}: {site.tier} tier, time scale {site.time_scale:g}, "
             f"timeout {site.timeout:g}s",
             "segments:   " + _some([f"{s.name} /{s.prefixlen}" + (" ra" if s.ipv6_ra else "")
                                     for s in site.topology.segments]),
             "hosts:      " + _some([
                 f"{h.name}[{','.join(k.segment for k in h.links)}]"
                 + ("*" if h.forwarding else "") for h in site.topology.hosts], 12)]
    for cp, seed in site.control_planes():
        lines.append(f"control:    {cp.host} on {cp.placement} ({', '.join(cp.segments)})"
                     + (", TLS" if cp.tls else ""))
        lines.append(f"  seed:     {len(seed.clusters)} cluster(s) "
                     + _some([f"{c.name}={c.expected_nodes}" for c in seed.clusters])
                     + f", {len(seed.machines)} machine(s), {len(seed.proxies)} proxy(ies), "
                     f"{len(seed.faults)} fault(s)")
    seed = site.seed
    if seed.profile is not None:
        lines.append(f"  profile:  {seed.profile.name} ({seed.profile.artifacts}): "
                     f"{seed.profile.cmdline}")
    for d in site.dhcp_servers:
        extra = [f"relayed {r.segment} (router {r.router})" for r in d.relayed]
        extra += [f"forces {o}" for o in d.forced_options]
        extra += [f"reserves {len(p.macs)} on {p.segment}" for p in d.reserved]
        lines.append(f"dhcp:       {d.name} {d.address}" + ("; " + "; ".join(extra)
                                                             if extra else ""))
    for r in site.relays:
        lines.append(f"relay:      {r.name} on {r.host}: {r.downstream} -> {r.upstream}, "
                     f"servers {_at(r.servers)}; routes back on "
                     f"{_some(sorted({x.host for x in r.routes}))}")
    for s in site.snooping:
        lines.append(f"snooping:   {s.segment} trusts {_some(list(s.trusted))}")
    for p in site.proxies:
        image = f" {p.image}" if p.image else ""
        lines.append(f"proxy:      {p.name} {p.kind}{image} on {','.join(p.segments)}, "
                     f"clusters {_some(list(p.clusters))}, {len(p.served_macs)} MAC(s), "
                     f"{p.start}, CP via {p.cp_via}")
    groups: dict[str, list[str]] = {}
    for m in site.machines:
        groups.setdefault(m.group, []).append(m.key)
    for group, keys in groups.items():
        m = next(c for c in site.machines if c.group == group)
        lines.append(f"machines:   {group} x{len(keys)} {m.firmware}/{m.nic} ({m.driver}) on "
                     f"{m.segment} via {m.attach_host}, "
                     + (f"{m.cluster} {m.role}" if m.cluster else "stranger"))
    lines.append(f"steps:      {len(site.steps)}")
    lines += [_step(s) for s in site.steps[:MAX_STEPS]]
    if len(site.steps) > MAX_STEPS:
        lines.append(f"  … {len(site.steps) - MAX_STEPS} more")
    lines.append("site:       " + ", ".join(
        f"{name} {'planned' if item is not None else 'none'}"
        for name, item in (("wan", site.wan), ("dns", site.dns), ("ntp", site.ntp))))
    return "\n".join(lines)
