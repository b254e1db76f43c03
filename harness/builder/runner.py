"""Running one scenario: build its plan's items in order, play its steps, judge.

``plan(scenario)`` made every wiring decision; this module only executes them, on one
ExitStack, in the plan's order: the lab, the whole site's WAN/DNS/NTP, the Control Plane
and its seed, site DHCP, relays and their routes, snooping, the at-start proxies, the
machines through their driver. Steps play through a ``match`` on their type. Teardown
is the stack unwinding (:mod:`harness.builder.unwind`: a ``stop()`` that raises becomes
a reported teardown error, never keeps the rest from going). What the judge reads is
collected by :mod:`harness.builder.evidence`; the verdicts come from
:func:`harness.judge.judge.judge`, the same code that re-judges a saved run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import assert_never

from harness.builder.evidence import describe, lab_files, observe
from harness.builder.kinds import Kinds, ProxyStart, versions
from harness.builder.seed import assign, seed, set_fault
from harness.builder.unwind import Unwinding
from harness.capture.events import Capture
from harness.components.base import Component
from harness.components.controlplane import ControlPlane
from harness.components.snooping import SnoopingSwitch
from harness.errors import FlexlabError
from harness.judge.judge import decode_captures, judge
from harness.judge.observed import Observed, scenario_data
from harness.judge.result import RunResult
from harness.lab import Lab
from harness.plan import SitePlan, plan
from harness.plan.items import PlannedStep
from harness.plan.planner import RunProxyKind
from harness.scenario import model
from harness.scenario.drivers import MachineDriver, MachineProgress
from harness.site_build import BuiltSite

Progress = Callable[[str, dict[str, MachineProgress]], None]


class ScenarioRunner(Unwinding):
    """Builds one scenario's :class:`SitePlan` on this host and returns a :class:`RunResult`.

    The plan is made here (``PlanError`` before anything is built); callers may adjust
    ``self.plan`` (a wider topology, an extra host) before :meth:`run`. ``kinds`` are the
    component classes to build with (fakes in tests)."""

    def __init__(self, scenario: model.Scenario, *, reports_dir: Path = Path("reports"),
                 scenario_file: Path | None = None, progress: Progress | None = None,
                 boot_proxy_image: str | None = None, kinds: Kinds | None = None,
                 boot_proxy_kind: RunProxyKind | None = None) -> None:
        super().__init__(scenario.name)
        self.scenario = scenario
        self.plan: SitePlan = plan(scenario, boot_proxy_image=boot_proxy_image,
                                   boot_proxy_kind=boot_proxy_kind)
        self.kinds = kinds or Kinds()
        self.reports_dir = reports_dir
        self.scenario_file = scenario_file
        self.progress = progress
        self.lab: Lab | None = None
        self.site = BuiltSite()
        self.cp: ControlPlane | None = None          # the main one
        self.cps: dict[str, ControlPlane] = {}         # lab host -> each Control Plane
        self.switches: list[SnoopingSwitch] = []         # snooping switches, for their drops
        self.driver: MachineDriver | None = None
        self.proxies: dict[str, Component] = {}
        self.tokens: dict[str, str] = {}
        self.power_on_at: dict[str, float] = {}
        self.seen: dict[str, MachineProgress] = {}
        self.failure: Exception | None = None   # what stopped the run (its type: host or not)
        self.captures: dict[str, Capture] = {}   # decoded pcaps, kept for the reports
        # dnsmasq "code,value" options every site DHCP server adds (site-check's DNS/NTP)
        self.extra_dhcp_options: tuple[str, ...] = ()

    # -- the run -------------------------------------------------------------------
    def run(self) -> RunResult:
        """Build, boot, tear down and judge. Never raises (KeyboardInterrupt aside): a
        failure anywhere, a stop() that raised included, becomes ``result.error``."""
        started = time.time()
        result = RunResult(
            scenario_name=self.scenario.name, scenario_file=self.scenario_file,
            scenario=self.scenario.model_dump(mode="json", by_alias=True),
            tier=self.scenario.tier, lab_id="", started=started, finished=started,
            versions=versions(), phases=self.phases)
        observed = Observed(scenario=scenario_data(self.scenario))
        try:
            self.build_lab()
            self.build_site()
            with self._phase("machines"):
                self._boot()
        except Exception as exc:
            self.failure = exc
            observed.run_error = describe(exc)
        finally:
            self._observe(observed)
            with self._phase("teardown"):
                self.close()
        result.lab_id = self.lab.id if self.lab is not None else ""
        try:
            with self._phase("judge"):
                result = self._judge(result, observed)
        except Exception as exc:
            result.error = result.error or f"judge: {describe(exc)}"
        result.finished = time.time()
        return result

    # -- build ---------------------------------------------------------------------
    def build_lab(self) -> Lab:
        """The plan's topology, built (or ``self.lab``, if the caller made it)."""
        with self._phase("build lab"):
            lab = self.lab or self.kinds.lab(self.plan.topology, self.reports_dir / "labs")
            self.lab = lab
            self._on_exit("lab", lab.teardown)
            lab.build()
            return lab

    def build_site(self) -> None:
        """Everything but the machines: whole site, Control Plane and seed, site DHCP,
        relays and routes, snooping, at-start proxies."""
        lab, p, kinds = self.lab, self.plan, self.kinds
        assert lab is not None
        with self._phase("control plane"):
            site_stack = contextlib.ExitStack()
            self._on_exit("whole site", site_stack.close)
            self.site = kinds.whole_site(site_stack, lab, p)
            # a mixed site has two: the cloud one and the site's; each is loaded with its
            # own clusters, machines and proxies
            for cp_plan, cp_seed in p.control_planes():
                cp = kinds.control_plane(lab, p, self.site, cp_plan)
                self.cps[cp_plan.host] = cp
                self.cp = self.cp or cp
                self._on_exit("control plane" if cp is self.cp else cp_plan.name, cp.close)
                cp.start()
                cp.wait_ready()
                self.tokens.update(seed(cp.api, cp_seed, kinds.artifacts))
        with self._phase("site"):
            for server in p.dhcp_servers:
                server = dataclasses.replace(
                    server, forced_options=server.forced_options + self.extra_dhcp_options)
                self.start(kinds.site_dhcp(lab, server, self.site))
            for relay in p.relays:
                for route in relay.routes:
                    lab.add_route(route.host, str(lab.subnets[route.segment]),
                                  route.via.address(lab.address))
                self.start(kinds.relay(lab, relay))
            for snoop in p.snooping:
                switch = kinds.snooping(lab, snoop.segment, list(snoop.trusted))
                if isinstance(switch, SnoopingSwitch):  # its counters are read at the end
                    self.switches.append(switch)
            for proxy in p.proxies:
                if proxy.start == "at-start":
                    self.start_proxy(proxy.name)

    def start_proxy(self, name: str) -> None:
        """Start the Boot Proxy called ``name`` with its planned kind (again, if stopped)."""
        assert self.lab is not None and self.cp is not None
        if (existing := self.proxies.get(name)) is not None:
            existing.start()
            existing.wait_ready()
            return
        proxy = self.plan.proxy(name)
        cp = self.cps.get(proxy.cp_via.host, self.cp)
        start = ProxyStart(self.lab, self.plan, proxy, cp.url(proxy.cp_via.segment),
                           self.tokens[name], cp.ca_cert)
        self.proxies[name] = component = self.kinds.proxies[proxy.kind](start)
        self.start(component)

    # -- machines and steps --------------------------------------------------------
    def _boot(self) -> None:
        assert self.lab is not None and self.cp is not None
        self.driver = driver = self.kinds.driver(self.lab, self.scenario)
        self._on_exit("machines", driver.close)
        driver.add([m.driver_plan(self.cps.get(m.cp_via.host, self.cp).url(m.cp_via.segment))
                    for m in self.plan.machines])
        started = time.monotonic()
        pending = list(self.plan.steps)
        while True:
            now = time.monotonic() - started
            while pending and pending[0].at <= now:
                self._play(pending.pop(0), now)
            self.seen = driver.progress()
            if self.progress is not None:
                self.progress("machines", self.seen)
            waiting = [k for k in self.power_on_at if k in self.seen
                       and not self.seen[k].finished]
            if not pending and not waiting:
                return
            if now > self.plan.timeout:
                more = f" and {len(waiting) - 10} more" if len(waiting) > 10 else ""
                raise FlexlabError(f"scenario timeout ({self.plan.timeout:.0f}s): still waiting "
                                   f"for {', '.join(waiting[:10]) or 'the remaining steps'}{more}")
            time.sleep(0.2)  # poll interval of the progress loop

    def _play(self, planned: PlannedStep, now: float) -> None:
        assert self.lab is not None and self.driver is not None and self.cp is not None
        step, keys, link = planned.step, list(planned.keys), planned.link
        match step:
            case model.PowerStep():
                if step.action != "power_on":
                    self.driver.power_off(keys)
                if step.action != "power_off":
                    self.power_on_at.update(dict.fromkeys(keys, time.time()))
                    self.driver.power_on(keys, now)
            # Control Plane steps and faults act on the main one (a mixed site's cloud)
            case model.ControlPlaneStep(action="stop_control_plane"):
                self.cp.stop()
            case model.ControlPlaneStep(action="start_control_plane"):
                self.cp.start()
                self.cp.wait_ready()
            case model.ControlPlaneStep():
                self.cp.api.clear_faults()
            case model.ProxyStep(action="start_proxy"):
                self.start_proxy(step.proxy)
            case model.ProxyStep():
                self.proxies[step.proxy].stop()
            case model.LinkStep():
                assert link is not None  # the plan resolves every link step's link
                self.lab.set_link(link.host, link.segment, step.action == "restore_link")
            case model.NetemStep():
                assert link is not None
                self.lab.impair(link.host, link.segment, step.delay_ms, step.loss_pct)
            case model.FaultStep():
                set_fault(self.cp.api, step.fault)
            case model.AssignStep():
                for cp_plan, cp_seed in self.plan.control_planes():
                    assign(self.cps[cp_plan.host].api, cp_seed, keys)
            case model.WanStep():
                assert self.site.wan is not None  # the checks refuse a WAN step without one
                self.site.wan.set_up(step.action == "wan_up")
            case _:
                assert_never(step)

    # -- the end -------------------------------------------------------------------
    def _observe(self, observed: Observed) -> None:
        """What the judge reads, collected while the lab still runs."""
        observed.powered_at, observed.progress = dict(self.power_on_at), dict(self.seen)
        observed.driver = self.driver.kind if self.driver is not None else "none"
        if self.lab is not None:
            observe(observed, self.lab, self.plan, self.site, cp=self.cp,
                    more=[cp for cp in self.cps.values() if cp is not self.cp],
                    proxies=self.proxies.values(), switches=self.switches)

    def _judge(self, result: RunResult, observed: Observed) -> RunResult:
        lab_files(result, observed, self.lab, self.stop_errors)
        self.captures, problems = decode_captures(result.pcaps)
        result.error = observed.run_error or next(iter(problems), None)
        result.observed = observed
        return judge(self.scenario, self.plan, self.captures, observed, result)
