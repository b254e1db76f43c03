"""write_reports and ``flexlab report``: files regenerate from a run.json alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.judge.result import RunResult
from harness.reports import write_reports
from harness.reports.cli import run
from harness.reports.serialize import load

pytestmark = pytest.mark.unit
FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "reports" / "sample-run"


def test_write_reports_writes_three_files(sample_run: RunResult, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "runs" / "sample-flsample"
    paths = write_reports(sample_run, out)
    assert set(paths) == {"json", "html", "bundle"}
    assert all(p.is_file() and p.parent == out for p in paths.values())
    assert load(paths["json"]) == sample_run


def test_report_command_regenerates_from_a_copied_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(FIXTURE, copy)
    monkeypatch.chdir(tmp_path)  # relative evidence paths resolve beside run.json
    assert run([str(copy / "run.json"), "--bundle", str(tmp_path / "b")]) == 0
    html = (copy / "summary.html").read_text()
    assert "OFFER-3" in html and 'href="lan.pcap"' in html
    assert "<svg" in html and "site DHCP" in html  # ladders drawn from the copied pcap
    assert list((tmp_path / "b").glob("flexlab-sample-*.tar.gz"))
    assert "verdict FAIL" in capsys.readouterr().out


def test_report_command_explains_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "run.json"
    bad.write_text("{}")
    assert run([str(bad)]) == 2
    assert "not a flexlab run.json" in capsys.readouterr().err
    assert run([str(tmp_path / "missing.json")]) == 2
