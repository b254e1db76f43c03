"""``flexlab site-check``: validate a site's LAN against the KubeFlex on-prem requirements.

Exit status (docs/CLI.md): 0 when the site passes (warnings allowed), 1 when any check
fails, 2 when the command line is unusable (bad option, no such interface), 3 when no
verdict could be reached (not root; or INCOMPLETE: a check could not run, so no PASS),
130 when interrupted (SIGINT/SIGTERM; --serve's processes are stopped first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from harness.cliout import emit, error_body
from harness.errors import DependencyError, FlexlabError
from harness.exitcodes import FAIL, INCOMPLETE, INTERRUPTED, OK, USAGE, status_of
from harness.macs import MacError, normalize_mac
from harness.signals import interruptible
from harness.sitecheck.model import CheckVerdict, SiteCheckError, SiteCheckOptions

DESCRIPTION = """\
Run on a host in the site's LAN (ideally the future Boot Proxy host). It checks each
requirement of the KubeFlex on-prem guide and prints pass/warn/fail with the evidence,
then writes site-check.html and site-check.json.

What it sends (nothing at all with --passive, which only listens):
  * on IFACE only: one plain DHCPDISCOVER and one PXE DISCOVER per probe MAC (at most
    two tries each, 200 ms apart); it never sends a DHCPREQUEST, so no lease is taken;
  * on IFACE only: one IPv6 Router Solicitation to ff02::2;
  * DNS queries and one RFC 2136 test record (added, then deleted) to the DNS servers the
    site's DHCP offer names (or --dns-server); NTP requests to its NTP servers (or --ntp);
  * one TCP connection per port (80, 443, 8888) to the Control Plane host (or
    --port-target), and GET /healthz when --control-plane is given.
It never scans and never contacts addresses other than these. --passive also skips the
DNS, time and outbound checks (they cannot work without sending).
With --serve it also runs a Boot Proxy (ProxyDHCP for the listed MACs only) on IFACE and
watches those machines when you power them on.

Environment:
  FLEXLAB_CP_ADMIN_TOKEN  admin token of the Control Plane: its machines' hostnames are
                          checked (FLEXLAB_CP_TOKEN, the older name, still works)
  FLEXLAB_CP_CA      CA file for a Control Plane with a private certificate
  FLEXLAB_DNS_TSIG   keyname:base64secret[:algorithm] to sign the RFC 2136 test update

Exit status:
  0    SITE PASS or WARN: every check ran; none failed
  1    SITE FAIL: a check failed (whatever else happened)
  2    bad command line (bad option, no such interface)
  3    no verdict: not root, or SITE INCOMPLETE: nothing failed, but a check could not
       run (its requirement was not checked; the report names it and why)
  130  interrupted (Ctrl-C or SIGTERM): no verdict; --serve's processes were stopped
"""

EXIT_PASS, EXIT_FAIL, EXIT_ERROR, EXIT_INCOMPLETE = OK, FAIL, USAGE, INCOMPLETE


def _macs(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        for item in filter(str.strip, value.split(",")):
            try:
                out.append(normalize_mac(item))
            except MacError as exc:
                raise SiteCheckError(str(exc)) from exc
    return out


def _ports(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise SiteCheckError(
            f"--ports {text!r}: want a comma-separated list like 80,443,8888") from None
    bad = [p for p in ports if not 0 < p < 65536]
    if bad or not ports:
        raise SiteCheckError(f"--ports {text!r}: ports are 1..65535")
    return ports


def _url(text: str | None) -> str | None:
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteCheckError(f"--control-plane {text!r}: want an http(s)://host[:port] URL")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and the docs)."""
    p = argparse.ArgumentParser(prog="flexlab site-check", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iface", required=True, help="the interface on the site's LAN")
    p.add_argument("--control-plane", metavar="URL",
                   help="the Control Plane URL: outbound ports are tested against its host; "
                   "with FLEXLAB_CP_ADMIN_TOKEN its machines' hostnames are checked too")
    p.add_argument("--serve", action="append", metavar="MACS",
                   help="run a Boot Proxy for these MACs (comma-separated, repeatable) and "
                   "watch them boot: tells 'nothing reached the proxy' from 'the proxy "
                   "answered but the reply was dropped on the way'")
    p.add_argument("--mac", action="append", metavar="MAC",
                   help="probe PXE responders as this machine's MAC (repeatable; default: "
                   "this interface's MAC)")
    p.add_argument("--passive", action="store_true", help="send nothing; only listen")
    p.add_argument("--listen", type=float, default=6.0, metavar="S",
                   help="seconds to collect answers per probe (default 6)")
    p.add_argument("--serve-seconds", type=float, default=120.0, metavar="S",
                   help="with --serve: how long to wait for the machines (default 120)")
    p.add_argument("--dns-server", action="append", metavar="IP", default=[],
                   help="DNS server to check (default: those the site DHCP offers)")
    p.add_argument("--public-name", action="append", metavar="NAME", default=[],
                   help="a public name that must resolve (repeatable; default: a short list "
                   "of what nodes need)")
    p.add_argument("--dns-update-zone", metavar="ZONE",
                   help="try an RFC 2136 dynamic update (a TXT record, deleted afterwards) "
                   "in this zone")
    p.add_argument("--dns-update-server", metavar="IP",
                   help="send the RFC 2136 update here (default: the first DNS server)")
    p.add_argument("--hostname", action="append", metavar="NAME", default=[],
                   help="planned node hostname; duplicates fail (repeatable)")
    p.add_argument("--ntp", action="append", metavar="SERVER", default=[],
                   help="NTP server (default: those the site DHCP offers, option 42)")
    p.add_argument("--ports", default="80,443,8888", help="outbound TCP ports (80,443,8888)")
    p.add_argument("--port-target", metavar="HOST",
                   help="host to test outbound ports against when no --control-plane is given")
    p.add_argument("--out", metavar="DIR",
                   help="where to write site-check.html/.json (default "
                   "reports/site-check-<time>)")
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="--json alone: one JSON document (format flexlab.site-check/v1) on "
                   "stdout instead of the screen; --json FILE: also write the report there")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def options_from(args: argparse.Namespace) -> SiteCheckOptions:
    """Validated options from parsed arguments (SiteCheckError on bad input)."""
    if args.listen <= 0 or args.listen > 120:
        raise SiteCheckError("--listen: seconds in (0, 120]")
    if args.serve_seconds <= 0:
        raise SiteCheckError("--serve-seconds must be positive")
    serve = _macs(args.serve)
    if args.passive and serve:
        raise SiteCheckError("--passive sends nothing; --serve answers machines: pick one")
    return SiteCheckOptions(
        iface=args.iface, control_plane=_url(args.control_plane), serve_macs=serve,
        probe_macs=_macs(args.mac), passive=args.passive, listen_seconds=args.listen,
        serve_seconds=args.serve_seconds, dns_servers=list(args.dns_server),
        public_names=list(args.public_name), dns_update_zone=args.dns_update_zone,
        dns_update_server=args.dns_update_server, hostnames=list(args.hostname),
        ntp_servers=list(args.ntp), ports=_ports(args.ports), port_target=args.port_target)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``flexlab site-check``."""
    from harness.sitecheck.render import render_screen, write_reports
    from harness.sitecheck.runner import run_site_check

    args = build_parser().parse_args(argv)
    to_stdout = args.json == "-"
    try:
        options = options_from(args)
        if os.geteuid() != 0 and Path("/sys/class/net", options.iface).exists():
            raise DependencyError("site-check sends and captures raw DHCP frames: run it as "
                                  "root (sudo)")
        progress = None if args.quiet else (lambda line: print(line, file=sys.stderr,
                                                               flush=True))
        # SIGINT/SIGTERM unwind: --serve's Boot Proxy, Control Plane and capture stop
        with interruptible():
            report = run_site_check(options, progress)
    except FlexlabError as exc:
        status = status_of(exc)
        print(f"flexlab site-check: {exc}", file=sys.stderr)
        if to_stdout:
            emit("site-check", error_body(status, str(exc)))
        return status
    except KeyboardInterrupt:
        print("flexlab site-check: interrupted; no verdict", file=sys.stderr)
        return INTERRUPTED
    out = Path(args.out or f"reports/site-check-{time.strftime('%Y%m%d-%H%M%S')}")
    json_path, html_path = write_reports(report, out)
    if to_stdout:
        emit("site-check", {"ok": exit_status(report.overall) == EXIT_PASS,
                            **json.loads(json_path.read_text()),
                            "reports": {"json": str(json_path), "html": str(html_path)}})
        return exit_status(report.overall)
    if args.json:
        Path(args.json).write_text(json_path.read_text())
    width = shutil.get_terminal_size((110, 40)).columns
    sys.stdout.write(render_screen(report, html_path, width=width, colour=sys.stdout.isatty()))
    return exit_status(report.overall)


def exit_status(overall: CheckVerdict) -> int:
    """The exit status of a finished run with this overall verdict (see DESCRIPTION)."""
    if overall is CheckVerdict.FAIL:
        return EXIT_FAIL
    if overall is CheckVerdict.INCOMPLETE:
        return EXIT_INCOMPLETE
    return EXIT_PASS
