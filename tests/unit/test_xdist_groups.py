"""``@pytest.mark.xdist_group`` really groups under ``--dist loadgroup``: the suite relies on
it to run host-wide tests one at a time (conftest.py). With pytest 9.2 and pytest-xdist 3.8
it silently did not (xdist's @group suffix never reached the node ids), and two tests that
share the host's loopback ran at once; pyproject.toml keeps pytest below 9.2."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_grouped_tests_carry_their_group_and_share_one_worker(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grouped="""
        import os
        import pytest

        together = pytest.mark.xdist_group("shared")

        @together
        def test_first(): print("WORKER", os.environ["PYTEST_XDIST_WORKER"])

        def test_other(): pass

        @together
        def test_second(): print("WORKER", os.environ["PYTEST_XDIST_WORKER"])
    """)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-v", "-rA",
                                           "-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    # the scheduler groups by this suffix: without it the two go to any worker
    result.stdout.fnmatch_lines(["*test_grouped.py::test_first@shared*",
                                 "*test_grouped.py::test_second@shared*"])
    workers = {line.split()[-1] for line in result.stdout.lines
               if line.startswith("WORKER ")}
    assert len(workers) == 1, workers
