"""The registry of tests that show a rule FAIL, read by test_every_rule_can_fail.

A rule that can only ever say PASS or not-applicable is not a check. Each test that
makes a rule fail says so with ``@shows_failing("RULE-N")``; the defect table of
test_defects.py registers its cases by their expected rules. The completeness test
then runs every registered test itself and checks that the named rule really failed
in a report it produced, so a registration cannot outlive the assertion it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


def shows_failing(*rule_ids: str) -> Callable[[F], F]:
    """Mark a test as one that makes each of ``rule_ids`` FAIL in a report it builds."""

    def mark(fn: F) -> F:
        fn.shows_failing = *getattr(fn, "shows_failing", ()), *rule_ids
        return fn

    return mark
