"""Requirement 5: an NTP server is reachable and the local clock is within 1 s of it.

The Control Plane rejects a node whose clock differs from its own by more than 1 s
(docs/CONTROLPLANE-API.md), and nodes set their clock from the NTP servers the site DHCP
offers (option 42). So the servers checked are those from the offer unless the user
named others, each asked once (ntplib, ~2 s timeout). With ``--control-plane`` the CP's
own clock (GET /api/v1/time) is compared as well: a CP that disagrees with the site's
NTP rejects every node that synced correctly.
"""

from __future__ import annotations

import socket

import httpx
import ntplib

from harness.sitecheck.model import CheckResult, CheckVerdict, SiteContext
from harness.sitecheck.ports_check import control_plane_get, show_server, split_server

NTP_TIMEOUT = 2.0
MAX_OFFSET = 1.0   # seconds; the Control Plane's registration limit


def describe_offset(offset: float, server: str) -> str:
    """``offset`` (server - local, seconds) as a sentence about the local clock."""
    if offset >= 0:
        return f"local clock {offset:.2f} s behind {server}"
    return f"local clock {-offset:.2f} s ahead of {server}"


def query_ntp(server: str, timeout: float = NTP_TIMEOUT) -> tuple[float | None, str]:
    """Ask ``server`` ("host" or "host:port") once; (offset or None, evidence line)."""
    host, port = split_server(server, 123)
    shown = show_server(host, port, 123)
    try:
        stats = ntplib.NTPClient().request(host, version=4, port=port, timeout=timeout)
    except ntplib.NTPException as exc:
        return None, f"{shown}: no answer within {timeout:g} s ({exc})"
    except (OSError, socket.gaierror) as exc:
        return None, f"{shown}: {exc}"
    line = (f"{shown}: offset {stats.offset:+.3f} s, delay {stats.delay * 1000:.1f} ms, "
            f"stratum {stats.stratum}, {describe_offset(stats.offset, shown)}")
    if stats.leap == 3 or stats.stratum == 0 or stats.stratum >= 16:
        # an unsynchronised server (RFC 5905 §7.3): its time means nothing
        return None, f"{shown}: answers but is not synchronised (stratum {stats.stratum}, " \
                     f"leap {stats.leap})"
    return float(stats.offset), line


def _ntp_servers(ctx: SiteContext) -> tuple[list[str], str]:
    if ctx.options.ntp_servers:
        return list(ctx.options.ntp_servers), "--ntp"
    if ctx.facts.ntp_servers:
        return list(ctx.facts.ntp_servers), "the site DHCP offer (option 42)"
    return [], ""


def _ntp_result(ctx: SiteContext) -> tuple[CheckResult, float | None, str | None]:
    """The NTP verdict plus the first good offset and its server (for the CP comparison)."""
    servers, source = _ntp_servers(ctx)
    if not servers:
        return CheckResult(
            "time", "time.ntp", CheckVerdict.WARN, "no NTP server known (DHCP option 42 or --ntp)",
            ["the site DHCP offer carried no option 42 and no --ntp was given"],
            hint="have the site DHCP server offer option 42 (NTP servers) so nodes set their "
                 "clock, or name the server with --ntp"), None, None
    evidence = [f"servers from {source}: {', '.join(servers)}"]
    offsets: dict[str, float] = {}
    silent: list[str] = []
    for server in servers:
        offset, line = query_ntp(server)
        evidence.append(line)
        if offset is None:
            silent.append(server)
        else:
            offsets[server] = offset
    data = {"servers": servers, "offsets": offsets, "unreachable": silent}
    if not offsets:
        return CheckResult(
            "time", "time.ntp", CheckVerdict.FAIL,
            f"no NTP server answered ({', '.join(silent)})", evidence, data=data,
            hint="allow UDP 123 from this LAN to the NTP servers, or offer reachable ones "
                 "in DHCP option 42"), None, None
    first_server, first_offset = next(iter(offsets.items()))
    off = {s: o for s, o in offsets.items() if abs(o) > MAX_OFFSET}
    if off:
        worst_server = max(off, key=lambda s: abs(off[s]))
        return CheckResult(
            "time", "time.ntp", CheckVerdict.FAIL,
            describe_offset(off[worst_server], worst_server) + f" (limit {MAX_OFFSET:g} s)",
            evidence, data=data,
            hint="sync this host's clock (chrony/systemd-timesyncd) to the site NTP server; "
                 "if this host is synced, the NTP server itself is wrong: nodes synced to it "
                 "will be rejected by the Control Plane"), first_offset, first_server
    if silent:
        return CheckResult(
            "time", "time.ntp", CheckVerdict.WARN,
            f"clock within {MAX_OFFSET:g} s, but {', '.join(silent)} did not answer",
            evidence, data=data,
            hint="remove unreachable servers from DHCP option 42 or allow UDP 123 to them"
        ), first_offset, first_server
    return CheckResult(
        "time", "time.ntp", CheckVerdict.PASS,
        f"{describe_offset(first_offset, first_server)} (within {MAX_OFFSET:g} s)",
        evidence, data=data), first_offset, first_server


def _control_plane_result(url: str, ntp_offset: float | None,
                          ntp_server: str | None) -> CheckResult:
    try:
        response, sent, received = control_plane_get(url, "/api/v1/time")
        response.raise_for_status()
        cp_unix = float(response.json()["unix"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return CheckResult("time", "time.controlplane", CheckVerdict.WARN,
                           "could not read the Control Plane's clock",
                           [f"GET {url.rstrip('/')}/api/v1/time: {exc}"],
                           hint="check the Control Plane URL; the outbound check says more")
    # the CP read its clock somewhere between sent and received
    cp_vs_local = cp_unix - (sent + received) / 2
    spread = (received - sent) / 2
    evidence = [f"Control Plane clock {cp_unix:.3f}, local {(sent + received) / 2:.3f} "
                f"(±{spread * 1000:.0f} ms round trip): CP {cp_vs_local:+.3f} s vs local"]
    skew = cp_vs_local
    reference = "this host"
    if ntp_offset is not None and ntp_server is not None:
        # NTP time = local + ntp_offset, so CP - NTP = (CP - local) - ntp_offset
        skew = cp_vs_local - ntp_offset
        reference = f"NTP {ntp_server}"
        evidence.append(f"CP {skew:+.3f} s vs {reference}")
    data = {"cp_vs_local": round(cp_vs_local, 4), "cp_vs_reference": round(skew, 4),
            "reference": reference}
    if abs(skew) > MAX_OFFSET:
        return CheckResult(
            "time", "time.controlplane", CheckVerdict.WARN,
            f"the Control Plane's clock is {abs(skew):.2f} s "
            f"{'ahead of' if skew > 0 else 'behind'} {reference}", evidence, data=data,
            hint="nodes sync to the site's NTP and the Control Plane rejects clocks more than "
                 "1 s from its own: sync the Control Plane and the site to the same time")
    return CheckResult("time", "time.controlplane", CheckVerdict.PASS,
                       f"the Control Plane's clock is within {MAX_OFFSET:g} s of {reference}",
                       evidence, data=data)


def check_time(ctx: SiteContext) -> list[CheckResult]:
    """NTP reachability and the local clock's offset; the CP's clock when a URL is given."""
    if ctx.options.passive:
        return [CheckResult("time", "time.ntp", CheckVerdict.SKIP,
                            "passive mode: no NTP request sent")]
    result, offset, server = _ntp_result(ctx)
    results = [result]
    if ctx.options.control_plane:
        results.append(_control_plane_result(ctx.options.control_plane, offset, server))
    return results
