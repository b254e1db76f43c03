"""The plan package's errors."""

from __future__ import annotations

from collections.abc import Sequence

from harness.errors import FlexlabError


class PlanError(FlexlabError):
    """A scenario cannot be wired; ``problems`` lists every reason, in scenario order.

    Raised before anything is built, so a scenario with three mistakes reports three,
    not one per attempt at a lab."""

    def __init__(self, scenario: str, problems: Sequence[str]) -> None:
        self.scenario = scenario
        self.problems = tuple(problems)
        count = f"{len(self.problems)} problem" + ("s" if len(self.problems) != 1 else "")
        super().__init__(f"scenario {scenario!r} cannot be wired ({count}):\n"
                         + "\n".join(f"  - {p}" for p in self.problems))
