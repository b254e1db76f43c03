"""Loading scenario files strictly: every problem is reported as ``file:line: message``.

YAML is composed into nodes first so that each value's line is known;
duplicate keys are errors (plain YAML loaders silently keep the last one), reported
with the rest;
pydantic validates the shape and :mod:`harness.scenario.checks` the
cross-references. Nothing is built here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from harness.errors import FlexlabError
from harness.scenario.checks import Declared, Loc, check
from harness.scenario.model import STEP_ACTIONS, Scenario
from harness.scenario.salvage import IndexMaps, file_loc, salvage


@dataclass(frozen=True)
class Problem:
    """One problem in a scenario file, at a 1-based line."""

    line: int
    message: str


class ScenarioError(FlexlabError):
    """A scenario file is invalid; ``str()`` is one ``file:line: message`` per problem,
    in file order. ``line`` and ``message`` are the first problem's."""

    def __init__(self, path: Path | str, line: int, message: str,
                 more: Sequence[Problem] = ()) -> None:
        self.problems = [Problem(line, message), *more]
        super().__init__("\n".join(f"{path}:{p.line}: {p.message}" for p in self.problems))
        self.path = str(path)
        self.line = line
        self.message = message

    @classmethod
    def of(cls, path: Path | str, problems: Sequence[Problem]) -> ScenarioError:
        """One error carrying every problem (at least one)."""
        first, *more = problems
        return cls(path, first.line, first.message, more)


def _lines(node: yaml.Node, duplicates: list[Problem], prefix: Loc = ()) -> dict[Loc, int]:
    """Map each value's path to its 1-based line; each duplicate mapping key is added to
    ``duplicates`` (the last value is the one validated, as YAML loaders keep it, so its
    lines are the ones kept)."""
    out: dict[Loc, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                duplicates.append(Problem(key_node.start_mark.line + 1,
                                          f"duplicate key {key!r}"))
            seen.add(key)
            out.update(_lines(value_node, duplicates, (*prefix, key)))
            out[(*prefix, key)] = key_node.start_mark.line + 1  # the key's line, not the value's
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.update(_lines(item, duplicates, (*prefix, index)))
    return out


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of the deepest known prefix of ``loc`` (pydantic may name a missing key)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def _loc(error: ErrorDetails) -> Loc:
    """The error's path in the file: pydantic's validator markers and a step's union
    tag (``steps.0.set_fault.fault``) are not keys of the file."""
    loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
    if len(loc) >= 3 and loc[0] == "steps" and loc[2] in STEP_ACTIONS:
        loc = (*loc[:2], *loc[3:])
    return loc


def _describe(error: ErrorDetails, data: dict[str, object]) -> str:
    loc = _loc(error)
    kind = error["type"]
    if loc[:1] == ("steps",) and len(loc) >= 2 and isinstance(loc[1], int):
        step = _describe_step(error, loc, data)
        if step:
            return step
    where = ".".join(str(p) for p in loc)
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r} at {where}"
    if kind == "missing":
        return f"missing required key {where}"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}"


def _describe_step(error: ErrorDetails, loc: Loc, data: dict[str, object]) -> str | None:
    """A step's shape error in the words of its action: what it needs, what it takes."""
    index = loc[1]
    assert isinstance(index, int)
    steps = data.get("steps")
    raw = steps[index] if isinstance(steps, list) and index < len(steps) else None
    action = raw.get("action") if isinstance(raw, dict) else None
    what = f"step {index + 1}"
    kind = error["type"]
    known = ", ".join(STEP_ACTIONS)
    if kind == "union_tag_invalid":
        return f"{what}: unknown action {action!r}; one of {known}"
    if kind == "union_tag_not_found":
        return f"{what} needs action: (one of {known})"
    cls = STEP_ACTIONS.get(action) if isinstance(action, str) else None
    if cls is None or len(loc) < 3:
        return None
    if kind == "missing" and len(loc) == 3:
        return f"{what}: {action} needs {loc[2]}:"
    if kind == "extra_forbidden" and len(loc) == 3:
        return (f"{what}: {action} does not take {loc[2]!r} (it takes: "
                f"{', '.join(cls.model_fields)})")
    field = ".".join(str(p) for p in loc[2:])
    if kind == "extra_forbidden":
        return f"{what}: unknown key {loc[-1]!r} at {field}"
    if kind == "missing":
        return f"{what}: missing required key {field}"
    return f"{what}: {field}: {error['msg'].removeprefix('Value error, ')}"


def parse_scenario(text: str, path: Path | str = "<string>") -> Scenario:
    """Validate scenario ``text``; raise ScenarioError with every problem (file:line)."""
    path = Path(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ScenarioError(path, line, f"not valid YAML: {exc.problem}") from None
    if node is None or not isinstance(data, dict):
        raise ScenarioError(path, 1, "a scenario file is a YAML mapping (name:, segments:, …)")
    problems: list[Problem] = []
    lines = _lines(node, problems)
    maps: IndexMaps = {}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        problems += [Problem(_line_of(lines, _loc(e)), _describe(e, data))
                     for e in exc.errors()]
        # cross-check what is valid, resolving names against everything the file declares
        scenario, maps = salvage(Scenario, data)
    for loc, message in check(scenario, Declared.in_file(data)):
        at = file_loc(loc, maps)
        if at[:1] == ("steps",) and at != loc:
            message = re.sub(r"^step \d+", f"step {int(at[1]) + 1}", message)
        problems.append(Problem(_line_of(lines, at), message))
    if problems:
        ordered = sorted(dict.fromkeys(problems), key=lambda p: p.line)  # stable in a line
        raise ScenarioError.of(path, ordered)
    return scenario


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(path, 0, f"cannot read: {exc.strerror}") from None
    return parse_scenario(text, path)
