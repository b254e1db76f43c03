"""Publishing a run: the report files, and the Allure attachments when Allure is active."""

from __future__ import annotations

from pathlib import Path

from harness.capture.events import Capture
from harness.judge.result import RunResult
from harness.reports import write_reports
from harness.reports.allure import attach_run


def run_dir(result: RunResult, reports: Path) -> Path:
    """Where one run's reports go: reports/runs/<scenario>-<lab id>/."""
    return reports / "runs" / f"{result.scenario_name}-{result.lab_id}"


def publish(result: RunResult, reports: Path,
            captures: dict[str, Capture] | None = None) -> dict[str, Path]:
    """Write run.json, the HTML summary and the results bundle; attach them to Allure
    (a no-op when Allure is not recording).

    ``captures`` are the decoded pcaps the run already judged (saves decoding twice).
    """
    directory = run_dir(result, reports)
    directory.mkdir(parents=True, exist_ok=True)
    paths = write_reports(result, directory, captures=captures)
    attach_run(result, captures=captures)
    return paths
