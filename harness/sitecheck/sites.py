"""Simulated sites for site-check's tests: a scenario's LAN, built, with a host to check from.

A test declares a site as a :class:`~harness.scenario.model.Scenario` (segments,
relays, snooping, site DHCP, Boot Proxies, clusters and machines — see
``fixtures/sites/*.yaml``), and :class:`SiteLab` builds it the way a scenario run does
(lab, Control Plane loaded with the clusters and machines, site DHCP, relays,
snooping, proxies) but powers nothing on. It adds one more host, ``check``, on the
segment the test names: that is where the site engineer's laptop would be plugged in,
and :meth:`SiteLab.run_sitecheck` runs the real ``flexlab site-check`` CLI there.

Usage::

    with SiteLab(load_site("good"), checker_segment="lan") as site:
        run = site.run_sitecheck(["--mac", site.macs["node"][0], "--listen", "2"])
        assert run.result("proxydhcp.offer").verdict == "pass"

Everything started is stopped and the lab removed on every path (a build that fails
halfway included); evidence (component logs, pcaps, each run's report) stays under
``reports/labs/<lab id>/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.builder.runner import ScenarioRunner
from harness.components.controlplane import ControlPlane
from harness.errors import LabError
from harness.lab import Host, HostLink, Lab, Topology
from harness.scenario.loader import load_scenario
from harness.scenario.model import Scenario

SITES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "sites"
CHECKER = "check"
# the "public" names a services site's DNS answers (what nodes fetch from)
PUBLIC_NAMES = ("registry-1.docker.io", "archive.ubuntu.com", "pypi.org")


def load_site(name: str) -> Scenario:
    """The site scenario ``fixtures/sites/<name>.yaml`` (validated like any scenario)."""
    path = SITES_DIR / f"{name}.yaml"
    if not path.exists():
        have = ", ".join(sorted(p.stem for p in SITES_DIR.glob("*.yaml"))) or "none"
        raise LabError(f"no site {name!r} in {SITES_DIR} (have: {have})")
    return load_scenario(path)


@dataclass
class SiteCheckRun:
    """One run of the site-check CLI: exit status, screen output and the JSON report.

    Unpacks as ``rc, stdout, report = site.run_sitecheck(...)``.
    """

    rc: int
    stdout: str
    report: dict[str, Any]
    stderr: str = ""
    argv: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.rc, self.stdout, self.report))

    def results(self, name: str) -> list[dict[str, Any]]:
        """Every result called ``name`` (e.g. one ``proxydhcp.offer`` per probed MAC)."""
        return [r for r in self.report.get("results", []) if r.get("name") == name]

    def result(self, name: str) -> dict[str, Any]:
        """The single result called ``name``; an AssertionError that shows the whole run
        when there is none or several (so a failing test explains itself)."""
        found = self.results(name)
        if len(found) != 1:
            raise AssertionError(f"expected one result {name!r}, found {len(found)}:\n"
                                 + self.explain())
        return found[0]

    def explain(self) -> str:
        """Exit status, the screen, stderr and every result's one-line summary."""
        lines = [f"rc={self.rc} argv={' '.join(self.argv)}", self.stdout, self.stderr]
        lines += [f"{r.get('verdict', '?'):5} {r.get('name')}: {r.get('summary')}"
                  for r in self.report.get("results", [])]
        return "\n".join(lines)


class SiteLab:
    """A scenario's site, built without machines, plus a checker host on one segment.

    Attributes once entered: ``lab`` (the :class:`Lab`), ``runner`` (the
    :class:`ScenarioRunner` that built it: ``runner.proxies``, ``runner.plan``),
    ``cp`` (the Control Plane; ``cp.api`` talks to it), ``checker_host``,
    ``checker_iface`` (its interface name inside its namespace), ``checker_mac``,
    ``checker_address`` (None with ``checker_address=False``) and ``macs`` (scenario
    machine name -> its MACs, registered in the Control Plane but never powered on).
    """

    def __init__(self, scenario: Scenario, *, checker_segment: str,
                 checker_address: bool = True, reports_dir: Path = Path("reports"),
                 services: bool = False) -> None:
        """``services`` makes the Control Plane's host the site's "internet" too: a DNS
        server taking RFC 2136 updates for ``site.test`` and answering :data:`PUBLIC_NAMES`,
        an NTP server on time and web listeners on 80/443/8888; the site DHCP offers the
        DNS and NTP servers (options 6 and 42) as a real site's would."""
        if checker_segment not in {s.name for s in scenario.segments}:
            raise LabError(f"checker segment {checker_segment!r} is not in the site "
                           f"(segments: {', '.join(s.name for s in scenario.segments)})")
        if any(p.name == CHECKER for p in scenario.proxies):
            raise LabError(f"a proxy is called {CHECKER!r}, the checker host's name: rename it")
        self.scenario = scenario
        self.checker_segment = checker_segment
        self.checker_host = CHECKER
        self.runner = ScenarioRunner(scenario, reports_dir=reports_dir)
        site = self.runner.plan
        link = HostLink(checker_segment, address="auto" if checker_address else None)
        topology = Topology(segments=site.topology.segments,
                            hosts=(*site.topology.hosts, Host(CHECKER, (link,))))
        topology.validate()
        self.runner.plan = dataclasses.replace(site, topology=topology)
        self.lab = self.runner.lab = Lab(topology, reports_dir=reports_dir / "labs")
        self.macs: dict[str, list[str]] = {
            m.name: [c.mac for c in site.machines if c.group == m.name]
            for m in scenario.machines}
        self.services = services
        self._runs = 0

    # -- life ---------------------------------------------------------------------------
    def __enter__(self) -> SiteLab:
        self.build()
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def build(self) -> None:
        """Build the lab, load the Control Plane, start the site's servers; on any failure
        remove everything made so far and re-raise."""
        try:
            self.runner.build_lab()
            if self.services:
                self._start_services()
            self.runner.build_site()
        except BaseException:
            with contextlib.suppress(Exception):  # the build error is the one to report
                self.teardown()
            raise

    def _start_services(self) -> None:
        from harness.components.dns_server import BindDns
        from harness.components.fake_ntp import FakeNtp
        from harness.components.web_listeners import WebListeners

        host = self.runner.plan.control_plane.host
        inet = self.lab.address(host, self.checker_segment)
        for comp in (BindDns(self.lab, host, self.checker_segment,
                             {name: inet for name in PUBLIC_NAMES}, update_zone="site.test"),
                     FakeNtp(self.lab, host, 0.0), WebListeners(self.lab, host)):
            self.runner.start(comp)  # stopped by teardown, failure included
        self.runner.extra_dhcp_options = (f"6,{inet}", f"42,{inet}")

    def teardown(self) -> None:
        """Stop the site's servers and the Control Plane, remove the lab (by its id).
        Raises LabError listing whatever could not be removed."""
        self.runner.close()  # every stop is tried; what raised is in stop_errors
        errors, self.runner.stop_errors = self.runner.stop_errors, []
        if errors:
            raise LabError(f"site lab {self.lab.id} teardown: " + "; ".join(errors))

    # -- what tests use -----------------------------------------------------------------
    @property
    def cp(self) -> ControlPlane:
        """The site's Control Plane."""
        if self.runner.cp is None:
            raise LabError("the site is not built: use `with SiteLab(...) as site:`")
        return self.runner.cp

    @property
    def checker_iface(self) -> str:
        """The checker's interface, as site-check's --iface names it."""
        return self.lab.link(CHECKER, self.checker_segment).host_iface

    @property
    def checker_mac(self) -> str:
        """The checker interface's own MAC (site-check's default probe MAC)."""
        return self.lab.link(CHECKER, self.checker_segment).mac

    @property
    def checker_address(self) -> str | None:
        """The checker's static IPv4 address, or None when it has none."""
        info = self.lab.link(CHECKER, self.checker_segment)
        return str(info.address.ip) if info.address is not None else None

    def address(self, host: str, segment: str | None = None) -> str:
        """A site host's address (a proxy's name, ``cp``, ``dhcp0``, ``relay<n>``) on
        ``segment`` (default: the checker's segment)."""
        return self.lab.address(host, segment or self.checker_segment)

    def in_checker(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped to run on the checker host as on a real one: ``ip netns exec``
        also mounts a /sys of the checker's namespace, so /sys/class/net shows the checker's
        own interfaces (plain nsenter --net would show the lab host's)."""
        return ["ip", "netns", "exec", self.lab.ns(CHECKER), *argv]

    def sitecheck_argv(self, args: list[str], out: Path) -> list[str]:
        """The site-check command line for the checker host, writing its reports to
        ``out`` (site-check.html/.json, and result.json for the test)."""
        return [sys.executable, "-m", "harness.cli", "site-check", "--iface",
                self.checker_iface, "--out", str(out), "--json", str(out / "result.json"),
                *args]

    def run_sitecheck(self, args: list[str], *, timeout: float = 120.0) -> SiteCheckRun:
        """Run ``flexlab site-check --iface <checker iface> ARGS`` in the checker's namespace
        and return its exit status, screen and JSON report (kept under the lab's reports)."""
        self._runs += 1
        out = self.lab.reports_dir / f"sitecheck-{self._runs}"
        json_path = out / "result.json"
        argv = self.sitecheck_argv(["-q", *args], out)
        try:
            res = subprocess.run(self.in_checker(argv), capture_output=True, text=True,
                                 timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            said = [o.decode(errors="replace") if isinstance(o, bytes) else o or ""
                    for o in (exc.stdout, exc.stderr)]
            raise LabError(f"site-check ran longer than {timeout:.0f}s: {' '.join(argv)}\n"
                           + "".join(said)) from None
        report: dict[str, Any] = {}
        if json_path.exists():
            report = json.loads(json_path.read_text())
        return SiteCheckRun(res.returncode, res.stdout, report, res.stderr, argv)
