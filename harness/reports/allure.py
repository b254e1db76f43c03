"""Allure glue for the pytest side: a run's evidence and verdicts on the current test.

``attach_run`` adds one step per phase (with the phase's real start and end
times), one step per rule with its verdict, and attaches the pcaps, logs,
consoles, ladder diagrams and the HTML summary. When no Allure listener is
active (pytest without ``--alluredir``, or plain Python) it does nothing.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.capture.events import Capture
from harness.judge.result import RunResult
from harness.reports.html import load_captures, render_html, rule_rows
from harness.reports.ladder import CaptureIndex, index_captures, machine_ladder, render_svg

_STATUS = {"pass": "passed", "fail": "failed", "not-applicable": "skipped"}


def _listener() -> Any | None:
    """The active allure-pytest listener, or None when Allure is not recording."""
    try:
        import allure_commons
    except ImportError:
        return None
    for plugin in allure_commons.plugin_manager.get_plugins():
        if hasattr(plugin, "allure_logger") and type(plugin).__name__ == "AllureListener":
            return plugin
    return None


def allure_active() -> bool:
    """True when attachments and steps would be recorded."""
    return _listener() is not None


def _step(listener: Any, title: str, start: float | None, stop: float | None,
          status: str, details: str = "") -> None:
    """A finished step with the given times (epoch seconds) and status."""
    import allure_commons
    from allure_commons.model2 import StatusDetails

    uid = str(uuidlib.uuid4())
    hook = allure_commons.plugin_manager.hook
    hook.start_step(uuid=uid, title=title, params={})
    step = listener.allure_logger.get_item(uid)
    hook.stop_step(uuid=uid, exc_type=None, exc_val=None, exc_tb=None)
    if step is not None:
        if start is not None:
            step.start = int(start * 1000)
        if stop is not None:
            step.stop = int(stop * 1000)
        step.status = status
        if details:
            step.statusDetails = StatusDetails(message=details)


def _file(path: Path, name: str, kind: Any, extension: str, base: Path | None) -> bool:
    import allure

    for candidate in (Path(path), (base / path) if base else None):
        if candidate is not None and candidate.is_file():
            allure.attach.file(str(candidate), name=name, attachment_type=kind,
                               extension=extension)
            return True
    return False


def attach_run(
    result: RunResult,
    *,
    captures: Mapping[str, Capture | CaptureIndex] | None = None,
    base: Path | None = None,
) -> bool:
    """Put the run on the current Allure test; return False (and do nothing) when
    Allure is not active."""
    listener = _listener()
    if listener is None:
        return False
    import allure

    for name, start, end in result.phases:
        _step(listener, f"phase: {name} ({end - start:.2f} s)", start, end, "passed")
    for row in rule_rows(result.findings):
        title = f"rule {row.rule_id} [{row.level}]: {row.status}"
        details = "; ".join(row.failures or list(dict.fromkeys(row.notes)))
        status = _STATUS.get(row.status, "skipped")
        _step(listener, title, result.finished, result.finished, status, details)
    indexes = index_captures(load_captures(result, base) if captures is None else captures)
    for seg, pcap in result.pcaps.items():
        _file(pcap, f"pcap {seg}", allure.attachment_type.PCAP, "pcap", base)
    for log in result.logs:
        _file(log, f"log {Path(log).name}", allure.attachment_type.TEXT, "log", base)
    for m in result.machines:
        if m.console is not None:
            _file(m.console, f"console {m.name}", allure.attachment_type.TEXT, "log", base)
        svg = render_svg(machine_ladder(result, m, indexes))
        allure.attach(svg, name=f"ladder {m.name}", attachment_type=allure.attachment_type.SVG)
    allure.attach(
        render_html(result, captures=indexes, link=lambda p: Path(p).name),
        name="summary",
        attachment_type=allure.attachment_type.HTML,
    )
    return True
