"""Loading scenario files strictly: every problem is reported as ``file:line: message``.

YAML is composed into nodes first so that each value's line is known;
duplicate keys are errors (plain YAML loaders silently keep the last one);
pydantic validates the shape and :mod:`harness.scenario.checks` the
cross-references. Nothing is built here.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from harness.errors import FlexlabError
from harness.scenario.checks import Loc, check
from harness.scenario.model import Scenario


class ScenarioError(FlexlabError):
    """A scenario file is invalid; ``str()`` is ``file:line: message``."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


def _lines(node: yaml.Node, path: Path, prefix: Loc = ()) -> dict[Loc, int]:
    """Map each value's path to its 1-based line; raise on duplicate mapping keys."""
    out: dict[Loc, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise ScenarioError(path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            seen.add(key)
            out.update(_lines(value_node, path, (*prefix, key)))
            out[(*prefix, key)] = key_node.start_mark.line + 1  # the key's line, not the value's
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out.update(_lines(item, path, (*prefix, index)))
    return out


def _line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """Line of the deepest known prefix of ``loc`` (pydantic may name a missing key)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1


def _describe(error: ErrorDetails) -> str:
    loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {error['loc'][-1]!r} at {loc}"
    if kind == "missing":
        return f"missing required key {loc}"
    msg = error["msg"].removeprefix("Value error, ")
    return f"{loc}: {msg}"


def parse_scenario(text: str, path: Path | str = "<string>") -> Scenario:
    """Validate scenario ``text``; raise ScenarioError (file:line) on the first problem."""
    path = Path(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ScenarioError(path, line, f"not valid YAML: {exc.problem}") from None
    if node is None or not isinstance(data, dict):
        raise ScenarioError(path, 1, "a scenario file is a YAML mapping (name:, segments:, …)")
    lines = _lines(node, path)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not str(p).startswith("function-"))
        raise ScenarioError(path, _line_of(lines, loc), _describe(first)) from None
    problems = check(scenario)
    if problems:
        loc, message = problems[0]
        raise ScenarioError(path, _line_of(lines, loc), message)
    return scenario


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(path, 0, f"cannot read: {exc.strerror}") from None
    return parse_scenario(text, path)
