"""Judge.expect_none: several requirements on one item make one finding naming them all."""

from __future__ import annotations

import pytest

from harness.rules.judge import Judge
from harness.rules.model import Verdict

pytestmark = pytest.mark.unit


def test_problems_become_one_failure_naming_each() -> None:
    j = Judge("OFFER-1")
    j.expect_none(["no option 60", "no option 54"], "proxy OFFER: ", [3, 1], "aa", "10.0.0.2")
    assert j.count == 1 and len(j.failures) == 1
    f = j.failures[0]
    assert f.verdict is Verdict.FAIL and f.frames == (1, 3)
    assert f.message == "proxy OFFER: no option 60; no option 54"


def test_no_problems_count_the_item_clean() -> None:
    j = Judge("OFFER-1")
    j.expect_none([], "proxy OFFER: ")
    assert j.count == 1 and j.failures == []
