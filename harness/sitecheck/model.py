"""The shared vocabulary of ``flexlab site-check``: what a check returns and what it is given.

Every check is a plain function ``check(ctx: SiteContext) -> list[CheckResult]``. It never
raises for something it found wrong on the site (that is a FAIL with evidence); it raises
:class:`SiteCheckError` only when the check itself cannot run (bad option, no interface,
no privileges), so the user learns the difference between "your site is broken" and
"the tool could not look".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import FlexlabError


class SiteCheckError(FlexlabError):
    """The check could not run at all (as opposed to finding a problem on the site)."""


class CheckVerdict(enum.StrEnum):
    """Ordered from best to worst, so the worst verdict of a group is ``max(...)``.

    SKIP and INCOMPLETE differ in who decided: SKIP is a check with nothing to look at
    that the user chose (``--passive``, no zone named); INCOMPLETE is a check that should
    have looked and could not (no privileges, the interface vanished, a bad TSIG key). A
    site with an INCOMPLETE check is not known to pass, so it outranks WARN; a FAIL
    elsewhere still decides the site.
    """

    PASS = "pass"
    SKIP = "skip"   # not checked: passive mode, or nothing to check against (said in summary)
    WARN = "warn"
    INCOMPLETE = "incomplete"   # could not run: raised SiteCheckError, or a part said so
    FAIL = "fail"

    @property
    def rank(self) -> int:
        """Severity, for ``worst()``."""
        return [CheckVerdict.PASS, CheckVerdict.SKIP, CheckVerdict.WARN, CheckVerdict.INCOMPLETE,
                CheckVerdict.FAIL].index(self)


def worst(verdicts: Iterable[CheckVerdict]) -> CheckVerdict:
    """The most severe verdict of a group; PASS for an empty group."""
    return max(verdicts, key=lambda v: v.rank, default=CheckVerdict.PASS)


# The KubeFlex guide's requirements, numbered as in issue #8; every CheckResult names one.
REQUIREMENTS: dict[str, str] = {
    "dhcp": "1. A site DHCP server offers addresses",
    "proxydhcp": "2. ProxyDHCP offers reach the machines (same L2 or DHCP helper)",
    "responders": "3. No rogue or conflicting PXE responders",
    "dns": "4. DNS: public names, RFC 2136 updates, unique hostnames",
    "time": "5. Time: NTP reachable, clock within 1 s",
    "outbound": "6. Outbound HTTP/S on ports 80, 443, 8888",
    "l2": "7. Layer 2: MTU, link, IPv6 router advertisements",
}


@dataclass
class CheckResult:
    """One finding: a verdict, the one-line reason and the evidence behind it.

    ``summary`` is what the one-screen verdict prints; ``evidence`` holds the lines a
    site engineer needs to believe it (who answered, with which options, what timed
    out); ``hint`` says what to change on the site when the verdict is not PASS.
    """

    requirement: str               # a key of REQUIREMENTS
    name: str                      # stable id, e.g. "dhcp.offers", "dns.rfc2136"
    verdict: CheckVerdict
    summary: str
    evidence: list[str] = field(default_factory=list)
    hint: str = ""
    data: dict[str, Any] = field(default_factory=dict)   # machine-readable details (JSON-safe)

    def __post_init__(self) -> None:
        if self.requirement not in REQUIREMENTS:
            raise ValueError(f"unknown requirement {self.requirement!r}")

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for the report files."""
        return {"requirement": self.requirement, "name": self.name,
                "verdict": self.verdict.value, "summary": self.summary,
                "evidence": list(self.evidence), "hint": self.hint, "data": self.data}


@dataclass
class SiteFacts:
    """What earlier checks learned that later ones use (filled by the DHCP probe).

    DNS and NTP servers come from the site DHCP server's offer (options 6 and 42)
    unless the user named them: that is what a PXE-booted node will use.
    """

    dns_servers: list[str] = field(default_factory=list)
    ntp_servers: list[str] = field(default_factory=list)
    domain: str | None = None
    routers: list[str] = field(default_factory=list)
    offered_address: str | None = None
    dhcp_servers: list[str] = field(default_factory=list)


@dataclass
class SiteCheckOptions:
    """Everything the user asked for on the command line, already validated."""

    iface: str
    control_plane: str | None = None        # URL; its host is the outbound-ports target
    serve_macs: list[str] = field(default_factory=list)   # run a Boot Proxy for these MACs
    probe_macs: list[str] = field(default_factory=list)   # probe PXE responders as these MACs
    passive: bool = False                   # only listen; send nothing
    listen_seconds: float = 6.0             # how long to collect answers per probe
    serve_seconds: float = 120.0            # how long --serve watches for machines
    dns_servers: list[str] = field(default_factory=list)
    public_names: list[str] = field(default_factory=list)
    dns_update_zone: str | None = None      # a zone to try an RFC 2136 update in
    dns_update_server: str | None = None
    hostnames: list[str] = field(default_factory=list)
    ntp_servers: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=lambda: [80, 443, 8888])
    port_target: str | None = None          # host to test ports against when no CP URL
    connect_timeout: float = 3.0


@dataclass
class SiteContext:
    """What every check receives: the options, the interface's facts and what was learned."""

    options: SiteCheckOptions
    iface_mac: str
    iface_ipv4: str | None                  # "a.b.c.d/len", None when the iface has none
    facts: SiteFacts = field(default_factory=SiteFacts)
    log: list[str] = field(default_factory=list)   # progress lines, shown live with -v
