"""The parts every command's parser shares (harness.cli_common): the exit sentence says
each status with its number from harness.exitcodes, and ``--json``'s help names the
format the command really prints."""

from __future__ import annotations

import pytest

from harness.builder import cli_run
from harness.certify import cli as certify_cli
from harness.certify import cli_verify
from harness.cli_common import add_json_flag, command_parser, exit_sentence
from harness.exitcodes import FAIL, INTERRUPTED, OK, USAGE

pytestmark = pytest.mark.unit


def test_exit_sentence_lists_the_statuses_in_order() -> None:
    sentence = exit_sentence({INTERRUPTED: "interrupted", OK: "passed", FAIL: "failed"})
    assert sentence == "Exit 0 passed, 1 failed, 130 interrupted."


def test_command_parser_names_the_command_and_ends_with_its_exits() -> None:
    parser = command_parser("verify", "Check a bundle.", {OK: "VALID", USAGE: "bad input"})
    assert parser.prog == "flexlab verify"
    assert parser.description == "Check a bundle. Exit 0 VALID, 2 bad input."


def test_json_flag_names_the_format_and_what_else_it_changes() -> None:
    parser = command_parser("run", "Run.", {OK: "passed"})
    add_json_flag(parser, "run", also="progress goes to stderr")
    action = parser._option_string_actions["--json"]
    assert action.help == "one JSON document (format flexlab.run/v1) on stdout; " \
        "progress goes to stderr"
    assert parser.parse_args(["--json"]).json is True
    assert parser.parse_args([]).json is False


@pytest.mark.parametrize(("module", "command"), [
    (cli_run, "run"), (certify_cli, "certify"), (cli_verify, "verify")])
def test_each_command_help_states_its_exits_and_format(module: object, command: str) -> None:
    parser = module.build_parser()  # type: ignore[attr-defined]
    assert parser.prog == f"flexlab {command}"
    assert " Exit 0 " in parser.description and parser.description.endswith(".")
    assert f"flexlab.{command}/v1" in parser._option_string_actions["--json"].help
