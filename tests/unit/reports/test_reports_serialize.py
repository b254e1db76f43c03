"""run.json round trip: everything a report reads survives to_json/from_json."""

from __future__ import annotations

import dataclasses
import json

import pytest

from harness.judge.result import RunResult
from harness.reports.errors import RunFileError
from harness.reports.serialize import from_json, to_json
from harness.rules.model import Verdict

pytestmark = pytest.mark.unit


def test_round_trip_is_lossless(sample_run: RunResult) -> None:
    back = from_json(to_json(sample_run))
    assert back == sample_run
    assert back.verdict == "fail"
    assert any(f.verdict is Verdict.FAIL for f in back.findings["lan"])
    assert back.machines[3].timeline[2].peer == "10.0.0.1"


def test_json_carries_derived_fields_for_readers_without_flexlab(sample_run: RunResult) -> None:
    data = json.loads(to_json(sample_run))
    assert data["verdict"] == "fail"
    assert data["duration"] == pytest.approx(42.5)
    assert data["findings"]["lan"][0]["level"] in ("MUST", "SHOULD", "MAY")


def test_reads_the_plain_asdict_dump_the_runner_wrote_before(sample_run: RunResult) -> None:
    legacy = dataclasses.asdict(sample_run)
    legacy["verdict"] = sample_run.verdict
    text = json.dumps(legacy, default=str)
    assert from_json(text) == sample_run


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{not json", "not valid JSON"), ("[]", "JSON object"), ('{"lab_id": "x"}', "scenario_name")],
)
def test_bad_input_says_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(RunFileError, match=needle):
        from_json(text)
