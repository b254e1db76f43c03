"""`flexlab run SCENARIO…`: the scenario runner without pytest, with a live view and a summary."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.builder.reporting import publish
from harness.builder.runner import ScenarioRunner
from harness.cli_common import add_json_flag, command_parser
from harness.cliout import emit
from harness.errors import FlexlabError
from harness.exitcodes import FAIL, INCOMPLETE, INTERRUPTED, OK, USAGE, status_of
from harness.judge.result import RunResult
from harness.plan import PlanError
from harness.reports.junit import run_suite, write_junit
from harness.scenario.drivers import MachineProgress
from harness.scenario.loader import ScenarioError, load_scenario

PHASE_STYLE = {"done": "green", "failed": "red", "off": "dim"}
MAX_ROWS = 24


def _progress_view(name: str, progress: dict[str, MachineProgress]) -> Group:
    counts = Counter(p.phase for p in progress.values())
    head = Text(f"{name}: " + "  ".join(f"{phase} {n}" for phase, n in sorted(counts.items())))
    table = Table(show_header=True, header_style="bold", box=None)
    for col in ("machine", "phase", "answered by", "last event"):
        table.add_column(col)
    for key, prog in list(progress.items())[:MAX_ROWS]:
        last = prog.timeline[-1].summary if prog.timeline else ""
        table.add_row(key, Text(prog.phase, style=PHASE_STYLE.get(prog.phase, "yellow")),
                      ", ".join(prog.answered_by), last[:60])
    if len(progress) > MAX_ROWS:
        table.add_row(f"… {len(progress) - MAX_ROWS} more", "", "", "")
    return Group(head, table)


def summary_table(result: RunResult) -> Table:
    """One line per expectation, coloured by verdict."""
    table = Table(title=f"{result.scenario_name} — {result.verdict.upper()} "
                  f"(lab {result.lab_id}, {result.duration:.1f} s)")
    for col in ("", "kind", "subject", "expectation", "detail"):
        table.add_column(col)
    for exp in result.expectations:
        mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[dim]-[/]"}[exp.verdict]
        table.add_row(mark, exp.kind, exp.subject, exp.description, exp.detail[:120])
    return table


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``flexlab run`` (exposed for completion and tests)."""
    parser = command_parser("run", "Run scenario files on this host (root).", {
        OK: "every run passed",
        FAIL: "a run failed",
        USAGE: "a scenario file is unusable",
        INCOMPLETE: "a run could not finish for the host's or a service's sake (not root, a "
        "missing program, Docker or a daemon down: no verdict)",
        INTERRUPTED: "interrupted (SIGINT/SIGTERM: the lab is torn down first)"})
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    parser.add_argument("--tier", choices=("sim", "vm"), help="override the scenario's tier")
    parser.add_argument("--reports", default="reports", help="output directory (reports/)")
    parser.add_argument("--boot-proxy-image", metavar="IMAGE",
                        help="put this Boot Proxy image under test (run as a container)")
    parser.add_argument("--boot-proxy-kind", choices=("container", "process"),
                        help="run our Boot Proxy as a container (the default) or as a plain "
                        "process in its lab host (debugging); dnsmasq proxies stay dnsmasq")
    add_json_flag(parser, "run", also="progress and the summary table go to stderr")
    parser.add_argument("--junit", type=Path, metavar="PATH",
                        help="also write JUnit XML: one test case per expectation and per "
                        "conformance rule of each run")
    return parser


def run_status(result: RunResult, failure: Exception | None) -> int:
    """A run's exit status: 0 it passed; 3 the host or a service stopped it (no verdict:
    a missing program, Docker or a daemon gone, a lab that could not be built — the
    error's class says so, :func:`harness.exitcodes.status_of`); 1 any other failure,
    a failed expectation or a Boot Proxy under test that never became ready."""
    if result.verdict == "pass":
        return OK
    if isinstance(failure, FlexlabError) and status_of(failure) == INCOMPLETE:
        return INCOMPLETE
    if isinstance(failure, OSError):   # the host's: no space, no file, too many open files
        return INCOMPLETE
    return FAIL


def run_json(result: RunResult, paths: dict[str, Path],
             incomplete: bool = False) -> dict[str, Any]:
    """One run in the ``flexlab.run/v1`` document (docs/formats/README.md); ``incomplete``:
    the host or a service stopped it (exit 3)."""
    rules: dict[str, dict[str, int]] = {}
    for segment, findings in result.findings.items():
        counts = Counter(f.verdict.value for f in findings)
        rules[segment] = {"pass": counts["pass"], "fail": counts["fail"],
                          "not-applicable": counts["not-applicable"],
                          "must_failures": sum(1 for f in findings
                                               if f.verdict.value == "fail"
                                               and f.level.value == "MUST")}
    return {
        "scenario": result.scenario_name,
        "file": str(result.scenario_file) if result.scenario_file else None,
        "tier": result.tier, "lab_id": result.lab_id, "verdict": result.verdict,
        "duration_s": round(result.duration, 3), "error": result.error,
        "incomplete": incomplete,
        "expectations": [{"kind": e.kind, "subject": e.subject, "description": e.description,
                          "verdict": e.verdict, "detail": e.detail}
                         for e in result.expectations],
        "rules": rules,
        "reports": {kind: str(p) for kind, p in paths.items()},
    }


def run(argv: list[str]) -> int:
    """Entry point of `flexlab run` (SIGINT/SIGTERM are turned into KeyboardInterrupt by
    the ``flexlab`` main; the runner tears its lab down as that unwinds)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.boot_proxy_image and args.boot_proxy_kind == "process":
        parser.error("--boot-proxy-image runs that image as a container: it cannot be "
                     "combined with --boot-proxy-kind process")
    out = sys.stderr if args.json else sys.stdout
    console = Console(file=out) if out.isatty() else Console(file=out, width=150)
    status = OK
    error: str | None = None
    runs: list[dict[str, Any]] = []
    results: list[RunResult] = []
    refused: list[dict[str, str]] = []
    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
            if args.tier:
                scenario = scenario.model_copy(update={"tier": args.tier})
            runner = ScenarioRunner(scenario, reports_dir=Path(args.reports),
                                    scenario_file=Path(path),
                                    boot_proxy_image=args.boot_proxy_image,
                                    boot_proxy_kind=args.boot_proxy_kind)
        except (ScenarioError, PlanError) as exc:  # refused before anything is built
            console.print(f"[red]{exc}[/]")
            refused.append({"file": path, "error": str(exc)})
            status = max(status, USAGE)
            continue
        if os.geteuid() != 0:  # checked after the files, so a bad file still reads as 2
            error = "flexlab run builds network namespaces: run it as root (sudo)"
            print(f"flexlab run: {error}", file=sys.stderr)
            status = max(status, INCOMPLETE)
            break
        name = scenario.name
        with Live(Text(f"{name}: building the site…"), console=console,
                  refresh_per_second=4, transient=True) as live:

            def show(_phase: str, prog: dict[str, MachineProgress], live: Live = live,
                     name: str = name) -> None:
                live.update(_progress_view(name, prog))

            runner.progress = show
            result = runner.run()
        console.print(summary_table(result))
        paths = publish(result, Path(args.reports), runner.captures)
        for kind, p in paths.items():
            console.print(f"{kind}: {p}")
        results.append(result)
        run_exit = run_status(result, runner.failure)
        if run_exit == INCOMPLETE:
            console.print(f"[red]{name}: incomplete, no verdict: {result.error}[/]")
        runs.append(run_json(result, paths, incomplete=run_exit == INCOMPLETE))
        status = max(status, run_exit)
    if args.junit:
        write_junit([run_suite(r) for r in results], args.junit)
        console.print(f"junit: {args.junit}")
    if args.json:
        emit("run", {"ok": status == OK, "exit_status": status, "error": error, "runs": runs,
                     "refused": refused, "junit": str(args.junit) if args.junit else None})
    return status
