"""Loading a Control Plane with a plan's seed at the start of a run, and changing it by step.

Kept beside the runner so that it stays a sequence of plan items: :func:`seed` loads
the plan's clusters, boot profile, machines, proxies and faults in that order;
:func:`assign` and :func:`set_fault` are what the ``assign`` and fault steps do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.plan.items import BootProfile, ControlPlaneSeed
from harness.scenario.model import Fault

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
