"""What the judge reads at the end of a run, collected from what the run built.

Kept beside the runner so that it stays a sequence of plan items: :func:`observe` fills
an :class:`~harness.judge.observed.Observed` while the lab still runs (addresses, the
Control Planes' final state, the whole site's facts, snooping drops, container logs);
:func:`lab_files` adds the lab's captures and logs and the teardown's errors after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.components.base import Component
from harness.components.container import BootProxyContainer
from harness.components.controlplane import ControlPlane
from harness.components.snooping import SnoopingSwitch
from harness.errors import FlexlabError
from harness.judge.observed import Observed, address_key
from harness.judge.result import RunResult
from harness.lab import Lab
from harness.plan.items import SitePlan
from harness.site_build import BuiltSite, site_facts


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


def observe(observed: Observed, lab: Lab, plan: SitePlan, site: BuiltSite, *,
            cp: ControlPlane | None, more: Sequence[ControlPlane] = (),
            proxies: Iterable[Component] = (),
            switches: Iterable[SnoopingSwitch] = ()) -> None:
    """The lab's addresses, the Control Plane's final state (with ``more`` Control
    Planes', a mixed site's, merged in), the whole site's facts and the snooping
    switches' drops, read while the lab still runs."""
    # a Boot Proxy container's log is only copied out when it stops: copy it now,
    # the whole site's TLS facts (WAN-3) read it
    for component in proxies:
        if isinstance(component, BootProxyContainer) and (text := component.logs()):
            component.log_path.parent.mkdir(parents=True, exist_ok=True)
            component.log_path.write_text(text)
    observed.addresses = {address_key(h, s): str(info.address.ip)
                          for (h, s), info in lab.links.items() if info.address is not None}
    observed.cp_state = merge_cp_states([collect_cp_state(c) for c in (cp, *more)])
    try:
        log = cp.process.log_path if cp is not None and cp.process is not None else None
        observed.site = site_facts(lab, plan, site, observed.cp_state, log)
    except Exception as exc:  # the whole-site rules then say why they could not judge
        observed.run_error = observed.run_error or f"site facts: {describe(exc)}"
    try:
        observed.switch_drops = {sw.segment: sw.port_drops() for sw in switches}
    except FlexlabError as exc:  # a snooping expectation then fails with this reason
        observed.run_error = observed.run_error or f"snooping counters: {describe(exc)}"


def lab_files(result: RunResult, observed: Observed, lab: Lab | None,
              stop_errors: list[str]) -> None:
    """After teardown: the lab's captures and logs into ``result``, its capture counters
    and the teardown's errors (beside the run's own error, never instead of it) into
    ``observed``."""
    if lab is not None:
        result.pcaps = dict(lab.pcaps)
        result.logs = [p for p in lab.artifacts() if p.suffix == ".log"]
        observed.capture_stats = {seg: lab.capture_stats(seg) for seg in result.pcaps}
    if stop_errors:
        observed.run_error = "; ".join(filter(None, (
            observed.run_error, "teardown: " + "; ".join(stop_errors))))


def describe(exc: BaseException) -> str:
    """An exception as a run error: harness errors by class, anything else as a surprise."""
    prefix = "" if isinstance(exc, FlexlabError) else "unexpected "
    return f"{prefix}{type(exc).__name__}: {exc}"
