"""scripts/suite-timing.py keeps what failed: its JUnit file is in a temporary directory, so
a timing run that failed must name the failing tests in its result, or the failure is lost
(a shard run recorded "1 failed" and nothing else)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from script_module import load_script

pytestmark = pytest.mark.unit


PROJECT = '''
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2, "one is not two"

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_errors(broken):
    pass
'''


def _script() -> ModuleType:
    return load_script("scripts/suite-timing.py", "suite_timing")


def test_failed_and_erroring_tests_are_named_with_their_message(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(PROJECT)
    junit = tmp_path / "junit.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:randomly", "-p", "no:xdist", f"--junitxml={junit}"],
                   cwd=tmp_path, capture_output=True, text=True, check=False)
    script = _script()
    assert script.junit_counts(junit) == {"tests": 3, "failures": 1, "errors": 1,
                                          "skipped": 0}
    failed = script.junit_failed(junit)
    assert len(failed) == 2, failed
    fails = next(x for x in failed if "test_fails" in x)
    errors = next(x for x in failed if "test_errors" in x)
    assert fails.startswith("test_sample::test_fails: ") and "one is not two" in fails
    assert errors.startswith("test_sample::test_errors: ") and "fixture broke" in errors
    assert not [x for x in failed if "test_passes" in x]
