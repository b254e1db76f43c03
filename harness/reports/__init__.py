"""Reports of a run: ladder diagrams, the HTML summary, the results bundle, Allure glue.

``write_reports`` is what the scenario runner calls after a run; everything is
drawn from the :class:`~harness.judge.result.RunResult` alone, so
``flexlab report run.json`` can regenerate the same files later.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.capture.events import Capture
from harness.judge.result import RunResult
from harness.reports.bundle import write_bundle
from harness.reports.errors import ReportError, RunFileError
from harness.reports.html import load_captures, write_html
from harness.reports.ladder import index_captures
from harness.reports.serialize import from_json, load, to_json

__all__ = [
    "ReportError",
    "RunFileError",
    "from_json",
    "load",
    "to_json",
    "write_bundle",
    "write_html",
    "write_reports",
]


def write_reports(
    result: RunResult,
    directory: Path,
    base: Path | None = None,
    captures: Mapping[str, Capture] | None = None,
) -> dict[str, Path]:
    """Write run.json, summary.html and the results bundle into ``directory``.

    Returns {"json": ..., "html": ..., "bundle": ...}. The pcaps are decoded once
    and shared by the HTML and the bundle (pass ``captures`` when the caller has
    decoded them already). ``base`` resolves relative evidence paths that do not
    resolve from the current directory.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        run_json = directory / "run.json"
        run_json.write_text(to_json(result) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write {directory}/run.json: {exc.strerror}") from exc
    indexes = index_captures(load_captures(result, base) if captures is None else captures)
    html = write_html(result, directory / "summary.html", captures=indexes, base=base)
    bundle = write_bundle(result, directory, captures=indexes, base=base)
    return {"json": run_json, "html": html, "bundle": bundle}
