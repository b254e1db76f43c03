"""The Control Plane's seed at the start of a run, and what the judge reads at its end.

Kept beside the runner so that it stays a sequence of plan items: :func:`seed` loads
the plan's clusters, boot profile, machines, proxies and faults; :func:`observe` fills
an :class:`~harness.judge.observed.Observed` while the lab still runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.components.controlplane import ControlPlane
from harness.errors import FlexlabError
from harness.judge.observed import Observed, address_key
from harness.lab import Lab
from harness.plan.items import BootProfile, ControlPlaneSeed, SitePlan
from harness.scenario.model import Fault
from harness.site_build import BuiltSite, site_facts

Artifacts = Callable[[BootProfile], tuple[bytes | Path, bytes | Path]]


def seed(api: Any, plan: ControlPlaneSeed, artifacts: Artifacts) -> dict[str, str]:
    """Load the Control Plane with the plan's seed, in order; return each proxy's token."""
    for c in plan.clusters:
        api.create_cluster(c.name, c.expected_nodes, mode=c.mode, environment=c.environment)
    if plan.profile is not None:
        p = plan.profile
        kernel, initrd = artifacts(p)
        api.upload_artifact(p.kernel, kernel)
        api.upload_artifact(p.initrd, initrd)
        api.create_profile(p.name, p.kernel, p.initrd, p.cmdline)
    for m in plan.machines:
        api.create_machine(m.mac, m.cluster, m.key, m.profile, role=m.role)
    tokens = {px.name: api.register_proxy(px.name, list(px.clusters), segments=list(px.segments))
              for px in plan.proxies}
    for fault in plan.faults:
        set_fault(api, fault)
    return tokens


def assign(api: Any, plan: ControlPlaneSeed, keys: list[str]) -> None:
    """Create the machine copies ``keys`` that this seed holds back for an ``assign`` step:
    from now on the Control Plane assigns them (and the proxies' next sync learns them)."""
    for m in plan.later:
        if m.key in keys:
            api.create_machine(m.mac, m.cluster, m.key, m.profile, role=m.role)


def set_fault(api: Any, f: Fault) -> None:
    """Make the Control Plane misbehave on one endpoint from now on."""
    api.set_fault(f.endpoint, latency_ms=f.latency_ms, error_rate=f.error_rate, down=f.down,
                  wrong_answer=f.wrong_answer)


def collect_cp_state(cp: ControlPlane | None) -> dict[str, Any]:
    """The Control Plane's final machines, clusters, conflicts and events (restarted for
    the read if a step stopped it); ``{"error": ...}`` when it cannot be read."""
    if cp is None or cp.api is None:
        return {}
    if cp.process is None or not cp.process.running():
        try:
            cp.start()
            cp.wait_ready()
        except FlexlabError:
            return {}
    try:
        api = cp.api
        # the judge reads evidence as JSON (a run dir is re-judged from its files)
        return {name: [item.model_dump(mode="json") for item in read()]
                for name, read in (("machines", api.machines), ("clusters", api.clusters),
                                   ("conflicts", api.conflicts), ("events", api.events))}
    except Exception as exc:  # the expectations then fail with this reason
        return {"error": str(exc)}


def merge_cp_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """One view of several Control Planes' states (a mixed site's cloud and site ones):
    their lists joined; an error in any of them is the view's error."""
    if len(states) == 1:
        return states[0]
    errors = [s["error"] for s in states if "error" in s]
    if errors or not all(states):
        return {"error": "; ".join(errors) or "a Control Plane's state could not be read"}
    return {key: [item for s in states for item in s.get(key, [])]
            for key in ("machines", "clusters", "conflicts", "events")}


def observe(observed: Observed, lab: Lab, cp: ControlPlane | None, plan: SitePlan,
            site: BuiltSite, more: list[ControlPlane] | None = None) -> None:
    """The lab's addresses, the Control Plane's final state (with ``more`` Control
    Planes', a mixed site's, merged in) and the whole site's facts, read while the lab
    still runs."""
    observed.addresses = {address_key(h, s): str(info.address.ip)
                          for (h, s), info in lab.links.items() if info.address is not None}
    observed.cp_state = merge_cp_states([collect_cp_state(c) for c in (cp, *(more or []))])
    try:
        log = cp.process.log_path if cp is not None and cp.process is not None else None
        observed.site = site_facts(lab, plan, site, observed.cp_state, log)
    except Exception as exc:  # the whole-site rules then say why they could not judge
        observed.run_error = observed.run_error or f"site facts: {describe(exc)}"


def describe(exc: BaseException) -> str:
    """An exception as a run error: harness errors by class, anything else as a surprise."""
    prefix = "" if isinstance(exc, FlexlabError) else "unexpected "
    return f"{prefix}{type(exc).__name__}: {exc}"
