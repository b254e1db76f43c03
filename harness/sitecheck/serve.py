"""``site-check --serve MACS``: run a Boot Proxy here and watch, from its own side, whether
the named machines' PXE exchange works through this site's network.

A PXE DISCOVER probe from the site engineer's laptop (dhcp_probe) cannot tell "nothing
answered" from "the answer was dropped on the way". The Boot Proxy's host can: it sees the
machine's DISCOVERs arrive, knows it answered, and sees whether the machine then acted on
the answer (a boot-server request on 4011, a TFTP read, an HTTP GET). So this check runs our
Control Plane and Boot Proxy on the interface for exactly the given MACs (harness/localboot.py,
stand-in kernel and initrd: only the network path matters), captures those MACs' DHCP and the
boot services, asks the engineer to power the machines on, and judges each MAC:

- no DISCOVER arrived → FAIL: the machine is off, or no DHCP helper/relay forwards to here;
- the proxy answered and the machine went on → PASS, directly or through relay giaddr X;
- the proxy answered N times but the machine kept re-sending DISCOVERs → FAIL: the reply was
  dropped on the way (DHCP snooping on the Boot Proxy's switch port, typically);
- DISCOVERs arrived but the proxy did not answer → FAIL with the proxy's drop reason.

It watches up to ``options.serve_seconds`` and stops early once every MAC has either gone
on or clearly not (answered at least ``GAVE_UP_AFTER`` times without going on).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.capture.events import Capture
from harness.certify.bpf import boot_filter
from harness.certify.errors import CertifyError
from harness.certify.timings import machine_addresses
from harness.certify.watch import read_capture
from harness.errors import ComponentError, DependencyError, WaitTimeout
from harness.lab.tcpdump import PacketCapture
from harness.localboot import LocalBoot, LocalBootConfig, LocalBootError, stand_in_artifact
from harness.sitecheck.model import CheckResult, CheckVerdict, SiteCheckError, SiteContext

GAVE_UP_AFTER = 3   # DISCOVERs answered with no reaction: the reply is not getting through
POLL_S = 0.5
NAME = "proxydhcp.serve"
SNOOPING_HINT = ("trust the Boot Proxy's switch port for DHCP snooping (or let the site's DHCP "
                 "helper forward to it), and check ACLs between the proxy and the machines")


@dataclass
class MacWatch:
    """What was seen for one MAC, from the capture and the proxy's own log."""

    mac: str
    discovers: int = 0
    discover_giaddrs: set[str] = field(default_factory=set)
    offers_sent: int = 0
    acks_sent: int = 0
    offer_destinations: set[str] = field(default_factory=set)
    drops: dict[str, int] = field(default_factory=dict)
    requests_4011: int = 0
    tftp_reads: list[str] = field(default_factory=list)
    http_gets: list[str] = field(default_factory=list)
    discovers_after_offer: int = 0
    address_offers: int = 0

    @property
    def went_on(self) -> bool:
        """The machine acted on the proxy's answer."""
        return bool(self.requests_4011 or self.acks_sent or self.tftp_reads or self.http_gets)

    @property
    def decided(self) -> bool:
        """Nothing more to learn by waiting: it went on, or clearly will not."""
        return self.went_on or (self.offers_sent > 0
                                and self.discovers_after_offer >= GAVE_UP_AFTER)


def observe(mac: str, capture: Capture | None, proxy_events: list[dict[str, Any]],
            http_port: int, own_ip: str | None = None) -> MacWatch:
    """Combine the capture and the proxy log into one MAC's view.

    Only steps toward *this* host count as going on (``own_ip``, when given): a machine
    that went on with another Boot Proxy did not act on ours."""
    w = MacWatch(mac)
    first_offer: float | None = None
    for rec in proxy_events:
        if rec.get("mac") != mac:
            continue
        event = rec.get("event")
        if event == "dhcp_offer":
            w.offers_sent += 1
            w.offer_destinations.add(str(rec.get("to", "?")))
            if first_offer is None:
                first_offer = float(rec.get("ts", 0.0))
        elif event == "dhcp_ack":
            w.acks_sent += 1
        elif event == "dhcp_drop":
            reason = str(rec.get("reason", "?"))
            w.drops[reason] = w.drops.get(reason, 0) + 1
    if capture is None:
        return w
    discovers = [e for e in capture.dhcp if e.op == 1 and e.chaddr == mac
                 and e.msg_type == "DISCOVER"]
    w.discovers = len(discovers)
    w.discover_giaddrs = {e.giaddr for e in discovers if e.giaddr != "0.0.0.0"}
    if first_offer is not None:
        w.discovers_after_offer = sum(1 for e in discovers if e.time > first_offer)
    def ours(dst: str) -> bool:
        return own_ip is None or dst in (own_ip, "255.255.255.255")

    w.requests_4011 = sum(1 for e in capture.dhcp if e.op == 1 and e.chaddr == mac
                          and e.dport == 4011 and ours(e.dst_ip))
    w.address_offers = sum(1 for e in capture.dhcp if e.op == 2 and e.chaddr == mac
                           and e.msg_type == "OFFER" and e.yiaddr != "0.0.0.0")
    ips = machine_addresses(capture, mac)
    bare = mac.replace(":", "")
    w.tftp_reads = [f"{e.filename} from {e.src_ip}" for e in capture.tftp
                    if e.op_name == "RRQ" and (e.src_ip in ips or e.src_mac == mac)
                    and ours(e.dst_ip)]
    w.http_gets = [f"{e.method} {e.path} from {e.src_ip}" for e in capture.http
                   if e.kind == "request" and e.dport == http_port and ours(e.dst_ip)
                   and (e.src_ip in ips or e.src_mac == mac
                        or mac in (e.path or "").lower() or bare in (e.path or "").lower())]
    return w


def _how(w: MacWatch) -> str:
    if w.discover_giaddrs:
        return "through relay giaddr " + ", ".join(sorted(w.discover_giaddrs))
    return "directly"


def judge(w: MacWatch, iface: str, seconds: float) -> CheckResult:
    """One MAC's verdict from what was watched."""
    evidence = [
        f"DISCOVERs from {w.mac} seen on {iface}: {w.discovers}"
        + (f" (relayed by {', '.join(sorted(w.discover_giaddrs))})" if w.discover_giaddrs
           else ""),
        f"ProxyDHCP offers the Boot Proxy sent: {w.offers_sent}"
        + (f" (to {', '.join(sorted(w.offer_destinations))})" if w.offer_destinations else ""),
        f"DISCOVERs re-sent after the first offer: {w.discovers_after_offer}",
        f"boot-server (4011) requests: {w.requests_4011}, ACKs sent: {w.acks_sent}",
        f"TFTP reads: {', '.join(w.tftp_reads[:3]) or 'none'}",
        f"HTTP requests: {', '.join(w.http_gets[:3]) or 'none'}",
        f"site DHCP address offers seen here: {w.address_offers}",
    ]
    data: dict[str, Any] = {
        "mac": w.mac, "discovers": w.discovers, "offers_sent": w.offers_sent,
        "discovers_after_offer": w.discovers_after_offer, "requests_4011": w.requests_4011,
        "tftp_reads": len(w.tftp_reads), "http_requests": len(w.http_gets),
        "giaddrs": sorted(w.discover_giaddrs), "drops": dict(w.drops),
    }
    if w.discovers == 0 and w.offers_sent == 0:
        return CheckResult(
            "proxydhcp", NAME, CheckVerdict.FAIL,
            f"nothing from {w.mac} reached this host in {seconds:.0f} s: machine off, or no "
            "DHCP helper/relay toward the Boot Proxy", evidence,
            "power the machine on with PXE first in its boot order; on a routed site add this "
            "host's address to the DHCP helper (ip helper-address) of the machines' VLAN",
            data)
    if w.went_on:
        step = ("boot-server request on 4011" if w.requests_4011 or w.acks_sent
                else "TFTP read" if w.tftp_reads else "HTTP request")
        return CheckResult(
            "proxydhcp", NAME, CheckVerdict.PASS,
            f"the Boot Proxy answered {w.mac} and it went on ({step}) {_how(w)}",
            evidence, "", data)
    if w.offers_sent == 0:
        reasons = ", ".join(f"{k} x{v}" for k, v in sorted(w.drops.items())) or "none logged"
        return CheckResult(
            "proxydhcp", NAME, CheckVerdict.FAIL,
            f"{w.discovers} DISCOVER(s) from {w.mac} reached this host but the Boot Proxy did "
            f"not answer (its drop reasons: {reasons})", evidence,
            "a DISCOVER without option 60 PXEClient is not a PXE boot: check the machine "
            "boots from its network card", data)
    if w.discovers_after_offer == 0:
        return CheckResult(
            "proxydhcp", NAME, CheckVerdict.WARN,
            f"the Boot Proxy answered {w.mac} {w.offers_sent} time(s) but nothing more was "
            f"seen within {seconds:.0f} s: too early to tell", evidence,
            "power the machine on again and give --serve-seconds more time", data)
    return CheckResult(
        "proxydhcp", NAME, CheckVerdict.FAIL,
        f"the Boot Proxy answered {w.mac} {w.offers_sent} times but the machine never acted "
        "on it: the reply was dropped on the way (DHCP snooping? trust the Boot Proxy's switch "
        "port)", evidence, SNOOPING_HINT, data)


def watch(lb: LocalBoot, pcap: Path, macs: Sequence[str], seconds: float,
          log: list[str]) -> dict[str, MacWatch]:
    """Poll until every MAC is decided or ``seconds`` pass; return the last views."""
    deadline = time.monotonic() + seconds
    views: dict[str, MacWatch] = {}
    reported: dict[str, tuple[int, int, bool]] = {}
    while True:
        capture = read_capture(pcap)
        events = lb.proxy_events()
        views = {mac: observe(mac, capture, events, lb.http_port, lb.address)
                 for mac in macs}
        for mac, w in views.items():
            state = (w.discovers, w.offers_sent, w.went_on)
            if state != reported.get(mac):
                reported[mac] = state
                log.append(f"serve: {mac}: {w.discovers} DISCOVER(s), {w.offers_sent} "
                           f"offer(s) sent, went on: {'yes' if w.went_on else 'no'}")
        if all(w.decided for w in views.values()) or time.monotonic() > deadline:
            return views
        time.sleep(POLL_S)  # poll interval of the watch loop


def check_serve(ctx: SiteContext) -> list[CheckResult]:
    """Requirement 2 from the Boot Proxy's side, for ``--serve`` MACs (nothing otherwise)."""
    opts = ctx.options
    if not opts.serve_macs:
        return []
    if opts.passive:
        return [CheckResult("proxydhcp", NAME, CheckVerdict.SKIP,
                            "--passive: no Boot Proxy was run (it would answer machines)")]
    macs = [m.lower() for m in opts.serve_macs]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flexlab-serve-") as tmp:
        work = Path(tmp)
        cfg = LocalBootConfig(iface=opts.iface, macs=macs, workdir=work,
                              kernel=stand_in_artifact("vmlinuz"),
                              initrd=stand_in_artifact("initrd.img"),
                              extra_proxy_args=("--log-level", "debug"))
        try:
            with LocalBoot(cfg) as lb:
                pcap = work / "serve.pcap"
                bpf = boot_filter(macs, lb.address, [lb.http_port, lb.cp_port])
                with PacketCapture("serve-capture", opts.iface, pcap, bpf=bpf):
                    msg = (f"serve: Boot Proxy on {opts.iface} ({lb.address}) for "
                           f"{', '.join(macs)}: power them on now (PXE); watching up to "
                           f"{opts.serve_seconds:.0f} s")
                    ctx.log.append(msg)
                    print(msg, file=sys.stderr, flush=True)
                    views = watch(lb, pcap, macs, opts.serve_seconds, ctx.log)
        except (LocalBootError, CertifyError, DependencyError, ComponentError, WaitTimeout) as exc:
            raise SiteCheckError(f"--serve could not run a Boot Proxy on {opts.iface}: {exc}"
                                 ) from exc
    seconds = time.monotonic() - started
    return [judge(views[mac], opts.iface, seconds) for mac in macs]
