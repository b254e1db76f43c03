"""`flexlab run SCENARIO…`: the scenario runner without pytest, with a live view and a summary."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.builder.reporting import publish
from harness.builder.runner import ScenarioRunner
from harness.judge.result import RunResult
from harness.plan import PlanError
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


def run(argv: list[str]) -> int:
    """Entry point of `flexlab run`."""
    parser = argparse.ArgumentParser(prog="flexlab run",
                                     description="Run scenario files on this host (root).")
    parser.add_argument("scenarios", nargs="+", metavar="SCENARIO")
    parser.add_argument("--tier", choices=("sim", "vm"), help="override the scenario's tier")
    parser.add_argument("--reports", default="reports", help="output directory (reports/)")
    parser.add_argument("--boot-proxy-image", metavar="IMAGE",
                        help="put this Boot Proxy image under test (run as a container)")
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    status = 0
    for path in args.scenarios:
        try:
            scenario = load_scenario(path)
            if args.tier:
                scenario = scenario.model_copy(update={"tier": args.tier})
            runner = ScenarioRunner(scenario, reports_dir=Path(args.reports),
                                    scenario_file=Path(path),
                                    boot_proxy_image=args.boot_proxy_image)
        except (ScenarioError, PlanError) as exc:  # refused before anything is built
            console.print(f"[red]{exc}[/]")
            status = 2
            continue
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
        if result.verdict != "pass":
            status = max(status, 1)
    return status
