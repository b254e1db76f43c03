"""Judging a saved run again with today's rules and expectations.

A run saves what its judge read (run.json's ``observed``: the scenario, the lab's
addresses, the Control Plane's final state, each machine's progress and power-on time,
capture drop counts, whole-site facts) beside its pcaps. :func:`rejudge` makes the plan
again from that scenario, decodes the pcaps again and calls the same :func:`judge` a
live run calls: a rule fixed or tightened since the run was made gives today's verdict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from harness.errors import FlexlabError
from harness.judge.judge import decode_captures, judge
from harness.judge.result import RunResult
from harness.plan import plan
from harness.scenario.model import Scenario

Find = Callable[[Path], Path | None]


class RejudgeError(FlexlabError):
    """A saved run cannot be judged again (it predates re-judging, or its evidence is
    missing or no longer valid)."""


def rejudge(saved: RunResult, find: Find) -> RunResult:
    """``saved`` judged again; ``find`` locates a saved evidence path (None: missing).

    The run's own error (build, boot or teardown) is kept; every verdict is new."""
    observed = saved.observed
    if observed is None:
        raise RejudgeError(
            f"run {saved.scenario_name} ({saved.lab_id}) saved no 'observed' evidence: it "
            "predates re-judging; run the scenario again to judge it with today's rules")
    try:
        scenario = Scenario.model_validate(observed.scenario)
        site = plan(scenario)
    except (ValidationError, FlexlabError) as exc:
        raise RejudgeError(f"the run's scenario no longer loads, so it cannot be judged "
                           f"with today's rules: {exc}") from exc
    pcaps: dict[str, Path] = {}
    for seg, path in saved.pcaps.items():
        found = find(path)
        if found is None:
            raise RejudgeError(f"pcap of segment {seg!r} not found ({path}): re-judging "
                               "needs every capture the run made")
        pcaps[seg] = found
    captures, problems = decode_captures(pcaps)
    run = dataclasses.replace(saved, error=observed.run_error or next(iter(problems), None))
    return judge(scenario, site, captures, observed, run)


def changes(before: RunResult, after: RunResult) -> list[str]:
    """One line per expectation whose verdict changed, appeared or went away."""
    def verdicts(r: RunResult) -> dict[tuple[str, str, str], str]:
        return {(e.kind, e.subject, e.description): e.verdict for e in r.expectations}

    old, new = verdicts(before), verdicts(after)
    lines = []
    for key in [*old, *(k for k in new if k not in old)]:
        was, now = old.get(key, "absent"), new.get(key, "absent")
        if was != now:
            lines.append(f"[{key[0]}] {key[1]}: {key[2]} — {was} -> {now}")
    return lines
