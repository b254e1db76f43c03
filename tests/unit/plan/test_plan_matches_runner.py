"""Every scenario's plan equals what today's imperative runner wires.

The runner's own site code (``_start_control_plane``, ``_start_site``, ``plans``,
``rule_context``) runs against recording fakes: a lab whose addresses are
``host@segment``, components that only record their arguments, a Control Plane client
that records calls. What it wired is then compared with the plan, resolved the way a
builder will resolve it. When the builder replaces runner.py, this module goes with it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

import harness.builder.runner as runner_module
from harness.builder.runner import ScenarioRunner
from harness.components.container import DEFAULT_IMAGE
from harness.plan import SitePlan, plan
from harness.plan.items import HostOn
from harness.scenario.loader import load_scenario, parse_scenario
from harness.scenario.model import Scenario
from harness.scenario.topology import layout_for

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = sorted([*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("scenarios/vm/*.yaml")])
# site-check's simulated sites are built by the same runner code (harness.sitecheck.sites)
SITES = sorted(ROOT.glob("fixtures/sites/*.yaml"))
# what no file combines yet: a relayed snooping segment, a proxy on two segments, a vm-tier
# process proxy, two site DHCP servers, a by-step proxy, a misconfigured site server
WIDE = """
name: wide
tier: {tier}
segments:
  - {{name: core}}
  - {{name: lan, relay: {{upstream: core}}, snooping: {{trusted: [site-dhcp, bp2]}}}}
  - {{name: edge, snooping: {{trusted: [bp1]}}, ipv6_ra: false}}
site_dhcp:
  - {{segment: core}}
  - {{segment: edge, sends_pxeclient: true}}
proxies:
  - {{name: bp1, segments: [core, edge], clusters: [alpha]}}
  - {{name: bp2, segments: [lan], clusters: [beta], start: by-step}}
clusters: [{{name: alpha, expected_nodes: 5}}, {{name: beta}}]
machines:
  - {{name: a, segment: lan, cluster: alpha, count: 3}}
  - {{name: b, segment: edge, cluster: beta, role: control-plane}}
  - {{name: s, segment: edge}}
steps:
  - {{at: 0, action: power_on, machines: [a, b, s]}}
  - {{at: 0, action: start_proxy, proxy: bp2}}
  - {{at: 2, action: cut_link, host: site-dhcp, segment: edge}}
"""


def address(host: str, segment: str) -> str:
    """The fake lab's address of a host on a segment."""
    return f"{host}@{segment}"


class FakeLab:
    """What the runner asks of a lab while wiring, answered without namespaces."""

    def __init__(self, scenario: Scenario) -> None:
        layout = layout_for(scenario)
        self.nets = {s.name: ipaddress.IPv4Network(f"10.{i}.0.0/{s.prefixlen}")
                     for i, s in enumerate(layout.topology.segments)}
        self.subnets = {seg: f"net:{seg}" for seg in self.nets}
        self.routes: list[tuple[str, str, str]] = []

    def address(self, host: str, segment: str) -> str:
        return address(host, segment)

    def dhcp_pool(self, segment: str) -> tuple[str, str]:
        net = self.nets[segment]
        count = net.num_addresses - 2
        first = net.network_address + 1
        return str(first + count // 2), str(first + count - 1)

    def add_route(self, host: str, destination: str, via: str) -> None:
        self.routes.append((host, destination, via))


class FakeApi:
    """Records the Control Plane calls; answers what the runner reads back."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.assigned: dict[str, list[str]] = {}

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            if name == "create_machine":
                self.assigned.setdefault(args[1], []).append(args[0])
            if name == "register_proxy":
                return f"token-{args[0]}"
            return None
        return call

    def machines(self, cluster: str) -> list[dict[str, str]]:
        return [{"mac": mac} for mac in self.assigned.get(cluster, [])]

    def made(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(a, k) for n, a, k in self.calls if n == name]


class FakeCp:
    """The Control Plane component: an API and a URL per segment."""

    def __init__(self, lab: Any, host: str, *, tls: bool) -> None:
        self.host, self.tls, self.api = host, tls, FakeApi()

    def start(self) -> None:
        pass

    def wait_ready(self) -> None:
        pass

    def url(self, segment: str) -> str:
        return cp_url(HostOn(self.host, segment))


def cp_url(at: HostOn) -> str:
    """The fake Control Plane URL of an address."""
    return f"http://{at.address(address)}:8000"


class Recorder:
    """A component class stand-in: each construction is recorded with its kind."""

    def __init__(self, kind: str, made: list[tuple[str, tuple[Any, ...], dict[str, Any]]]):
        self.kind, self.made = kind, made

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.made.append((self.kind, args, kwargs))
        return self

    def start(self) -> None:
        pass

    def wait_ready(self) -> None:
        pass


def wire(monkeypatch: pytest.MonkeyPatch, scenario: Scenario,
         image: str | None = None) -> tuple[ScenarioRunner, FakeLab, list[Any]]:
    """Run the runner's wiring code on fakes; return it, its lab and what it made."""
    made: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for name, kind in (("SiteDhcp", "dhcp"), ("DhcpRelay", "relay"), ("BootProxy", "process"),
                       ("BootProxyContainer", "container"), ("DnsmasqProxy", "dnsmasq")):
        monkeypatch.setattr(runner_module, name, Recorder(kind, made))
    monkeypatch.setattr(runner_module, "ControlPlane", FakeCp)
    monkeypatch.setattr(runner_module, "enable_snooping",
                        lambda lab, seg, trusted: made.append(("snooping", (seg, trusted), {})))
    runner = ScenarioRunner(scenario, boot_proxy_image=image)
    lab = FakeLab(scenario)
    runner.lab = lab  # type: ignore[assignment]
    monkeypatch.setattr(runner, "_boot_artifacts", lambda: (b"kernel", b"initrd"))
    runner._start_control_plane()
    runner._start_site()
    return runner, lab, made


def _load(case: Path | str) -> Scenario:
    if isinstance(case, Path):
        return load_scenario(case)
    return parse_scenario(WIDE.format(tier=case))


def of_kind(made: list[Any], *kinds: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    return [m for m in made if m[0] in kinds]


@pytest.mark.parametrize("path", SCENARIOS + SITES, ids=lambda p: p.stem)
def test_topology_and_roles_equal_layout_for(path: Path) -> None:
    scenario = load_scenario(path)
    site, layout = plan(scenario), layout_for(scenario)
    assert site.topology == layout.topology
    assert site.control_plane.host == layout.cp_host
    assert site.control_plane.segments == tuple(s.name for s in layout.topology.segments)
    assert {d.host for d in site.dhcp_servers} == set(layout.dhcp_hosts.values())
    assert {r.downstream: r.host for r in site.relays} == layout.relay_hosts
    assert dict(site.machine_hosts) == layout.machine_hosts


def _check_seed(site: SitePlan, api: FakeApi) -> None:
    seed = site.seed
    assert [(a, k) for a, k in api.made("create_cluster")] == [
        ((c.name, c.expected_nodes), {"mode": c.mode, "environment": c.environment})
        for c in seed.clusters]
    profiles = api.made("create_profile")
    if seed.profile is None:
        assert profiles == []
    else:
        p = seed.profile
        assert profiles == [((p.name, p.kernel, p.initrd, p.cmdline), {})]
        assert p.cmdline == runner_module.CMDLINE
    assert api.made("create_machine") == [
        ((m.mac, m.cluster, m.key, m.profile), {"role": m.role}) for m in seed.machines]
    assert api.made("register_proxy") == [
        ((p.name, list(p.clusters)), {"segments": list(p.segments)}) for p in seed.proxies]
    assert api.made("set_fault") == [
        ((f.endpoint,), {"latency_ms": f.latency_ms, "error_rate": f.error_rate,
                         "down": f.down, "wrong_answer": f.wrong_answer}) for f in seed.faults]


def _check_dhcp(site: SitePlan, lab: FakeLab, made: list[Any]) -> None:
    wired = of_kind(made, "dhcp")
    assert len(wired) == len(site.dhcp_servers)
    for (_, args, kw), d in zip(wired, site.dhcp_servers, strict=True):
        assert args[1:] == (d.host, d.segment)
        assert kw["name"] == d.name
        assert kw["force_options"] == d.forced_options
        assert kw["relayed_segments"] == tuple(r.segment for r in d.relayed)
        assert kw["relay_routers"] == {r.segment: r.router.address(address) for r in d.relayed}
        leases: dict[str, str] = {}
        for pool in d.reserved:
            leases.update(pool.leases(lab.dhcp_pool(pool.segment)[0]))
        assert kw["reservations"] == (leases or None)


def _check_relays(site: SitePlan, lab: FakeLab, made: list[Any]) -> None:
    wired = of_kind(made, "relay")
    assert [args[1:] for _, args, _ in wired] == [
        (r.host, r.downstream, r.upstream, [s.address(address) for s in r.servers])
        for r in site.relays]
    assert lab.routes == [(route.host, lab.subnets[route.segment], route.via.address(address))
                          for r in site.relays for route in r.routes]


def _check_proxies(site: SitePlan, runner: ScenarioRunner, made: list[Any]) -> None:
    wired = {args[1]: (kind, args, kw)
             for kind, args, kw in of_kind(made, "process", "container", "dnsmasq")}
    started = [p for p in site.proxies if p.start == "at-start"]
    assert sorted(wired) == sorted(p.name for p in started)
    for p in started:
        kind, args, kw = wired[p.name]
        assert kind == p.kind, p.name
        if kind == "dnsmasq":
            assert args[2] == p.segments[0]
            assert kw["served_macs"] == p.served_macs
            continue
        assert list(args[2]) == list(p.segments)
        assert kw["cp_url"] == cp_url(p.cp_via)
        assert kw["cp_token"] == runner.proxy_tokens[p.name]
        if kind == "container":
            assert kw["image"] == (p.image or DEFAULT_IMAGE)


@pytest.mark.parametrize("path", [*SCENARIOS, *SITES, "sim", "vm"],
                         ids=lambda p: p.stem if isinstance(p, Path) else f"wide-{p}")
def test_plan_equals_what_the_runner_wires(monkeypatch: pytest.MonkeyPatch,
                                           path: Path | str) -> None:
    scenario = _load(path)
    site = plan(scenario)
    runner, lab, made = wire(monkeypatch, scenario)
    assert runner.cp is not None
    _check_seed(site, runner.cp.api)
    _check_dhcp(site, lab, made)
    _check_relays(site, lab, made)
    assert [args for kind, args, _ in made if kind == "snooping"] == [
        (s.segment, list(s.trusted)) for s in site.snooping]
    _check_proxies(site, runner, made)
    assert runner.plans() == [c.driver_plan(cp_url(c.cp_via)) for c in site.machines]
    assert runner.rule_context() == site.rule_inputs.context(address)
    assert [s.step for s in site.steps] == sorted(scenario.steps, key=lambda s: s.at)
    for step in site.steps:
        named = getattr(step.step, "machines", [])  # only power steps name machines
        assert list(step.keys) == [k for n in named for k in runner._keys(n)]
    for m in scenario.machines:
        assert site.keys(m.name) == runner._keys(m.name)


@pytest.mark.parametrize("path", [p for p in SCENARIOS if p.stem in ("smoke", "relay")],
                         ids=lambda p: p.stem)
def test_run_image_makes_containers_as_the_runner_does(monkeypatch: pytest.MonkeyPatch,
                                                       path: Path) -> None:
    scenario = load_scenario(path)
    site = plan(scenario, boot_proxy_image="example/proxy:1")
    runner, _, made = wire(monkeypatch, scenario, image="example/proxy:1")
    assert {p.kind for p in site.proxies} == {"container"}
    _check_proxies(site, runner, made)
