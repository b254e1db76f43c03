"""Requirement 4: DNS — public names resolve, RFC 2136 updates, unique hostnames.

The servers asked are the ones a PXE-booted node will use: those of the site DHCP offer
(option 6), unless the user named others. The host's own /etc/resolv.conf is used only
when neither exists, and the evidence says so: a site engineer's laptop often resolves
through a VPN or a local cache that the nodes will never see.

An RFC 2136 update (a TXT record ``flexlab-sitecheck-<random>.<zone>``, deleted again on
every path) shows whether KubeFlex can register node names in the site's DNS. A refusal
is a WARN, not a FAIL: the guide's alternative is to delegate a subdomain to a DNS server
that KubeFlex ships itself.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import httpx

from harness import env
from harness.sitecheck.model import CheckResult, CheckVerdict, SiteCheckError, SiteContext
from harness.sitecheck.ports_check import (
    CP_TOKEN_ENV,
    control_plane_get,
    show_server,
    split_server,
)

QUERY_TIMEOUT = 2.0
TSIG_ENV = "FLEXLAB_DNS_TSIG"   # "keyname:base64secret[:algorithm]" for a signed update
# what KubeFlex nodes fetch from outside while they install (container images, OS
# packages, Python packages); the Control Plane's own host name is added when it is one
DEFAULT_PUBLIC_NAMES = ("registry-1.docker.io", "archive.ubuntu.com", "pypi.org")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
# a server that timed out this many names in a row is reported once and not asked again
_MAX_TIMEOUTS = 2


def resolv_conf_servers(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The ``nameserver`` lines of a resolv.conf (empty when unreadable)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1].split("%")[0])
    return out


def dns_servers(ctx: SiteContext) -> tuple[list[str], str]:
    """The servers to ask and a phrase saying where they came from."""
    if ctx.options.dns_servers:
        return list(ctx.options.dns_servers), "--dns-server"
    if ctx.facts.dns_servers:
        return list(ctx.facts.dns_servers), "the site DHCP offer (option 6)"
    fallback = resolv_conf_servers()
    return fallback, ("/etc/resolv.conf of this host (the site DHCP offer named no DNS "
                      "server: nodes will have none unless option 6 is added)")


def _ask(server: str, name: str, rdtype: str, timeout: float = QUERY_TIMEOUT
         ) -> tuple[str, list[str]]:
    """One query: (outcome, addresses) with outcome NOERROR|NODATA|NXDOMAIN|SERVFAIL|…|
    TIMEOUT|ERROR:<text>."""
    host, port = split_server(server, 53)
    query = dns.message.make_query(name, rdtype)
    try:
        answer = dns.query.udp(query, host, port=port, timeout=timeout)
        if answer.flags & dns.flags.TC:
            answer = dns.query.tcp(query, host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return "TIMEOUT", []
    except (OSError, dns.exception.DNSException) as exc:
        return f"ERROR:{exc}", []
    rcode = dns.rcode.to_text(answer.rcode())
    if rcode != "NOERROR":
        return rcode, []
    want = dns.rdatatype.from_text(rdtype)
    found = [rd.to_text() for rrset in answer.answer if rrset.rdtype == want for rd in rrset]
    return ("NOERROR", found) if found else ("NODATA", [])


def resolve(server: str, name: str) -> tuple[bool, str]:
    """Does ``name`` resolve (A, else AAAA) via ``server``? (ok, evidence fragment)."""
    outcome, addrs = _ask(server, name, "A")
    if addrs:
        return True, f"A {', '.join(addrs[:3])}"
    if outcome == "NODATA":
        outcome6, addrs6 = _ask(server, name, "AAAA")
        if addrs6:
            return True, f"AAAA {', '.join(addrs6[:3])}"
        outcome = f"A NODATA, AAAA {outcome6}"
    if outcome == "TIMEOUT":
        return False, f"timeout after {QUERY_TIMEOUT:g} s"
    return False, outcome.removeprefix("ERROR:")


def public_names(ctx: SiteContext) -> list[str]:
    """The names to resolve: the user's list, or the defaults plus the CP's host name."""
    if ctx.options.public_names:
        return list(ctx.options.public_names)
    names = list(DEFAULT_PUBLIC_NAMES)
    if ctx.options.control_plane:
        from urllib.parse import urlsplit

        host = urlsplit(ctx.options.control_plane).hostname or ""
        if host and not _IPV4.match(host) and ":" not in host:
            names.insert(0, host)
    return names


def _public_result(ctx: SiteContext, servers: list[str], source: str) -> CheckResult:
    names = public_names(ctx)
    evidence = [f"servers from {source}: {', '.join(servers) or 'none'}"]
    if not servers:
        return CheckResult("dns", "dns.public", CheckVerdict.FAIL, "no DNS server known",
                           evidence, hint="offer DNS servers in DHCP option 6")
    failed: dict[str, list[str]] = {}      # name -> servers where it failed
    why: dict[str, str] = {}               # name -> the first failure's rcode/timeout
    for server in servers:
        shown = show_server(*split_server(server, 53), 53)
        timeouts = 0
        for name in names:
            if timeouts >= _MAX_TIMEOUTS:
                evidence.append(f"{shown}: {name}: not asked (server timed out "
                                f"{_MAX_TIMEOUTS} times)")
                failed.setdefault(name, []).append(server)
                why.setdefault(name, "timeout")
                continue
            ok, detail = resolve(server, name)
            timeouts = timeouts + 1 if detail.startswith("timeout") else 0
            evidence.append(f"{shown}: {name}: {detail}")
            if not ok:
                failed.setdefault(name, []).append(server)
                why.setdefault(name, detail)
    data = {"servers": servers, "names": names, "failed": failed}
    nowhere = [n for n, where in failed.items() if len(where) == len(servers)]
    if nowhere:
        return CheckResult(
            "dns", "dns.public", CheckVerdict.FAIL,
            f"{len(nowhere)} of {len(names)} names do not resolve: "
            + ", ".join(f"{n} ({why[n]})" for n in nowhere),
            evidence, data=data,
            hint="the site's DNS servers must resolve public names (recursion or forwarding "
                 "to the internet); nodes pull images and packages by name")
    if failed:
        return CheckResult(
            "dns", "dns.public", CheckVerdict.WARN,
            "some servers fail some names: " + "; ".join(
                f"{n} via {', '.join(w)}" for n, w in failed.items()),
            evidence, data=data,
            hint="a node that uses the failing server will not resolve these: fix it or "
                 "remove it from DHCP option 6")
    return CheckResult("dns", "dns.public", CheckVerdict.PASS,
                       f"{len(names)} public names resolve via {len(servers)} server(s)",
                       evidence, data=data)


def _tsig() -> dict[str, Any]:
    """Keyword arguments for a TSIG-signed update from $FLEXLAB_DNS_TSIG, or none."""
    spec = os.environ.get(TSIG_ENV)
    if not spec:
        return {}
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise SiteCheckError(f"{TSIG_ENV} must be keyname:base64secret[:algorithm], "
                             f"e.g. flexlab-key:c2VjcmV0:hmac-sha256")
    algorithm = parts[2] if len(parts) == 3 else "hmac-sha256"
    try:
        keyring = dns.tsigkeyring.from_text({parts[0]: (algorithm, parts[1])})
    except (ValueError, dns.exception.DNSException) as exc:
        raise SiteCheckError(f"{TSIG_ENV}: {exc} (want keyname:base64secret[:algorithm])"
                             ) from exc
    return {"keyring": keyring, "keyname": parts[0]}


def _send_update(update: dns.update.UpdateMessage, host: str, port: int) -> str:
    """Send an UPDATE (UDP, TCP when truncated) and return its rcode text or TIMEOUT."""
    try:
        answer = dns.query.udp(update, host, port=port, timeout=QUERY_TIMEOUT)
        if answer.flags & dns.flags.TC:
            answer = dns.query.tcp(update, host, port=port, timeout=QUERY_TIMEOUT)
    except dns.exception.Timeout:
        return "TIMEOUT"
    except (OSError, dns.exception.DNSException) as exc:
        return f"ERROR:{exc}"
    return str(dns.rcode.to_text(answer.rcode()))


def _rfc2136_result(ctx: SiteContext, servers: list[str]) -> CheckResult:
    zone = ctx.options.dns_update_zone
    if not zone:
        return CheckResult("dns", "dns.rfc2136", CheckVerdict.SKIP,
                           "no zone given (--dns-update-zone)")
    server = ctx.options.dns_update_server or (servers[0] if servers else None)
    if server is None:
        # a zone was named, so the update was asked for: not checked is INCOMPLETE
        return CheckResult("dns", "dns.rfc2136", CheckVerdict.INCOMPLETE,
                           "could not run: no DNS server to send the update to",
                           hint="name one with --dns-update-server (or --dns-server)")
    host, port = split_server(server, 53)
    shown = show_server(host, port, 53)
    origin = dns.name.from_text(zone)
    zone_text = origin.to_text(omit_final_dot=True)
    label = f"flexlab-sitecheck-{secrets.token_hex(4)}"
    fqdn = dns.name.from_text(label, origin)
    token = secrets.token_hex(8)
    try:
        tsig = _tsig()
    except SiteCheckError as exc:
        return CheckResult("dns", "dns.rfc2136", CheckVerdict.INCOMPLETE, f"could not run: {exc}",
                           hint=f"fix or unset {TSIG_ENV}")
    evidence = [f"UPDATE zone {zone_text} at {shown}: add {fqdn} 60 TXT \"{token}\""
                + (f" (TSIG key {tsig['keyname']})" if tsig else "")]
    add = dns.update.UpdateMessage(origin, **tsig)
    add.add(fqdn, 60, "TXT", f'"{token}"')
    rcode = "TIMEOUT"
    try:
        rcode = _send_update(add, host, port)
        evidence.append(f"add → {rcode.removeprefix('ERROR:')}")
        seen = False
        if rcode == "NOERROR":
            outcome, records = _ask(server, fqdn.to_text(), "TXT")
            seen = any(token in r for r in records)
            evidence.append(f"query {fqdn} TXT → {outcome} {' '.join(records)}".rstrip())
    finally:
        if rcode in ("NOERROR", "TIMEOUT"):
            # a timed-out add may still have been applied: delete on that path too
            delete = dns.update.UpdateMessage(origin, **tsig)
            delete.delete(fqdn)
            evidence.append(f"delete {fqdn} → {_send_update(delete, host, port)}")
    data = {"zone": zone_text, "server": server,
            "record": fqdn.to_text(omit_final_dot=True), "rcode": rcode}
    if rcode == "NOERROR" and seen:
        return CheckResult("dns", "dns.rfc2136", CheckVerdict.PASS,
                           f"{shown} accepts RFC 2136 updates in {zone_text}", evidence, data=data)
    if rcode == "NOERROR":
        return CheckResult(
            "dns", "dns.rfc2136", CheckVerdict.WARN,
            f"{shown} accepted the update but does not serve the record", evidence, data=data,
            hint="the update went to a server that does not answer for the zone (a secondary "
                 "forwarding updates?): name the primary with --dns-update-server")
    shown_rcode = "timeout" if rcode == "TIMEOUT" else rcode.removeprefix("ERROR:")
    return CheckResult(
        "dns", "dns.rfc2136", CheckVerdict.WARN,
        f"{shown} does not accept RFC 2136 updates in {zone_text} ({shown_rcode})",
        evidence, data=data,
        hint=f"allow dynamic updates for {zone_text} from the Boot Proxy host (with a TSIG key: "
             f"{TSIG_ENV}), or delegate a subdomain to the DNS server KubeFlex ships")


def is_hostname(name: str) -> bool:
    """A valid host name: dot-separated DNS labels (RFC 1123), at most 253 characters."""
    name = name.rstrip(".")
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def _control_plane_hostnames(url: str, evidence: list[str]) -> list[str] | None:
    """Hostnames of the Control Plane's machines, or None (with evidence) when unreadable."""
    token = env.read(CP_TOKEN_ENV)  # FLEXLAB_CP_TOKEN, the older name, too
    if not token:
        evidence.append(f"Control Plane machines not read: no admin token in ${CP_TOKEN_ENV}")
        return []
    try:
        response, _, _ = control_plane_get(url, "/api/v1/machines", token=token)
    except httpx.HTTPError as exc:
        evidence.append(f"GET {url.rstrip('/')}/api/v1/machines: {exc}")
        return None
    if response.status_code != 200:
        evidence.append(f"GET {url.rstrip('/')}/api/v1/machines → {response.status_code}: "
                        f"{response.text[:200]}")
        return None
    try:
        machines = response.json()
        names = [str(m["hostname"]) for m in machines if m.get("hostname")]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        evidence.append(f"unexpected /api/v1/machines answer: {exc}")
        return None
    evidence.append(f"{len(names)} hostnames from the Control Plane's machines")
    return names


def _hostnames_result(ctx: SiteContext) -> CheckResult:
    evidence: list[str] = []
    named = [(h, "--hostname") for h in ctx.options.hostnames]
    cp_failed = False
    if ctx.options.control_plane and ctx.options.passive:
        evidence.append("passive mode: the Control Plane's machines were not read")
    elif ctx.options.control_plane:
        from_cp = _control_plane_hostnames(ctx.options.control_plane, evidence)
        cp_failed = from_cp is None
        named += [(h, "Control Plane") for h in from_cp or []]
    if not named:
        if cp_failed:
            return CheckResult("dns", "dns.hostnames", CheckVerdict.WARN,
                               "could not read the Control Plane's machines", evidence,
                               hint=f"check --control-plane and the admin token in "
                                    f"${CP_TOKEN_ENV}")
        return CheckResult("dns", "dns.hostnames", CheckVerdict.SKIP,
                           "no hostnames to check (--hostname, or --control-plane with "
                           f"${CP_TOKEN_ENV})", evidence)
    seen: dict[str, list[str]] = {}
    for name, source in named:
        seen.setdefault(name.rstrip(".").lower(), []).append(f"{name} ({source})")
    duplicates = {k: v for k, v in seen.items() if len(v) > 1}
    invalid = sorted({name for name, _ in named if not is_hostname(name)})
    evidence += [f"duplicate: {', '.join(v)}" for v in duplicates.values()]
    evidence += [f"not a valid DNS name: {name!r}" for name in invalid]
    data = {"count": len(named), "duplicates": sorted(duplicates), "invalid": invalid}
    if duplicates:
        return CheckResult(
            "dns", "dns.hostnames", CheckVerdict.FAIL,
            f"duplicate hostnames (case-insensitive): {', '.join(sorted(duplicates))}",
            evidence, data=data,
            hint="every node needs a unique hostname on the site: rename the duplicates")
    if invalid:
        return CheckResult(
            "dns", "dns.hostnames", CheckVerdict.WARN,
            f"not valid DNS names: {', '.join(invalid)}", evidence, data=data,
            hint="use letters, digits and '-' only, 1-63 per label, not starting or ending "
                 "with '-'")
    verdict = CheckVerdict.WARN if cp_failed else CheckVerdict.PASS
    summary = f"{len(named)} hostnames, all unique and valid"
    if cp_failed:
        summary += " (but the Control Plane's machines could not be read)"
    return CheckResult("dns", "dns.hostnames", verdict, summary, evidence, data=data)


def check_dns(ctx: SiteContext) -> list[CheckResult]:
    """Public names via the site's DNS servers, an RFC 2136 update when a zone is given,
    and hostname uniqueness (the hostname check sends nothing, so it runs when passive)."""
    started = time.monotonic()
    if ctx.options.passive:
        results = [CheckResult("dns", "dns.public", CheckVerdict.SKIP,
                               "passive mode: no DNS query sent"),
                   CheckResult("dns", "dns.rfc2136", CheckVerdict.SKIP,
                               "passive mode: no update sent")]
    else:
        servers, source = dns_servers(ctx)
        ctx.log.append(f"dns: servers {servers} from {source}")
        results = [_public_result(ctx, servers, source), _rfc2136_result(ctx, servers)]
    results.append(_hostnames_result(ctx))
    ctx.log.append(f"dns: {time.monotonic() - started:.1f} s")
    return results
