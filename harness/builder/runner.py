"""Running one scenario: build the site, boot the machines, judge, and collect evidence.

The phases are explicit and timed (they become Allure steps): build the lab,
start the Control Plane and load it from the scenario, start site DHCP,
relays, snooping and proxies, power machines on and play the steps, wait
until every machine has settled (or the scenario's timeout), tear down (which
flushes the captures), run the rules on each segment's pcap, and judge the
expectations. Teardown runs on every path; a failure becomes ``result.error``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, assert_never

from harness import __version__
from harness.capture.decode import decode_pcap
from harness.capture.errors import CaptureError
from harness.capture.events import Capture
from harness.components.base import Component
from harness.components.bootproxy import BootProxy
from harness.components.container import DEFAULT_IMAGE, BootProxyContainer
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.components.dnsmasq_proxy import DnsmasqProxy, served_macs_from_control_plane
from harness.components.relay import DhcpRelay
from harness.components.snooping import enable_snooping
from harness.errors import FlexlabError
from harness.judge.expectations import judge_expectations
from harness.judge.result import ExpectationResult, MachineResult, RunResult
from harness.lab import Lab
from harness.localboot import stand_in_artifact
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture
from harness.scenario.checks import machine_macs
from harness.scenario.drivers import MachineDriver, MachinePlan, MachineProgress
from harness.scenario.model import (
    ControlPlaneStep,
    FaultStep,
    LinkStep,
    NetemStep,
    PowerStep,
    ProxyStep,
    Scenario,
    Step,
)
from harness.scenario.topology import SiteLayout, layout_for

Progress = Callable[[str, dict[str, MachineProgress]], None]
# flexlab.timeurl: the node agent sets its clock from the CP first (QEMU starts guests up to
# 1 s behind; the image has no NTP client) — the sim agent ignores it
CMDLINE = ("console=ttyS0 panic=-1 flexlab.cp={cp_url} flexlab.token={join_token} "
           "flexlab.mac={mac} flexlab.hostname={hostname} flexlab.timeurl={cp_url}/api/v1/time")


RESERVE_FROM = 100  # machines on a segment from which the site DHCP reserves addresses


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "absent"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) \
        else "unknown"


def versions() -> dict[str, str]:
    """Versions of what a run used, for the report and the results bundle."""
    return {
        "flexlab": __version__,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "dnsmasq": _version(["dnsmasq", "--version"]),
        "tcpdump": _version(["tcpdump", "--version"]),
    }


def ready_after(events: list[dict[str, Any]], mac: str, powered: float | None) -> float | None:
    """When the Control Plane first saw ``mac`` Ready after its last power-on (None if never).

    A machine reset after it was Ready must not be timed against its earlier boot: taking
    the first ``node.ready`` of the run gave negative seconds and a vacuous ready_within."""
    return next((e["time"] for e in events
                 if e["kind"] == "node.ready" and e["subject"] == mac
                 and (powered is None or e["time"] >= powered)), None)


class ScenarioRunner:
    """Runs one loaded scenario on this host and returns a :class:`RunResult`."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        reports_dir: Path = Path("reports"),
        scenario_file: Path | None = None,
        driver_factory: Callable[[Lab, Scenario], MachineDriver] | None = None,
        progress: Progress | None = None,
        boot_proxy_image: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.boot_proxy_image = boot_proxy_image
        self.reports_dir = reports_dir
        self.scenario_file = scenario_file
        self.driver_factory = driver_factory or default_driver
        self.progress = progress
        self.layout: SiteLayout = layout_for(scenario)
        self.macs = machine_macs(scenario)
        self.components: list[Component] = []
        self.proxies: dict[str, Component] = {}
        self.proxy_tokens: dict[str, str] = {}
        self.cp: ControlPlane | None = None
        self.lab: Lab | None = None
        self.driver: MachineDriver | None = None
        self.power_on_at: dict[str, float] = {}
        self.t0 = 0.0
        self.result: RunResult | None = None
        self.captures: dict[str, Capture] = {}  # decoded pcaps, kept for the reports
        # dnsmasq "code,value" options every site DHCP server adds (e.g. DNS/NTP servers a
        # site-check lab runs); set before the site starts
        self.extra_dhcp_options: tuple[str, ...] = ()

    # -- the run -----------------------------------------------------------------
    def run(self) -> RunResult:
        """Run the scenario end to end; never raises for a scenario failure."""
        self.t0 = time.time()
        result = RunResult(
            scenario_name=self.scenario.name, scenario_file=self.scenario_file,
            scenario=self.scenario.model_dump(mode="json", by_alias=True),
            tier=self.scenario.tier, lab_id="", started=self.t0, finished=self.t0,
            versions=versions(),
        )
        self.result = result
        lab = Lab(self.layout.topology, reports_dir=self.reports_dir / "labs")
        self.lab = lab
        result.lab_id = lab.id
        progress: dict[str, MachineProgress] = {}
        try:
            with self._phase("build lab"):
                lab.build()
            with self._phase("control plane"):
                self._start_control_plane()
            with self._phase("site"):
                self._start_site()
            with self._phase("machines"):
                progress = self._boot()
        except FlexlabError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug or a surprise still gets a report, and a teardown
            result.error = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            cp_state = self._collect_cp_state()
            with self._phase("teardown"):
                self._teardown(result)
        with self._phase("judge"):
            self._judge(result, progress, cp_state)
        result.finished = time.time()
        return result

    @contextlib.contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            assert self.result is not None
            self.result.phases.append((name, start, time.time()))

    # -- site --------------------------------------------------------------------
    def _start_control_plane(self) -> None:
        assert self.lab is not None
        cp = ControlPlane(self.lab, self.layout.cp_host, tls=self.scenario.control_plane.tls)
        self.cp = cp
        cp.start()
        cp.wait_ready()
        api = cp.api
        for cluster in self.scenario.clusters:
            expected = cluster.expected_nodes or sum(
                m.count for m in self.scenario.machines if m.cluster == cluster.name) or 1
            api.create_cluster(cluster.name, expected, mode=cluster.mode,
                               environment=cluster.environment)
        if self.scenario.clusters:
            kernel, initrd = self._boot_artifacts()
            api.upload_artifact("vmlinuz", kernel)
            api.upload_artifact("initrd.img", initrd)
            api.create_profile("default", "vmlinuz", "initrd.img", CMDLINE)
        for machine in self.scenario.machines:
            if machine.cluster is None:
                continue
            for key, mac in zip(self._keys(machine.name), self.macs[machine.name], strict=True):
                api.create_machine(mac, machine.cluster, key, "default", role=machine.role)
        for proxy in self.scenario.proxies:
            self.proxy_tokens[proxy.name] = api.register_proxy(
                proxy.name, list(proxy.clusters), segments=list(proxy.segments))
        for fault in self.scenario.control_plane.faults:
            api.set_fault(fault.endpoint, latency_ms=fault.latency_ms,
                          error_rate=fault.error_rate, down=fault.down,
                          wrong_answer=fault.wrong_answer)

    def _boot_artifacts(self) -> tuple[bytes | Path, bytes | Path]:
        """The kernel and initrd machines boot: the node image in the vm tier; in the sim
        tier stand-in bytes (emulated machines fetch them over HTTP but never run them)."""
        if self.scenario.tier == "vm":
            from nodeimage.build import build_image

            image = build_image()  # cached by content hash: a no-op when already built
            return image.kernel, image.initrd
        return (stand_in_artifact("vmlinuz", 256 * 1024),
                stand_in_artifact("initrd.img", 512 * 1024))

    def _start_site(self) -> None:
        lab, scenario, layout = self.lab, self.scenario, self.layout
        assert lab is not None and self.cp is not None
        for i, spec in enumerate(scenario.site_dhcp):
            relayed = layout.relays_into(scenario, spec.segment)
            routers = {seg: lab.address(layout.relay_hosts[seg], seg) for seg in relayed}
            force: tuple[str, ...] = ("60,PXEClient",) if spec.sends_pxeclient else ()
            force += self.extra_dhcp_options
            dhcp = SiteDhcp(lab, layout.dhcp_hosts[i], spec.segment, force_options=force,
                            relayed_segments=tuple(relayed), relay_routers=routers,
                            name=f"site-dhcp{i}",
                            reservations=self._reservations([spec.segment, *relayed]))
            self._start(dhcp)
        for seg in scenario.segments:
            if seg.relay is None:
                continue
            relay_host = layout.relay_hosts[seg.name]
            upstream = seg.relay.upstream
            gateway = lab.address(relay_host, upstream)
            servers = [lab.address(layout.dhcp_hosts[i], upstream)
                       for i, d in enumerate(scenario.site_dhcp) if d.segment == upstream]
            servers += [lab.address(p.name, upstream) for p in scenario.proxies
                        if upstream in p.segments]
            for host in [layout.dhcp_hosts[i] for i, d in enumerate(scenario.site_dhcp)
                         if d.segment == upstream] + [p.name for p in scenario.proxies
                                                      if upstream in p.segments]:
                lab.add_route(host, str(lab.subnets[seg.name]), gateway)
            self._start(DhcpRelay(lab, relay_host, seg.name, upstream, servers))
        for seg in scenario.segments:
            if seg.snooping is None:
                continue
            trusted = [layout.relay_hosts[seg.name]] if seg.name in layout.relay_hosts else []
            for name in seg.snooping.trusted:
                if name == "site-dhcp":
                    trusted += [layout.dhcp_hosts[i] for i, d in enumerate(scenario.site_dhcp)
                                if d.segment == seg.name]
                else:
                    trusted.append(name)
            enable_snooping(lab, seg.name, trusted)
        for proxy in scenario.proxies:
            if proxy.start == "at-start":
                self.start_proxy(proxy.name)

    def _reservations(self, segments: list[str]) -> dict[str, str] | None:
        """Big segments get one reserved address per machine (see SiteDhcp): a boot storm
        then measures the Boot Proxy, not dnsmasq's NAKs. Small ones stay dynamic."""
        assert self.lab is not None
        out: dict[str, str] = {}
        for seg in segments:
            machines = [m for m in self.scenario.machines if m.segment == seg]
            if sum(m.count for m in machines) < RESERVE_FROM:
                continue
            first, last = self.lab.dhcp_pool(seg)
            pool = ipaddress.IPv4Address(first)
            for m in machines:
                for mac in self.macs[m.name]:
                    if pool > ipaddress.IPv4Address(last):
                        raise FlexlabError(f"segment {seg!r}: DHCP pool too small")
                    out[mac] = str(pool)
                    pool += 1
        return out or None

    def start_proxy(self, name: str) -> None:
        """Start (or restart) the Boot Proxy called ``name``."""
        assert self.lab is not None and self.cp is not None
        spec = next(p for p in self.scenario.proxies if p.name == name)
        existing = self.proxies.get(name)
        if existing is not None:
            existing.start()
            existing.wait_ready()
            return
        cp_url = self.cp.url(spec.segments[0])
        image = self.boot_proxy_image or spec.image
        proxy: Component
        if spec.kind == "dnsmasq":
            # the second, independent ProxyDHCP implementation; its MAC filter comes from the
            # same Control Plane state. dnsmasq serves no HTTP: iPXE's script URL points at
            # port 8080 of the proxy host, where nothing answers, so its machines stop there.
            if len(spec.segments) != 1:
                raise FlexlabError(f"proxy {name!r}: kind dnsmasq serves exactly one segment")
            seg = spec.segments[0]
            proxy = DnsmasqProxy(
                self.lab, name, seg, name=f"dnsmasq-proxy-{name}",
                script_url=f"http://{self.lab.address(name, seg)}:8080/boot/${{mac}}.ipxe",
                served_macs=served_macs_from_control_plane(self.cp.api, spec.clusters),
                relayed_segments=tuple(self.layout.relays_into(self.scenario, seg)))
            self.proxies[name] = proxy
            self._start(proxy)
            return
        if spec.kind == "container" or image or self.scenario.tier == "vm":
            proxy = BootProxyContainer(self.lab, name, list(spec.segments),
                                       image=image or DEFAULT_IMAGE, cp_url=cp_url,
                                       cp_token=self.proxy_tokens[name], name=name)
        else:
            proxy = BootProxy(self.lab, name, list(spec.segments), cp_url=cp_url,
                              cp_token=self.proxy_tokens[name], name=name)
        self.proxies[name] = proxy
        self._start(proxy)

    def _start(self, component: Component) -> None:
        self.components.append(component)
        component.start()
        component.wait_ready()

    # -- machines ----------------------------------------------------------------
    def _keys(self, machine: str) -> list[str]:
        spec = next(m for m in self.scenario.machines if m.name == machine)
        return [machine] if spec.count == 1 else [f"{machine}{i + 1}" for i in range(spec.count)]

    def plans(self) -> list[MachinePlan]:
        """Every machine copy, as drivers see them."""
        assert self.lab is not None and self.cp is not None
        out = []
        for m in self.scenario.machines:
            for key, mac in zip(self._keys(m.name), self.macs[m.name], strict=True):
                out.append(MachinePlan(
                    key=key, group=m.name, mac=mac, firmware=m.firmware, segment=m.segment,
                    attach_host=self.layout.machine_hosts[m.segment], nic=m.nic, facts=m.facts,
                    cp_urls=(self.cp.url(m.segment),),
                ))
        return out

    def _boot(self) -> dict[str, MachineProgress]:
        assert self.lab is not None
        driver = self.driver_factory(self.lab, self.scenario)
        self.driver = driver
        driver.add(self.plans())
        steps = sorted(self.scenario.steps, key=lambda s: s.at)
        started = time.monotonic()
        deadline = started + self.scenario.timeout
        pending = list(steps)
        progress: dict[str, MachineProgress] = {}
        while True:
            now = time.monotonic() - started
            while pending and pending[0].at <= now:
                self._play(pending.pop(0), now)
            progress = driver.progress()
            if self.progress is not None:
                self.progress("machines", progress)
            powered = [k for k in self.power_on_at if k in progress]
            settled = all(progress[k].finished for k in powered)
            if not pending and settled:
                return progress
            if time.monotonic() > deadline:
                waiting = [k for k in powered if not progress[k].finished]
                raise FlexlabError(
                    f"scenario timeout ({self.scenario.timeout:.0f}s): still waiting for "
                    f"{', '.join(waiting[:10]) or 'the remaining steps'}"
                    + (f" and {len(waiting) - 10} more" if len(waiting) > 10 else "")
                )
            time.sleep(0.2)  # poll interval of the progress loop

    def _play(self, step: Step, now: float) -> None:
        assert self.lab is not None and self.driver is not None and self.cp is not None
        match step:
            case PowerStep():
                keys = [k for name in step.machines for k in self._keys(name)]
                if step.action != "power_on":
                    self.driver.power_off(keys)
                if step.action != "power_off":
                    for key in keys:
                        self.power_on_at[key] = time.time()
                    self.driver.power_on(keys, now)
            case ControlPlaneStep(action="stop_control_plane"):
                self.cp.stop()
            case ControlPlaneStep(action="start_control_plane"):
                self.cp.start()
                self.cp.wait_ready()
            case ControlPlaneStep():
                self.cp.api.clear_faults()
            case ProxyStep(action="start_proxy"):
                self.start_proxy(step.proxy)
            case ProxyStep():
                self.proxies[step.proxy].stop()
            case LinkStep():
                self.lab.set_link(self._host_of(step.host), step.segment,
                                  step.action == "restore_link")
            case NetemStep():
                self.lab.impair(self._host_of(step.host), step.segment, step.delay_ms,
                                step.loss_pct)
            case FaultStep():
                f = step.fault
                self.cp.api.set_fault(f.endpoint, latency_ms=f.latency_ms,
                                      error_rate=f.error_rate, down=f.down,
                                      wrong_answer=f.wrong_answer)
            case _:
                assert_never(step)

    def _host_of(self, name: str | None) -> str:
        """Lab host behind a step's ``host``: a proxy, 'cp', 'site-dhcp', or a machine group."""
        if name is None:
            raise FlexlabError("this step needs host:")
        if name == "site-dhcp":
            return self.layout.dhcp_hosts[0]
        for m in self.scenario.machines:
            if m.name == name:
                return self.layout.machine_hosts[m.segment]
        return name

    # -- end ---------------------------------------------------------------------
    def _collect_cp_state(self) -> dict[str, Any]:
        cp = self.cp
        if cp is None or cp.api is None:
            return {}
        if cp.process is None or not cp.process.running():
            try:
                cp.start()
                cp.wait_ready()
            except FlexlabError:
                return {}
        try:
            return {"machines": cp.api.machines(), "clusters": cp.api.clusters(),
                    "conflicts": cp.api.conflicts(), "events": cp.api.events()}
        except Exception as exc:
            return {"error": str(exc)}

    def _teardown(self, result: RunResult) -> None:
        errors = []
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception as exc:
                errors.append(f"machines: {exc}")
        for comp in reversed(self.components):
            with contextlib.suppress(Exception):
                comp.stop()
        if self.cp is not None:
            self.cp.close()
        if self.lab is not None:
            try:
                self.lab.teardown()
            except FlexlabError as exc:
                errors.append(str(exc))
            result.pcaps = dict(self.lab.pcaps)
            result.logs = [p for p in self.lab.artifacts() if p.suffix == ".log"]
        if errors and not result.error:
            result.error = "teardown: " + "; ".join(errors)

    def rule_context(self) -> RuleContext:
        """What the rules must know about this site (checked, not assumed)."""
        lab = self.lab
        assert lab is not None
        proxies: set[str] = set()
        serves: dict[str, frozenset[str]] = {}
        for spec in self.scenario.proxies:
            served = frozenset(
                mac for m in self.scenario.machines if m.cluster in spec.clusters
                for mac in self.macs[m.name])
            for seg in spec.segments:
                ip = lab.address(spec.name, seg)
                proxies.add(ip)
                serves[ip] = served
        dhcp = {lab.address(self.layout.dhcp_hosts[i], d.segment)
                for i, d in enumerate(self.scenario.site_dhcp)}
        relays = {lab.address(h, seg) for seg, h in self.layout.relay_hosts.items()}
        return RuleContext(
            proxies=frozenset(proxies), serves=serves, site_dhcp=frozenset(dhcp),
            relays=frozenset(relays),
            vendor_classes=("PXEClient", "HTTPClient", "HW-Client"),
        )

    def _judge(self, result: RunResult, progress: dict[str, MachineProgress],
               cp_state: dict[str, Any]) -> None:
        if self.lab is None or not self.lab.links:
            return
        context = self.rule_context()
        captures = self.captures
        for seg, pcap in result.pcaps.items():
            try:
                captures[seg] = decode_pcap(str(pcap), require_dhcp=False)
            except CaptureError as exc:
                result.error = result.error or f"capture {pcap}: {exc}"
                continue
            if captures[seg].dhcp:
                result.findings[seg] = check_capture(captures[seg], context).findings
        machines_by_mac = {m["mac"]: m for m in cp_state.get("machines", [])}
        for plan in (self.plans() if self.cp else []):
            prog = progress.get(plan.key, MachineProgress(plan.key))
            cp_machine = machines_by_mac.get(plan.mac, {})
            powered = self.power_on_at.get(plan.key)
            ready_at = ready_after(cp_state.get("events", []), plan.mac, powered)
            result.machines.append(MachineResult(
                name=plan.key, mac=plan.mac, firmware=plan.firmware, segment=plan.segment,
                cluster=next(m.cluster for m in self.scenario.machines if m.name == plan.group),
                driver=self.driver.kind if self.driver else "none",
                state=cp_machine.get("state", "Unknown" if prog.phase != "off" else "Off"),
                reasons=list(cp_machine.get("reasons", []))
                + ([f"machine: {prog.error}"] if prog.error else []),
                answered_by=self._proxy_names(prog.answered_by),
                ready_seconds=(ready_at - powered) if ready_at and powered else None,
                powered_at=powered,
                timeline=list(prog.timeline),
                console=Path(prog.console) if prog.console else None,
            ))
        result.expectations = judge_expectations(
            self.scenario, result, captures, cp_state, self._proxy_names, self._keys)
        for seg in result.pcaps:
            stats = self.lab.capture_stats(seg)
            if stats.get("dropped"):
                # rule verdicts on an incomplete capture can be false: say so, loudly
                result.expectations.append(ExpectationResult(
                    "run", f"capture {seg}", "the capture is complete", "fail",
                    f"tcpdump dropped {stats['dropped']} of {stats.get('received', '?')} "
                    "frames: findings on this segment may be wrong"))

    def _proxy_names(self, addresses: list[str]) -> list[str]:
        """Proxy names for server addresses (addresses that are no proxy are kept)."""
        lab = self.lab
        assert lab is not None
        names: dict[str, str] = {}
        for spec in self.scenario.proxies:
            for seg in spec.segments:
                names[lab.address(spec.name, seg)] = spec.name
        return sorted({names.get(a, a) for a in addresses})


def default_driver(lab: Lab, scenario: Scenario) -> MachineDriver:
    """Emulated machines in the sim tier, libvirt VMs in the vm tier."""
    if scenario.tier == "vm":
        from harness.builder.vm_driver import VmDriver

        return VmDriver(lab, scenario)
    from harness.builder.sim_driver import SimDriver

    return SimDriver(lab, scenario)
