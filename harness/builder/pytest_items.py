"""pytest collects scenario files: each ``scenarios/**/*.yaml`` becomes one test named after
the scenario, carrying its tier marker, so fixtures, markers, xdist and Allure keep working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.judge.result import RunResult
from harness.plan.planner import proxy_kind
from harness.scenario.loader import ScenarioError, load_scenario
from harness.scenario.model import Scenario


class ScenarioFailed(Exception):
    """A scenario ran and some expectation failed; carries the run for the report."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.scenario_name)
        self.result = result


def is_scenario_file(path: Path, rootdir: Path) -> bool:
    """Scenario files live under scenarios/ and end in .yaml."""
    try:
        rel = path.relative_to(rootdir)
    except ValueError:
        return False
    return path.suffix == ".yaml" and rel.parts[:1] == ("scenarios",)


class ScenarioFile(pytest.File):
    """One scenario file: yields a single :class:`ScenarioItem` (or a broken-file item)."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as exc:
            yield BrokenScenarioItem.from_parent(self, name=self.path.stem, error=exc)
            return
        item = ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)
        item.add_marker(getattr(pytest.mark, scenario.tier))
        run = (self.config.getoption("boot_proxy_image", None),
               self.config.getoption("boot_proxy_kind", None))
        if any(proxy_kind(p, scenario.tier, *run)[0] == "container" for p in scenario.proxies):
            item.add_marker(pytest.mark.needs_docker)
        yield item


class BrokenScenarioItem(pytest.Item):
    """A scenario file that does not load: fails with its file:line message."""

    def __init__(self, *, error: ScenarioError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker(pytest.mark.unit)

    def runtest(self) -> None:
        """Always fails: the file is invalid."""
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        """Just the file:line message."""
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Point at the offending line."""
        return self.path, self.error.line - 1, f"scenario file {self.path.name}"


class ScenarioItem(pytest.Item):
    """Runs one scenario with :class:`ScenarioRunner` and judges its expectations."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        """Run, write reports, attach evidence; fail if any expectation failed."""
        from harness.builder.reporting import publish
        from harness.builder.runner import ScenarioRunner

        reports = Path(self.config.getoption("flexlab_reports"))
        runner = ScenarioRunner(self.scenario, reports_dir=reports, scenario_file=self.path,
                                boot_proxy_image=self.config.getoption("boot_proxy_image"),
                                boot_proxy_kind=self.config.getoption("boot_proxy_kind"))
        result = runner.run()
        publish(result, reports, runner.captures)
        if result.verdict == "fail":
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        """The failed expectations, one per line, as a network engineer reads them."""
        if isinstance(excinfo.value, ScenarioFailed):
            result = excinfo.value.result
            lines = [f"scenario {result.scenario_name} (lab {result.lab_id}) failed:"]
            if result.error:
                lines.append(f"  run error: {result.error}")
            for exp in result.expectations:
                if exp.verdict == "fail":
                    lines.append(f"  ✗ [{exp.kind}] {exp.subject}: {exp.description} — "
                                 f"{exp.detail}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the scenario comes from."""
        return self.path, 0, f"scenario {self.scenario.name}"
