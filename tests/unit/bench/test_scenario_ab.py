"""bench/scenario_ab.py: a run that did not pass is counted apart, never as a time."""

from __future__ import annotations

import pytest

from bench.scenario_ab import main, summarise

pytestmark = pytest.mark.unit


def test_a_run_that_did_not_pass_is_counted_apart() -> None:
    runs = [{"wall_s": 50.0, "machines_s": 40.0, "verdict": "pass"},
            {"wall_s": 300.0, "machines_s": None, "verdict": "fail"},
            {"wall_s": 60.0, "machines_s": 44.0, "verdict": "pass"},
            {"wall_s": None, "machines_s": None, "verdict": "error"}]
    s = summarise(runs)
    assert s["wall_s"] == {"median": 55.0, "min": 50.0, "max": 60.0, "n": 2}
    assert s["machines_s"]["median"] == 42.0
    assert s["runs_not_passed"] == 2
    assert s["verdicts"] == ["pass", "fail", "pass", "error"]


def test_a_missing_scenario_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["no/such.yaml", "--config", "a=.", "--results", "/dev/null"])
    assert "no such scenario file: no/such.yaml" in capsys.readouterr().err
