"""Run the site checks in order and collect one report.

The order matters: the layer-2 check says whether the link is up at all, the DHCP probe
learns the site's DNS and NTP servers (what a PXE-booted node will use), and the DNS,
time and outbound checks use them. A check that crashes is recorded as a FAIL of that
check ("the check itself failed") and the others still run, so one bug never hides
the rest of the verdict. A check that could not run (it raised SiteCheckError, or this
build lacks it) is INCOMPLETE: the site is then not known to pass, and says so.
"""

from __future__ import annotations

import importlib
import os
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness import __version__
from harness.sitecheck.model import (
    REQUIREMENTS,
    CheckResult,
    CheckVerdict,
    SiteCheckError,
    SiteCheckOptions,
    SiteContext,
    worst,
)

# (module, function, requirement, what the progress line says); run in this order
CHECKS: list[tuple[str, str, str, str]] = [
    ("harness.sitecheck.l2_check", "check_l2", "l2",
     "layer 2: link, MTU, IPv6 router advertisements"),
    ("harness.sitecheck.dhcp_probe", "check_dhcp", "dhcp", "site DHCP: plain DISCOVER"),
    ("harness.sitecheck.dhcp_probe", "check_proxydhcp", "proxydhcp",
     "ProxyDHCP: PXE DISCOVER per MAC"),
    ("harness.sitecheck.serve", "check_serve", "proxydhcp", "Boot Proxy view (--serve)"),
    ("harness.sitecheck.dns_check", "check_dns", "dns", "DNS"),
    ("harness.sitecheck.time_check", "check_time", "time", "time (NTP)"),
    ("harness.sitecheck.ports_check", "check_outbound", "outbound", "outbound ports"),
]

Progress = Callable[[str], None]


@dataclass
class SiteReport:
    """The whole run: where it ran, what was asked, every result."""

    options: SiteCheckOptions
    host: str
    iface_mac: str
    iface_ipv4: str | None
    started: float
    finished: float = 0.0
    results: list[CheckResult] = field(default_factory=list)

    @property
    def overall(self) -> CheckVerdict:
        """FAIL if anything failed, else INCOMPLETE if a check could not run, else WARN if
        anything warned, else PASS (never PASS with a check that could not run)."""
        return worst([r.verdict for r in self.results if r.verdict != CheckVerdict.SKIP])

    def not_run(self) -> list[CheckResult]:
        """The checks that could not run, in order."""
        return [r for r in self.results if r.verdict is CheckVerdict.INCOMPLETE]

    def by_requirement(self) -> dict[str, list[CheckResult]]:
        """Results grouped under the guide's requirements, in the guide's order."""
        out: dict[str, list[CheckResult]] = {key: [] for key in REQUIREMENTS}
        for r in self.results:
            out[r.requirement].append(r)
        return out

    def counts(self) -> dict[str, int]:
        """How many results have each verdict."""
        out = {v.value: 0 for v in CheckVerdict}
        for r in self.results:
            out[r.verdict.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form (report.json)."""
        opts = dict(vars(self.options))
        return {"tool": f"flexlab {__version__}", "host": self.host, "iface": self.options.iface,
                "iface_mac": self.iface_mac, "iface_ipv4": self.iface_ipv4,
                "started": self.started, "finished": self.finished,
                "overall": self.overall.value, "counts": self.counts(),
                "not_run": [r.name for r in self.not_run()], "options": opts,
                "results": [r.to_json() for r in self.results]}


def interface_facts(iface: str) -> tuple[str, str | None]:
    """The interface's MAC and first IPv4 address ("a.b.c.d/len"), or a SiteCheckError
    naming the interfaces that do exist.

    Asked over netlink, not /sys: under ``nsenter --net`` /sys still shows the host's
    interfaces, and the wrong MAC would become the default probe MAC."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=iface)
        if not found:
            have = ", ".join(sorted(str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()))
            raise SiteCheckError(f"no network interface {iface!r} here (have: {have})")
        index = found[0]
        mac = str(ipr.get_links(index)[0].get_attr("IFLA_ADDRESS"))
        for msg in ipr.get_addr(family=socket.AF_INET, index=index):
            addr = msg.get_attr("IFA_ADDRESS")
            if addr:
                return mac, f"{addr}/{msg['prefixlen']}"
    return mac, None


def _check_privileges(options: SiteCheckOptions) -> None:
    # listening (--passive) needs a packet socket too, so root is needed either way
    if os.geteuid() != 0:
        raise SiteCheckError("site-check sends and captures raw DHCP frames: run it as root "
                             "(or with CAP_NET_RAW and CAP_NET_BIND_SERVICE)")


def _load(module: str, func: str) -> Callable[[SiteContext], list[CheckResult]]:
    """The check function; a SiteCheckError when this build does not have it (so the
    requirement is reported as not checked, never silently left out)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise SiteCheckError(f"this flexlab build has no {module}") from None
        raise
    found: Callable[[SiteContext], list[CheckResult]] = getattr(mod, func)
    return found


def could_not_run(requirement: str, what: str, exc: SiteCheckError) -> CheckResult:
    """The result of a check (``what`` it checks) that could not run: INCOMPLETE, with the
    reason."""
    return CheckResult(requirement, f"{requirement}.not-run", CheckVerdict.INCOMPLETE,
                       f"could not run ({what}): {exc}",
                       hint="this requirement was not checked: fix what stopped the check "
                       "and run site-check again")


def run_site_check(options: SiteCheckOptions, progress: Progress | None = None) -> SiteReport:
    """Run every check against ``options.iface`` and return the report (never raises for a
    site problem; raises SiteCheckError when nothing can be checked at all)."""
    say = progress or (lambda line: None)
    _check_privileges(options)
    mac, ipv4 = interface_facts(options.iface)
    ctx = SiteContext(options=options, iface_mac=mac, iface_ipv4=ipv4)
    report = SiteReport(options=options, host=socket.gethostname(), iface_mac=mac,
                        iface_ipv4=ipv4, started=time.time())
    for module, func, req, what in CHECKS:
        say(f"checking {what} …")
        start = time.monotonic()
        try:
            results = _load(module, func)(ctx)
        except SiteCheckError as exc:
            results = [could_not_run(req, what, exc)]
        except Exception as exc:  # a bug in one check must not hide the others' verdicts
            results = [CheckResult(
                req, f"{req}.crashed", CheckVerdict.FAIL,
                f"the check itself failed: {type(exc).__name__}: {exc}",
                evidence=traceback.format_exc().splitlines()[-6:],
                hint="this is a flexlab bug: please report it with site-check.json")]
        for r in results:
            say(f"  {r.verdict.value.upper():4}  {r.name}: {r.summary}")
        say(f"  ({time.monotonic() - start:.1f} s)")
        report.results.extend(results)
    report.finished = time.time()
    return report
