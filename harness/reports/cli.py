"""``flexlab report RUN_JSON [--html OUT] [--bundle DIR]``: regenerate reports from a run.json.

Relative evidence paths in the run.json are looked up from the current
directory first, then from the run.json's own directory (a copied run, or a
bundle's meta/ unpacked next to its evidence).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.reports.bundle import write_bundle
from harness.reports.errors import ReportError
from harness.reports.html import load_captures, write_html
from harness.reports.serialize import load


def parser() -> argparse.ArgumentParser:
    """The argument parser (the lead's CLI can embed it as a subcommand)."""
    p = argparse.ArgumentParser(
        prog="flexlab report",
        description="Regenerate the HTML summary (and optionally the results bundle) "
        "of a finished run from its run.json.",
    )
    p.add_argument("run_json", type=Path, help="run.json written by a scenario run")
    p.add_argument(
        "--html", type=Path, default=None,
        help="where to write the summary (default: summary.html beside RUN_JSON)",
    )
    p.add_argument(
        "--bundle", type=Path, default=None, metavar="DIR",
        help="also write the results bundle (tar.gz) into DIR",
    )
    return p


def run(argv: list[str] | None = None) -> int:
    """Body of ``flexlab report``: 0 on success, 2 when the input or output is unusable."""
    args = parser().parse_args(argv)
    try:
        result = load(args.run_json)
        base = args.run_json.resolve().parent
        captures = load_captures(result, base)
        out = args.html or args.run_json.with_name("summary.html")
        html = write_html(result, out, captures=captures, base=base)
        print(f"summary: {html}  (verdict {result.verdict.upper()})")
        if args.bundle is not None:
            bundle = write_bundle(result, args.bundle, captures=captures, base=base)
            print(f"bundle:  {bundle}")
    except ReportError as exc:
        print(f"flexlab report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(run())
