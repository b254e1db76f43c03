"""Requirement 5: an NTP server is reachable and the local clock is within 1 s of it.

The Control Plane rejects a node whose clock differs from its own by more than 1 s
(docs/CONTROLPLANE-API.md), and nodes set their clock from the NTP servers the site DHCP
offers (option 42). So the servers checked are those from the offer unless the user
named others (ntplib, ~2 s timeout). With ``--control-plane`` the CP's
own clock (GET /api/v1/time) is compared as well: a CP that disagrees with the site's
NTP rejects every node that synced correctly.

An NTP offset is exact only when the request and the reply take equally long; in
general the true offset lies within ± half the round-trip delay of the measured one
(RFC 5905 §8). On a loaded host the delay is the time this process waited for the CPU,
not the network: so each server is asked until one answer's round trip is short
(:data:`GOOD_DELAY`, at most :data:`NTP_SAMPLES` answers), the answer with the shortest
round trip counts (NTP's clock filter does the same), and the clock is called off
only when it is off by more than the limit even at the edge of that error bound.
"""

from __future__ import annotations

import socket

import httpx
import ntplib

from harness.sitecheck.model import CheckResult, CheckVerdict, SiteContext
from harness.sitecheck.ports_check import control_plane_get, show_server, split_server

NTP_TIMEOUT = 2.0
MAX_OFFSET = 1.0   # seconds; the Control Plane's registration limit
NTP_SAMPLES = 4    # answers asked of one server at most, for the one with the shortest delay
GOOD_DELAY = 0.05  # seconds of round trip that end the sampling (offset known to ±25 ms)


def describe_offset(offset: float, server: str) -> str:
    """``offset`` (server - local, seconds) as a sentence about the local clock."""
    if offset >= 0:
        return f"local clock {offset:.2f} s behind {server}"
    return f"local clock {-offset:.2f} s ahead of {server}"


def query_ntp(server: str, timeout: float = NTP_TIMEOUT) -> tuple[float | None, str]:
    """Ask ``server`` ("host" or "host:port"); (offset or None, evidence line)."""
    offset, _, line = measure_ntp(server, timeout)
    return offset, line


def measure_ntp(server: str, timeout: float = NTP_TIMEOUT,
                samples: int = NTP_SAMPLES) -> tuple[float | None, float, str]:
    """(offset or None, its round-trip delay, evidence line) of ``server``'s best answer.

    Asks again while the answers' round trips are longer than :data:`GOOD_DELAY`, up to
    ``samples`` answers, and keeps the one with the shortest delay: its offset is the
    nearest to the truth (off by at most half its delay). A server that does not answer
    the first request is not asked again.
    """
    host, port = split_server(server, 123)
    shown = show_server(host, port, 123)
    best: ntplib.NTPStats | None = None
    asked = 0
    while asked < samples and (best is None or best.delay > GOOD_DELAY):
        asked += 1
        try:
            stats = ntplib.NTPClient().request(host, version=4, port=port, timeout=timeout)
        except ntplib.NTPException as exc:
            if best is not None:
                break  # it answered before: keep that answer
            return None, 0.0, f"{shown}: no answer within {timeout:g} s ({exc})"
        except (OSError, socket.gaierror) as exc:
            if best is not None:
                break
            return None, 0.0, f"{shown}: {exc}"
        if best is None or stats.delay < best.delay:
            best = stats
    assert best is not None
    line = (f"{shown}: offset {best.offset:+.3f} s, delay {best.delay * 1000:.1f} ms "
            f"(shortest of {asked} answer{'s' if asked > 1 else ''}), "
            f"stratum {best.stratum}, {describe_offset(best.offset, shown)}")
    if best.leap == 3 or best.stratum == 0 or best.stratum >= 16:
        # an unsynchronised server (RFC 5905 §7.3): its time means nothing
        return None, 0.0, f"{shown}: answers but is not synchronised " \
                          f"(stratum {best.stratum}, leap {best.leap})"
    return float(best.offset), max(0.0, float(best.delay)), line


def surely_off(offset: float, delay: float, limit: float = MAX_OFFSET) -> bool:
    """Whether a clock measured ``offset`` off with round trip ``delay`` is off by more than
    ``limit`` for certain: the true offset lies within ``offset`` ± ``delay`` / 2."""
    return abs(offset) - delay / 2 > limit


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
    delays: dict[str, float] = {}
    silent: list[str] = []
    for server in servers:
        offset, delay, line = measure_ntp(server)
        evidence.append(line)
        if offset is None:
            silent.append(server)
        else:
            offsets[server], delays[server] = offset, delay
    data = {"servers": servers, "offsets": offsets, "delays": delays, "unreachable": silent}
    if not offsets:
        return CheckResult(
            "time", "time.ntp", CheckVerdict.FAIL,
            f"no NTP server answered ({', '.join(silent)})", evidence, data=data,
            hint="allow UDP 123 from this LAN to the NTP servers, or offer reachable ones "
                 "in DHCP option 42"), None, None
    first_server, first_offset = next(iter(offsets.items()))
    off = {s: o for s, o in offsets.items() if surely_off(o, delays[s])}
    unsure = {s: o for s, o in offsets.items() if abs(o) > MAX_OFFSET and s not in off}
    if off:
        worst_server = max(off, key=lambda s: abs(off[s]))
        return CheckResult(
            "time", "time.ntp", CheckVerdict.FAIL,
            describe_offset(off[worst_server], worst_server) + f" (limit {MAX_OFFSET:g} s)",
            evidence, data=data,
            hint="sync this host's clock (chrony/systemd-timesyncd) to the site NTP server; "
                 "if this host is synced, the NTP server itself is wrong: nodes synced to it "
                 "will be rejected by the Control Plane"), first_offset, first_server
    if unsure:
        server = max(unsure, key=lambda s: abs(unsure[s]))
        return CheckResult(
            "time", "time.ntp", CheckVerdict.WARN,
            f"cannot tell whether the clock is within {MAX_OFFSET:g} s: "
            f"{describe_offset(unsure[server], server)} ± {delays[server] / 2:.2f} s "
            f"(round trip {delays[server] * 1000:.0f} ms)", evidence, data=data,
            hint="the NTP answers came back too slowly to measure the offset: run the check "
                 "again on a less loaded host or nearer the NTP server"), first_offset, \
            first_server
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
            "reference": reference, "spread_s": round(spread, 4)}
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
