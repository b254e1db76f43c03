"""``flexlab report RUN [--rejudge] [--html OUT] [--bundle DIR]``: a run's reports again.

RUN is a run.json, the run directory holding it, or a results bundle (.tar.gz). By
default the reports are regenerated from the verdicts the run saved. ``--rejudge``
judges the run again first, with this flexlab's rules and expectations, from what the
run saved (its pcaps and run.json's ``observed``), prints every verdict that changed
and writes ``rejudged-run.json`` and ``rejudged-summary.html``; it exits 0 when the
re-judged run passes and 1 when it fails.

Relative evidence paths in the run.json are looked up from the current directory
first, then from the run.json's own directory (a copied run); a bundle's are mapped to
where the bundle holds them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tarfile
import tempfile
from pathlib import Path

from harness import __version__
from harness.cli_common import add_json_flag
from harness.cliout import emit, error_body
from harness.exitcodes import USAGE
from harness.judge.rejudge import RejudgeError, changes, rejudge
from harness.judge.result import RunResult
from harness.reports.bundle import write_bundle
from harness.reports.errors import ReportError
from harness.reports.html import load_captures, write_html
from harness.reports.serialize import from_plain, load, to_json


def parser() -> argparse.ArgumentParser:
    """The argument parser (the lead's CLI can embed it as a subcommand)."""
    p = argparse.ArgumentParser(
        prog="flexlab report",
        description="Regenerate the HTML summary (and optionally the results bundle) "
        "of a finished run, or judge it again with today's rules (--rejudge).",
    )
    p.add_argument("run_json", type=Path, metavar="RUN",
                   help="run.json, its run directory, or a results bundle (.tar.gz)")
    p.add_argument("--rejudge", action="store_true",
                   help="judge the run again with this flexlab's rules from its saved "
                   "pcaps and evidence; exit 1 if it now fails")
    p.add_argument(
        "--html", type=Path, default=None,
        help="where to write the summary (default: beside RUN)",
    )
    p.add_argument(
        "--bundle", type=Path, default=None, metavar="DIR",
        help="also write the results bundle (tar.gz) into DIR",
    )
    add_json_flag(p, "report")
    return p


def open_run(path: Path, stack: contextlib.ExitStack) -> tuple[RunResult, Path, Path]:
    """The saved run at ``path``, the directory its relative evidence paths resolve
    from, and where its outputs go by default. A bundle is unpacked into a temporary
    directory that lives as long as ``stack``, its evidence paths mapped into it."""
    if path.is_dir():
        path = path / "run.json"
    if not path.name.endswith((".tar.gz", ".tgz")):
        return load(path), path.resolve().parent, path.parent
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flexlab-report-")))
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(root, filter="data")  # plain files, nothing outside root
        meta = json.loads((root / "meta" / "run.json").read_text(encoding="utf-8"))
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise ReportError(f"{path} is not a readable flexlab results bundle: {exc}") from exc
    inside: dict[str, str] = meta.get("evidence") or {}

    def mapped(p: Path) -> Path:
        return root / inside[str(p)] if str(p) in inside else p

    result = from_plain(meta)
    result.pcaps = {seg: mapped(p) for seg, p in result.pcaps.items()}
    result.logs = [mapped(p) for p in result.logs]
    for m in result.machines:
        m.console = mapped(m.console) if m.console is not None else None
    return result, root, path.parent


def run(argv: list[str] | None = None) -> int:
    """Body of ``flexlab report``: 0 on success (with --rejudge: the new verdict passes),
    1 when the re-judged run fails, 2 when the input or output is unusable."""
    args = parser().parse_args(argv)
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    doc: dict[str, object] = {"run": str(args.run_json), "rejudged": args.rejudge}
    try:
        with contextlib.ExitStack() as stack:
            result, base, out_dir = open_run(args.run_json, stack)
            prefix = ""
            if args.rejudge:
                before, result = result, rejudge(result, lambda p: _find(p, base))
                prefix = "rejudged-"
                changed = changes(before, result)
                say(f"re-judged {result.scenario_name} ({result.lab_id}): saved verdict "
                    f"{before.verdict.upper()}, with the rules of flexlab {__version__} "
                    f"{result.verdict.upper()}")
                for line in changed:
                    say(f"  {line}")
                rejudged = out_dir / f"{prefix}run.json"
                rejudged.write_text(to_json(result) + "\n", encoding="utf-8")
                doc.update(saved_verdict=before.verdict, changes=changed,
                           rejudged_run=str(rejudged))
            captures = load_captures(result, base)
            out = args.html or out_dir / f"{prefix}summary.html"
            html = write_html(result, out, captures=captures, base=base)
            say(f"summary: {html}  (verdict {result.verdict.upper()})")
            doc.update(scenario=result.scenario_name, lab_id=result.lab_id,
                       verdict=result.verdict, summary=str(html), bundle=None)
            if args.bundle is not None:
                bundle = write_bundle(result, args.bundle, captures=captures, base=base)
                say(f"bundle:  {bundle}")
                doc["bundle"] = str(bundle)
    except (ReportError, RejudgeError) as exc:
        return _failed(args.json, str(exc))
    except OSError as exc:
        return _failed(args.json, f"cannot write the report: {exc}")
    status = 1 if args.rejudge and result.verdict == "fail" else 0
    if args.json:
        emit("report", {"ok": status == 0, **doc})
    return status


def _failed(as_json: bool, message: str) -> int:
    print(f"flexlab report: {message}", file=sys.stderr)
    if as_json:
        emit("report", error_body(USAGE, message))
    return USAGE


def _find(path: Path, base: Path) -> Path | None:
    for candidate in (Path(path), base / path):
        if candidate.is_file():
            return candidate
    return None


if __name__ == "__main__":
    raise SystemExit(run())
