"""Publishing a run: the report files, and the Allure attachments when Allure is active."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.capture.events import Capture
from harness.scenario.result import RunResult


def run_dir(result: RunResult, reports: Path) -> Path:
    """Where one run's reports go: reports/runs/<scenario>-<lab id>/."""
    return reports / "runs" / f"{result.scenario_name}-{result.lab_id}"


def _plain(result: RunResult) -> dict[str, Any]:
    data = asdict(result)
    data["verdict"] = result.verdict
    data["duration"] = result.duration
    return data


def publish(result: RunResult, reports: Path,
            captures: dict[str, Capture] | None = None) -> dict[str, Path]:
    """Write run.json, the HTML summary and the results bundle; attach them to Allure.

    ``captures`` are the decoded pcaps the run already judged (saves decoding twice).
    """
    directory = run_dir(result, reports)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        from harness.reports import write_reports
    except ImportError:
        path = directory / "run.json"
        path.write_text(json.dumps(_plain(result), indent=2, default=str))
        return {"json": path}
    paths = write_reports(result, directory, captures=captures)
    try:
        from harness.reports.allure import attach_run
    except ImportError:
        return paths
    attach_run(result, captures=captures)
    return paths
