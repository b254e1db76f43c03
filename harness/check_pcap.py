"""``flexlab check-pcap``: judge a packet capture against the conformance rules.

Exit status (docs/CLI.md): 0 when no MUST rule failed, 1 when one did, 2 when the input
or the arguments cannot be used (one line on stderr saying why). ``--json`` prints one
``flexlab.check-pcap/v1`` document (docs/formats/check-pcap.md); ``--junit PATH`` writes
one JUnit test case per rule.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.capture import CaptureError, decode_pcap
from harness.cli_common import add_json_flag
from harness.cliout import document, emit
from harness.errors import FlexlabError
from harness.exitcodes import USAGE
from harness.macs import MacError, normalize_mac
from harness.reports.junit import report_suite, write_junit
from harness.rules import RULES, Report, RuleContext, RulesError, Verdict, check_capture
from harness.rules.analysis import Analysis

STYLE = {Verdict.FAIL: "bold red", Verdict.PASS: "green", Verdict.NOT_APPLICABLE: "dim"}


class UsageError(FlexlabError):
    """Arguments that parse but make no sense together."""


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``flexlab check-pcap`` (exposed for --help and tests)."""
    p = argparse.ArgumentParser(
        prog="flexlab check-pcap",
        description="Decode a pcap and judge every DHCP/ProxyDHCP, 4011, TFTP and HTTP "
        "exchange against the Boot Proxy conformance rules.",
    )
    p.add_argument("file", nargs="?", help="capture file (pcap or pcapng)")
    p.add_argument("--list-rules", action="store_true", help="print the rule catalogue and exit")
    p.add_argument(
        "--proxy",
        action="append",
        default=[],
        metavar="IP",
        help="address of a Boot Proxy under test (repeatable); inferred from traffic if absent",
    )
    p.add_argument(
        "--serves",
        action="append",
        default=[],
        metavar="MAC,...",
        help="MACs the proxy serves (turns on SILENT-5 and the served half of SITE-3); "
        "with several --proxy use IP=MAC,MAC",
    )
    p.add_argument(
        "--site-dhcp",
        action="append",
        default=[],
        metavar="IP",
        help="address of a site DHCP server (repeatable)",
    )
    p.add_argument(
        "--relay",
        action="append",
        default=[],
        metavar="IP",
        help="address of a DHCP relay (giaddr) on the path (repeatable)",
    )
    p.add_argument(
        "--vendor-class",
        action="append",
        default=[],
        metavar="PREFIX",
        help="extra option 60 prefix a proxy may answer, e.g. HW-Client",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply timing limits (slow emulated firmware); default 1.0",
    )
    p.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="ID",
        help="check only this rule (repeatable)",
    )
    p.add_argument("--failures-only", action="store_true", help="list only failed rules")
    add_json_flag(p, "check-pcap")
    p.add_argument("--junit", type=Path, metavar="PATH",
                   help="also write JUnit XML: one test case per rule (MUST failures fail)")
    return p


def _ip(value: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError as e:
        raise UsageError(f"{what} {value!r} is not an IPv4 address") from e


def _macs(text: str) -> frozenset[str]:
    return frozenset(normalize_mac(m, "--serves") for m in text.split(",") if m.strip())


def build_context(args: argparse.Namespace, inferred: frozenset[str]) -> RuleContext:
    """Turn the arguments into a RuleContext; ``inferred`` are proxies seen in traffic."""
    proxies = frozenset(_ip(p, "--proxy") for p in args.proxy)
    serves: dict[str, frozenset[str]] = {}
    for item in args.serves:
        if "=" in item:
            ip, macs = item.split("=", 1)
            serves[_ip(ip, "--serves")] = serves.get(ip, frozenset()) | _macs(macs)
            continue
        targets = proxies or inferred
        if len(targets) != 1:
            raise UsageError(
                f"--serves without IP= needs exactly one proxy, found {sorted(targets) or 'none'}; "
                "give --proxy IP or write --serves IP=MAC,..."
            )
        (only,) = tuple(targets)
        serves[only] = serves.get(only, frozenset()) | _macs(item)
    if serves and not proxies:
        proxies = frozenset(serves)
    return RuleContext(
        proxies=proxies,
        serves=serves,
        site_dhcp=frozenset(_ip(s, "--site-dhcp") for s in args.site_dhcp),
        relays=frozenset(_ip(r, "--relay") for r in args.relay),
        vendor_classes=("PXEClient", "HTTPClient", *args.vendor_class),
        time_scale=args.time_scale,
    )


def report_json(report: Report, ctx: RuleContext) -> str:
    """The report as the ``flexlab.check-pcap/v1`` JSON text."""
    return json.dumps(document("check-pcap", report_doc(report, ctx)), indent=2)


def report_doc(report: Report, ctx: RuleContext) -> dict[str, object]:
    """The report as plain data: findings with their rule statement and citation."""
    findings = []
    for f in report.findings:
        d = f.to_dict()
        d["statement"] = RULES[f.rule_id].statement
        d["citation"] = RULES[f.rule_id].citation
        findings.append(d)
    doc = {
        "file": report.path,
        "frames": report.frames,
        "ok": report.ok,
        "summary": report.summary(),
        "context": {
            "proxies": sorted(ctx.proxies),
            "serves": {k: sorted(v) for k, v in ctx.serves.items()},
            "site_dhcp": sorted(ctx.site_dhcp),
            "relays": sorted(ctx.relays),
            "vendor_classes": list(ctx.vendor_classes),
            "time_scale": ctx.time_scale,
        },
        "servers": report.servers,
        "findings": findings,
    }
    return doc


def servers_line(report: Report, ctx: RuleContext) -> str:
    """How the capture's servers were classified, in one line: a verdict is only
    trustworthy when the user sees who was judged as a proxy and why."""
    s = report.servers
    how = "declared with --proxy" if ctx.proxies else "inferred from the capture"
    parts = [f"proxies {', '.join(s.get('proxies', [])) or 'none'} ({how})"]
    plain = [a for a in s.get("address_servers", []) if a not in s.get("combined_servers", [])]
    if plain:
        parts.append(f"address servers {', '.join(plain)}")
    if s.get("combined_servers"):
        parts.append(f"combined DHCP+PXE servers {', '.join(s['combined_servers'])} "
                     "(hand out addresses and boot data: judged by SITE-2, not as proxies)")
    return "servers: " + "; ".join(parts)


def print_table(report: Report, console: Console, failures_only: bool) -> None:
    """Human output: one row per finding, failures first, then a summary line."""
    table = Table(title=f"{report.path}: {report.frames} frames", show_lines=False)
    for col in ("rule", "level", "verdict", "client", "frames", "finding"):
        table.add_column(col, overflow="fold")
    order = {Verdict.FAIL: 0, Verdict.PASS: 1, Verdict.NOT_APPLICABLE: 2}
    rows = sorted(report.findings, key=lambda f: order[f.verdict])
    for f in rows:
        if failures_only and f.verdict is not Verdict.FAIL:
            continue
        frames = ",".join(str(n) for n in f.frames[:6]) + ("…" if len(f.frames) > 6 else "")
        table.add_row(
            f.rule_id,
            f.level.value,
            f"[{STYLE[f.verdict]}]{f.verdict.value}[/]",
            f.client or "",
            frames,
            f.message,
        )
    if table.row_count:
        console.print(table)
    s = report.summary()
    verdict = "[green]conformant[/]" if report.ok else "[bold red]NOT conformant[/]"
    console.print(
        f"{verdict}: {s['must_failures']} MUST and {s['should_failures']} SHOULD failures; "
        f"{s['pass']} passed, {s['not-applicable']} not applicable"
    )


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``flexlab check-pcap``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as e:  # argparse: usage error (2) or --help (0)
        return int(e.code or 0)
    if args.list_rules and args.json:
        emit("check-pcap.rules", {"rules": [
            {"id": r.id, "level": r.level.value, "statement": r.statement,
             "citation": r.citation} for r in RULES.values()]})
        return 0
    if args.list_rules:
        table = Table(title="conformance rules")
        for col in ("rule", "level", "statement", "source"):
            table.add_column(col, overflow="fold")
        for r in RULES.values():
            table.add_row(r.id, r.level.value, r.statement, r.citation)
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        return 0
    if not args.file:
        print("flexlab check-pcap: give a capture FILE (or --list-rules)", file=sys.stderr)
        return 2
    try:
        capture = decode_pcap(args.file)
        inferred = Analysis(capture, RuleContext()).proxies
        ctx = build_context(args, inferred)
        report = check_capture(capture, ctx, args.rule or None)
    except (CaptureError, RulesError, UsageError, MacError) as e:
        print(f"flexlab check-pcap: {e}", file=sys.stderr)
        return 2
    if args.junit:
        try:
            write_junit([report_suite(report)], args.junit)
        except OSError as e:
            print(f"flexlab check-pcap: cannot write {args.junit}: {e}", file=sys.stderr)
            return USAGE
    if args.json:
        print(report_json(report, ctx))
    else:
        console = Console(width=None if sys.stdout.isatty() else 160)
        print_table(report, console, args.failures_only)
        console.print(servers_line(report, ctx), markup=False)
    return 0 if report.ok else 1


def main() -> None:
    """Run as a script: ``python -m harness.check_pcap FILE``."""
    raise SystemExit(run())


if __name__ == "__main__":
    main()
