"""Exit statuses shared by every ``flexlab`` command (docs/CLI.md), so a CI job or a
script can tell a failed verdict from a broken command line or a broken host without
reading the output.

- 0 ``OK``: the command did its job; a check or run passed
- 1 ``FAIL``: the verdict is fail (a rule, an expectation, a signature)
- 2 ``USAGE``: the command line or an input file cannot be used
- 3 ``INCOMPLETE``: no verdict: the host or an outside service stopped the command
  (missing program, not root, daemon down, a check that could not run)
- 130 ``INTERRUPTED``: Ctrl-C (SIGINT) or SIGTERM; clean-up ran before exiting
"""

from __future__ import annotations

from harness.errors import ComponentError, DependencyError, FlexlabError, LabError, WaitTimeout

OK = 0
FAIL = 1
USAGE = 2
INCOMPLETE = 3
INTERRUPTED = 130

MEANING = {
    OK: "ok / pass",
    FAIL: "verdict fail",
    USAGE: "bad command line or input",
    INCOMPLETE: "incomplete: environment or infrastructure error (no verdict)",
    INTERRUPTED: "interrupted (SIGINT or SIGTERM), clean-up done",
}


# errors of the host or of a service, not of what the user gave: no verdict (3)
HOST_ERRORS = (DependencyError, LabError, ComponentError, WaitTimeout)


def status_of(exc: FlexlabError) -> int:
    """The exit status for an error that stopped a command: a missing program or
    privilege, a lab that could not be built, a daemon that did not start or answer is
    the host's (3); any other error is taken as bad input (2) unless its class says
    otherwise with an ``exit_status`` attribute."""
    explicit = getattr(exc, "exit_status", None)
    if isinstance(explicit, int):
        return explicit
    if isinstance(exc, HOST_ERRORS):
        return INCOMPLETE
    return USAGE
