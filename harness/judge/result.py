"""What one scenario run produced: the plain data every report (Allure, JUnit, HTML,
results bundle) is drawn from. No report reads the lab directly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.judge.observed import Observed
from harness.rules.model import Finding
from harness.scenario.drivers import TimelineEvent

__all__ = ["ExpectationResult", "MachineResult", "Outcome", "RunResult", "TimelineEvent"]

# a run or expectation outcome; a rule's own is harness.rules.model.Verdict
Outcome = Literal["pass", "fail", "skip"]


@dataclass
class MachineResult:
    """One machine copy at the end of the run."""

    name: str
    mac: str
    firmware: str
    segment: str
    cluster: str | None
    driver: str
    state: str = "Unknown"
    reasons: list[str] = field(default_factory=list)
    answered_by: list[str] = field(default_factory=list)
    ready_seconds: float | None = None
    powered_at: float | None = None  # wall clock of its last power-on (None: never powered)
    timeline: list[TimelineEvent] = field(default_factory=list)
    console: Path | None = None


@dataclass(frozen=True)
class ExpectationResult:
    """One expectation of the scenario file, judged."""

    kind: Literal["rule", "machine", "cluster", "conflict", "run"]
    subject: str
    description: str
    verdict: Outcome
    detail: str = ""


@dataclass
class RunResult:
    """A whole run: inputs, evidence, judgements."""

    scenario_name: str
    scenario_file: Path | None
    scenario: dict[str, Any]
    tier: str
    lab_id: str
    started: float
    finished: float
    versions: dict[str, str] = field(default_factory=dict)
    machines: list[MachineResult] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    findings: dict[str, list[Finding]] = field(default_factory=dict)  # per segment (pcap)
    pcaps: dict[str, Path] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    error: str | None = None
    observed: Observed | None = None  # the judge's evidence besides the pcaps (re-judging)

    @property
    def duration(self) -> float:
        """Wall time of the run in seconds."""
        return self.finished - self.started

    @property
    def verdict(self) -> Outcome:
        """fail if the run errored or any expectation failed; pass otherwise."""
        if self.error or any(e.verdict == "fail" for e in self.expectations):
            return "fail"
        return "pass"
