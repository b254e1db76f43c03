"""The ``flexlab`` command line: one sub-command per job, each in its own module.

Sub-commands import their module lazily so that ``flexlab --help`` and
``flexlab clean`` work even when an optional part (libvirt, Docker) is absent.
``-v`` and ``--log-format`` come before the command (delegated commands own the rest of
the line) and configure the harness's structured log (:mod:`harness.logs`) on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness import __version__
from harness.errors import FlexlabError
from harness.logs import FORMATS, configured


def _cmd_clean(args: argparse.Namespace) -> int:
    from harness.lab.cleanup import clean
    from harness.lab.names import is_lab_id

    if not args.all and not args.lab:
        print("flexlab clean: give --lab ID (repeatable) or --all", file=sys.stderr)
        return 2
    for lab_id in args.lab or []:
        if not is_lab_id(lab_id):
            print(f"flexlab clean: {lab_id!r} is not a lab id (fl + 5 letters/digits)",
                  file=sys.stderr)
            return 2
    results = clean(args.lab if args.lab else None, force=args.force)
    if not results:
        print("nothing to clean")
        return 0
    status = 0
    for lab_id, errors in results.items():
        if errors:
            status = 1
            print(f"{lab_id}: left problems:")
            for err in errors:
                print(f"  - {err}")
        else:
            print(f"{lab_id}: removed")
    return status


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.dhcp_only:
        from harness.demo import run_demo

        return run_demo(reports=args.reports)
    from pathlib import Path

    from harness.builder.cli_run import run

    smoke = Path(__file__).resolve().parents[1] / "scenarios" / "smoke.yaml"
    return run([str(smoke), "--reports", args.reports])


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario import ScenarioError, load_scenario

    status = 0
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        machines = sum(m.count for m in scenario.machines)
        print(f"{path}: ok — scenario {scenario.name!r}, {len(scenario.segments)} segment(s), "
              f"{len(scenario.proxies)} proxy(ies), {machines} machine(s)")
    return status


def _cmd_schema(args: argparse.Namespace) -> int:
    from harness.scenario.schema import SCHEMA_PATH, schema_text

    if args.write:
        SCHEMA_PATH.write_text(schema_text())
        print(f"wrote {SCHEMA_PATH}")
    else:
        sys.stdout.write(schema_text())
    return 0


DELEGATED = {
    "run": ("harness.builder.cli_run", "run"),
    "check-pcap": ("harness.check_pcap", "run"),
    "report": ("harness.reports.cli", "run"),
    "bootproxy": ("bootproxy.__main__", "main"),
    "cp": ("controlplane.__main__", "main"),
    "site-check": ("harness.sitecheck.cli", "main"),
    "certify": ("harness.certify.cli", "main"),
    "verify": ("harness.certify.verify", "main"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help)."""
    parser = argparse.ArgumentParser(
        prog="flexlab",
        description="Simulation and conformance test harness for KubeFlex-style PXE provisioning.",
    )
    parser.add_argument("--version", action="version", version=f"flexlab {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log the harness's events on stderr: -v lab, processes, "
                        "components and phases; -vv debug too (default: warnings only)")
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="text for a terminal, json for one object per line with the "
                        "Boot Proxy's and Control Plane's fields (ts, level, component, event, "
                        "msg) (default: text)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="run the smoke scenario end to end and print where its "
                       "report is")
    p.add_argument("--reports", default="reports", help="where to write the report (reports/)")
    p.add_argument("--dhcp-only", action="store_true",
                   help="only the lab check: site DHCP leases an address to one client")
    p.set_defaults(func=_cmd_demo)

    # delegated: main() hands them their whole argv (listed here for --help)
    sub.add_parser("run", help="run scenario files (live progress, summary, reports)")

    p = sub.add_parser("validate", help="check scenario files; errors as file:line: message")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the scenario JSON Schema (generated from the models)")
    p.add_argument("--write", action="store_true",
                   help="write it to scenarios/scenario.schema.json")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser(
        "clean",
        help="remove leftovers of crashed runs (by lab id or flexlab's own markers only)",
        description="Removes namespaces, processes, containers, VMs and temp dirs of labs, "
        "selected by lab id from flexlab's registry (/run/flexlab/labs) — never by a broad "
        "name pattern. --all skips labs whose owning process still runs unless --force.",
    )
    p.add_argument("--lab", action="append", metavar="ID", help="a lab id (repeatable)")
    p.add_argument("--all", action="store_true", help="every registered lab")
    p.add_argument("--force", action="store_true", help="with --all: also labs still in use")
    p.set_defaults(func=_cmd_clean)

    sub.add_parser("check-pcap", help="run the conformance rules on a capture file")
    sub.add_parser("report", help="regenerate the HTML summary / results bundle from a run.json")

    sub.add_parser("bootproxy", help="the reference Boot Proxy: `flexlab bootproxy --help`")

    sub.add_parser("cp", help="the Control Plane mock: `flexlab cp serve --help`")

    sub.add_parser("site-check", help="check a site's LAN against the KubeFlex requirements "
                   "(DHCP, ProxyDHCP, rogue proxies, DNS, time, ports, L2); see --help for "
                   "exactly what it sends")
    sub.add_parser("certify", help="boot one machine into the node image and write a signed "
                   "certification bundle")
    sub.add_parser("verify", help="verify a certification bundle's hashes and signature")
    return parser


def command_index(argv: list[str]) -> int:
    """Where the command starts in ``argv``: after the leading options (``--log-format``
    takes the next word unless written ``--log-format=json``)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--log-format" else 1
    return i


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flexlab`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    start = command_index(argv)
    if start < len(argv) and argv[start] in DELEGATED:
        options = parser.parse_args(argv[:start])  # the options before the command only
        with configured(options.log_format, options.verbose):
            return _delegate(argv[start], argv[start + 1:])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    with configured(args.log_format, args.verbose):
        return _run(args)


def _delegate(command: str, rest: list[str]) -> int:
    """Run a sub-command that owns its whole argument list, --help included."""
    module, func = DELEGATED[command]
    if command == "cp":
        if not rest or rest[0] != "serve":
            print("usage: flexlab cp serve [options] (see flexlab cp serve --help)",
                  file=sys.stderr)
            return 2
        rest = rest[1:]
    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except FlexlabError as exc:
        print(f"flexlab {command}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    """Run a sub-command parsed here; a FlexlabError is one line and status 1."""
    try:
        return int(args.func(args))
    except FlexlabError as exc:
        print(f"flexlab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"flexlab {args.command}: interrupted; leftovers: flexlab clean --all",
              file=sys.stderr)
        return 130


def console() -> None:
    """Console-script wrapper: exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    console()
