"""What every ``flexlab`` command's argument parser says the same way (docs/CLI.md): its
usage line names it as ``flexlab <command>``, its description ends with what each exit
status means for this command, and its ``--json`` flag names the format the command
prints. Written once here so the help cannot drift from :mod:`harness.exitcodes` or from
the ``format`` key :func:`harness.cliout.emit` puts in the document."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from harness.cliout import format_name


def exit_sentence(exits: Mapping[int, str]) -> str:
    """``Exit 0 <meaning>, 1 <meaning>, ….``: the statuses a command uses, in order, each
    with what it means for that command (the numbers come from harness.exitcodes)."""
    return "Exit " + ", ".join(f"{status} {meaning}" for status, meaning in
                               sorted(exits.items())) + "."


def command_parser(command: str, about: str, exits: Mapping[int, str],
                   **options: Any) -> argparse.ArgumentParser:
    """The parser of ``flexlab <command>``: ``about`` says what it does, ``exits`` what
    each of its exit statuses means; ``options`` go to ArgumentParser as they are."""
    return argparse.ArgumentParser(prog=f"flexlab {command}",
                                   description=f"{about} {exit_sentence(exits)}", **options)


def add_json_flag(parser: argparse.ArgumentParser, command: str, *, also: str = "") -> None:
    """``--json``: one document on stdout whose format is ``flexlab.<command>/v1``;
    ``also`` adds what else the flag changes for this command (where progress goes)."""
    help_text = f"one JSON document (format {format_name(command)}) on stdout"
    parser.add_argument("--json", action="store_true",
                        help=f"{help_text}; {also}" if also else help_text)
