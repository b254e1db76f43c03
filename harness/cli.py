# PYTHON_ARGCOMPLETE_OK  (argcomplete's global completion looks for this line)
"""The ``flexlab`` command line: one sub-command per job, each in its own module.

Sub-commands import their module lazily so that ``flexlab --help`` and
``flexlab clean`` work even when an optional part (libvirt, Docker) is absent.
``-v`` and ``--log-format`` come before the command (delegated commands own the rest of
the line) and configure the harness's structured log (:mod:`harness.logs`) on stderr.

Every command follows one output contract (docs/CLI.md): human output by default,
``--json`` for one ``flexlab.<command>/v1`` document on stdout (docs/formats/), the exit
statuses of :mod:`harness.exitcodes`, and SIGINT/SIGTERM unwinding through every clean-up
before exiting 130 (:mod:`harness.signals`). Shell completion comes from argcomplete:
``eval "$(register-python-argcomplete flexlab)"``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Any

from harness import __version__
from harness.cli_common import add_json_flag
from harness.cliout import emit, error_body
from harness.errors import FlexlabError
from harness.exitcodes import FAIL, INCOMPLETE, INTERRUPTED, OK, USAGE, status_of
from harness.logs import FORMATS, configured
from harness.signals import interruptible


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _cmd_clean(args: argparse.Namespace) -> int:
    from harness.lab.cleanup import clean
    from harness.lab.names import is_lab_id

    if not args.all and not args.lab:
        print("flexlab clean: give --lab ID (repeatable) or --all", file=sys.stderr)
        return USAGE
    for lab_id in args.lab or []:
        if not is_lab_id(lab_id):
            print(f"flexlab clean: {lab_id!r} is not a lab id (fl + 5 letters/digits)",
                  file=sys.stderr)
            return USAGE
    if os.geteuid() != 0:
        message = "removing namespaces, processes and containers needs root (sudo)"
        print(f"flexlab clean: {message}", file=sys.stderr)
        if _json(args):
            emit("clean", error_body(INCOMPLETE, message))
        return INCOMPLETE
    results = clean(args.lab if args.lab else None, force=args.force)
    status = FAIL if any(results.values()) else OK
    if _json(args):
        emit("clean", {"ok": status == OK, "labs": [
            {"lab_id": lab_id, "removed": not errors, "errors": errors}
            for lab_id, errors in results.items()]})
        return status
    if not results:
        print("nothing to clean")
    for lab_id, errors in results.items():
        if errors:
            print(f"{lab_id}: left problems:")
            for err in errors:
                print(f"  - {err}")
        else:
            print(f"{lab_id}: removed")
    return status


def _cmd_inspect(args: argparse.Namespace) -> int:
    from harness.lab.inspect import inspect_labs
    from harness.lab.names import is_lab_id

    for lab_id in args.lab or []:
        if not is_lab_id(lab_id):
            print(f"flexlab inspect: {lab_id!r} is not a lab id (fl + 5 letters/digits)",
                  file=sys.stderr)
            return USAGE
    views = inspect_labs(args.lab or None, include_leftovers=args.all)
    if _json(args):
        emit("inspect", {"labs": [v.to_json() for v in views]})
        return OK
    if not views:
        print("no labs" + ("" if args.all else " running (--all also lists leftovers)"))
        return OK
    from rich.console import Console
    from rich.table import Table

    table = Table(title="flexlab labs")
    for col in ("lab", "state", "owner", "age", "namespaces", "processes", "containers",
                "VMs"):
        table.add_column(col, overflow="fold")
    for v in views:
        alive = sum(p.alive for p in v.processes)
        table.add_row(
            v.lab_id, v.state, f"{v.owner_pid}" + ("" if v.owner_alive else " (gone)"),
            _age(v.age_s) if v.registered else "?", str(len(v.namespaces)),
            f"{alive}/{len(v.processes)} alive" if v.processes else "0",
            ", ".join(c.name for c in v.containers) or "-", ", ".join(v.vms) or "-")
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return OK


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.dhcp_only:
        from harness.demo import run_demo

        return run_demo(reports=args.reports, as_json=_json(args))
    from pathlib import Path

    from harness.builder.cli_run import run

    smoke = Path(__file__).resolve().parents[1] / "scenarios" / "smoke.yaml"
    return run([str(smoke), "--reports", args.reports, *(["--json"] if _json(args) else [])])


def _cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario import ScenarioError, load_scenario

    status = OK
    files: list[dict[str, Any]] = []
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            if not _json(args):
                print(exc, file=sys.stderr)
            files.append({"file": path, "ok": False, "error": str(exc)})
            status = FAIL
            continue
        machines = sum(m.count for m in scenario.machines)
        files.append({"file": path, "ok": True, "scenario": scenario.name,
                      "segments": len(scenario.segments), "proxies": len(scenario.proxies),
                      "machines": machines})
        if not _json(args):
            print(f"{path}: ok — scenario {scenario.name!r}, {len(scenario.segments)} "
                  f"segment(s), {len(scenario.proxies)} proxy(ies), {machines} machine(s)")
    if _json(args):
        emit("validate", {"ok": status == OK, "files": files})
    return status


def _cmd_schema(args: argparse.Namespace) -> int:
    import json

    from harness.scenario.schema import SCHEMA_PATH, schema_text

    if args.write:
        SCHEMA_PATH.write_text(schema_text())
        if _json(args):
            emit("schema", {"written": str(SCHEMA_PATH)})
        else:
            print(f"wrote {SCHEMA_PATH}")
    elif _json(args):
        emit("schema", {"schema": json.loads(schema_text())})
    else:
        sys.stdout.write(schema_text())
    return OK


# command -> (module, function, the module's parser factory for completion)
DELEGATED = {
    "run": ("harness.builder.cli_run", "run", "build_parser"),
    "check-pcap": ("harness.check_pcap", "run", "build_parser"),
    "report": ("harness.reports.cli", "run", "parser"),
    "bootproxy": ("bootproxy.__main__", "main", "build_parser"),
    "cp": ("controlplane.__main__", "main", "build_parser"),
    "site-check": ("harness.sitecheck.cli", "main", "build_parser"),
    "certify": ("harness.certify.cli", "main", "build_parser"),
    "verify": ("harness.certify.cli_verify", "main", "build_parser"),
}
SERVERS = ("bootproxy", "cp")  # long-running services: they log JSON, no --json document
HELP = {
    "run": "run scenario files (live progress, summary, reports)",
    "check-pcap": "run the conformance rules on a capture file",
    "report": "regenerate the HTML summary / results bundle from a run.json",
    "bootproxy": "the reference Boot Proxy: `flexlab bootproxy --help`",
    "cp": "the Control Plane mock: `flexlab cp serve --help`",
    "site-check": "check a site's LAN against the KubeFlex requirements (DHCP, ProxyDHCP, "
    "rogue proxies, DNS, time, ports, L2); see --help for exactly what it sends",
    "certify": "boot one machine into the node image and write a signed certification "
    "bundle",
    "verify": "verify a certification bundle's hashes and signature",
}


def build_parser(*, complete: bool = False) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and --help). With ``complete`` the delegated
    commands carry their own options too (imported for shell completion only)."""
    parser = argparse.ArgumentParser(
        prog="flexlab",
        description="Simulation and conformance test harness for KubeFlex-style PXE "
        "provisioning. Exit status: 0 ok/pass, 1 verdict fail, 2 bad command line or input, "
        "3 incomplete (host or service error), 130 interrupted (docs/CLI.md).",
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
    add_json_flag(p, "run", also="with --dhcp-only flexlab.demo/v1")
    p.set_defaults(func=_cmd_demo)

    _delegated(sub, "run", complete)

    p = sub.add_parser("validate", help="check scenario files; errors as file:line: message")
    p.add_argument("files", nargs="+", metavar="FILE")
    add_json_flag(p, "validate")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("schema", help="print the scenario JSON Schema (generated from the models)")
    p.add_argument("--write", action="store_true",
                   help="write it to scenarios/scenario.schema.json")
    add_json_flag(p, "schema")
    p.set_defaults(func=_cmd_schema)

    p = sub.add_parser(
        "clean",
        help="remove leftovers of crashed runs (by lab id or flexlab's own markers only)",
        description="Removes namespaces, processes, containers, VMs and temp dirs of labs, "
        "selected by lab id from flexlab's registry (/run/flexlab/labs) or the io.flexlab.lab "
        "container label (the older flexlab.lab too) — never by a broad name pattern. --all "
        "skips labs whose owning process still runs unless --force. Exit 1 when something "
        "could not be removed.",
    )
    p.add_argument("--lab", action="append", metavar="ID", help="a lab id (repeatable)")
    p.add_argument("--all", action="store_true", help="every registered lab")
    p.add_argument("--force", action="store_true", help="with --all: also labs still in use")
    add_json_flag(p, "clean")
    p.set_defaults(func=_cmd_clean)

    p = sub.add_parser(
        "inspect", help="list the labs on this host: owner, age, namespaces, processes, "
        "containers, VMs",
        description="Lists the labs whose owning process still runs, each checked against "
        "the live host (recorded processes by PID and start time, namespaces, containers by "
        "their io.flexlab.lab label, VMs by their libvirt metadata). --all also lists "
        "leftovers of crashed runs (what `flexlab clean --lab ID` removes). Reads only.")
    p.add_argument("--all", action="store_true",
                   help="also labs whose owner is gone, and labelled containers/VMs with no "
                   "registry entry")
    p.add_argument("--lab", action="append", metavar="ID", help="only this lab (repeatable)")
    add_json_flag(p, "inspect")
    p.set_defaults(func=_cmd_inspect)

    for command in ("check-pcap", "report", "bootproxy", "cp", "site-check", "certify",
                    "verify"):
        _delegated(sub, command, complete)
    return parser


def _delegated(sub: Any, command: str, complete: bool) -> None:
    """A delegated command in the top parser: a name for --help, and with ``complete`` its
    module's own options (argparse parents) so the shell can complete them."""
    if not complete:
        sub.add_parser(command, help=HELP[command], add_help=False)
        return
    module, _, factory = DELEGATED[command]
    try:
        own = getattr(importlib.import_module(module), factory)()
    except Exception:  # an optional part missing: complete the command name only
        sub.add_parser(command, help=HELP[command])
        return
    if command == "cp":
        serve = sub.add_parser(command, help=HELP[command]).add_subparsers()
        serve.add_parser("serve", parents=[own], add_help=False)
    else:
        sub.add_parser(command, help=HELP[command], parents=[own], add_help=False)


def command_index(argv: list[str]) -> int:
    """Where the command starts in ``argv``: after the leading options (``--log-format``
    takes the next word unless written ``--log-format=json``)."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] == "--log-format" else 1
    return i


def _complete() -> None:
    """Answer the shell's completion request and exit (argcomplete), if this is one."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(build_parser(complete=True))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flexlab`` console script; returns the exit status (argparse's
    own exits included, so tests can call it with any argv)."""
    _complete()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else USAGE


def _main(argv: list[str]) -> int:
    parser = build_parser()
    start = command_index(argv)
    if start < len(argv) and argv[start] in DELEGATED:
        options = parser.parse_args(argv[:start])  # the options before the command only
        command, rest = argv[start], argv[start + 1:]
        with configured(options.log_format, options.verbose):
            return _guarded(command, "--json" in rest, lambda: _delegate(command, rest))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return USAGE
    with configured(args.log_format, args.verbose):
        return _guarded(args.command, _json(args), lambda: int(args.func(args)))


def _guarded(command: str, as_json: bool, body: Any) -> int:
    """Run one command under the shared contract: SIGINT/SIGTERM unwind its clean-up and
    exit 130; a FlexlabError is one line on stderr (and a JSON document with --json) and
    the status its kind calls for."""
    try:
        with interruptible():
            return int(body())
    except FlexlabError as exc:
        status = status_of(exc)
        print(f"flexlab {command}: {exc}", file=sys.stderr)
        if as_json:
            emit(command, error_body(status, str(exc)))
        return status
    except KeyboardInterrupt as exc:
        name = "SIGTERM" if getattr(exc, "signum", None) == signal.SIGTERM else "interrupted"
        print(f"flexlab {command}: {name}; stopped after cleaning up (anything left: "
              "flexlab inspect --all, then flexlab clean --lab ID)", file=sys.stderr)
        if as_json:
            emit(command, error_body(INTERRUPTED, f"{name}; stopped after cleaning up"))
        return INTERRUPTED


def _delegate(command: str, rest: list[str]) -> int:
    """Run a sub-command that owns its whole argument list, --help included."""
    module, func = DELEGATED[command][:2]
    kwargs: dict[str, Any] = {}
    if command in SERVERS:
        kwargs["prog"] = f"flexlab {command}" + (" serve" if command == "cp" else "")
    if command == "cp":
        if not rest or rest[0] != "serve":
            print("usage: flexlab cp serve [options] (see flexlab cp serve --help)",
                  file=sys.stderr)
            return USAGE
        rest = rest[1:]
    return int(getattr(importlib.import_module(module), func)(rest, **kwargs) or 0)


def console() -> None:
    """Console-script wrapper: exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    console()
