"""``flexlab report --rejudge``: a saved run judged again with the rules of the flexlab
that judges it, on a committed bundle of a real run (fixtures/reports/rejudge)."""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.reports.cli import run
from harness.rules.analysis import Analysis
from harness.rules.judge import CHECKS, Judge

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
BUNDLE = ROOT / "fixtures" / "reports" / "rejudge" / "flexlab-site-dhcp-pxeclient-flmgcex.tar.gz"
SAMPLE = ROOT / "fixtures" / "reports" / "sample-run"


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative evidence paths resolve from the current directory first: not this repo's."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A copy of the committed bundle (outputs are written beside it)."""
    return Path(shutil.copy(BUNDLE, tmp_path / BUNDLE.name))


def rejudged(directory: Path) -> dict[str, str]:
    """Each expectation's verdict in the re-judged run.json, by subject."""
    doc = json.loads((directory / "rejudged-run.json").read_text())
    return {e["subject"]: e["verdict"] for e in doc["expectations"]}


def test_todays_rules_give_the_saved_verdicts_back(
        bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(bundle), "--rejudge"]) == 0
    out = capsys.readouterr().out
    assert "saved verdict PASS" in out and out.count(" -> ") == 0
    verdicts = rejudged(bundle.parent)
    assert verdicts["SITE-2"] == "pass" and verdicts["MUST"] == "pass"
    assert (bundle.parent / "rejudged-summary.html").is_file()


def test_a_rule_changed_since_the_run_gives_todays_verdict(
        bundle: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SITE-2 relaxed (say, a later flexlab accepted option 60 from a site server): the
    saved FAIL of SITE-2 no longer happens, so the expected violation is not seen."""
    def relaxed(an: Analysis, j: Judge) -> None:
        j.checked(1, "site servers may send option 60 (relaxed)")

    monkeypatch.setitem(CHECKS, "SITE-2", (relaxed, CHECKS["SITE-2"][1]))
    assert run([str(bundle), "--rejudge"]) == 1
    out = capsys.readouterr().out
    assert "saved verdict PASS" in out and "FAIL" in out
    assert "SITE-2: SITE-2 fails (an expected violation) — pass -> fail" in out
    assert rejudged(bundle.parent)["SITE-2"] == "fail"


def unpacked(directory: Path, edit: Callable[[dict[str, Any]], None] = lambda _: None) -> Path:
    """The bundle unpacked as a run directory (meta/run.json beside the evidence),
    its run.json changed by ``edit``; returns the run.json's directory."""
    with tarfile.open(BUNDLE) as tar:
        tar.extractall(directory, filter="data")
    run_json = directory / "meta" / "run.json"
    meta = json.loads(run_json.read_text())
    meta["pcaps"] = {"lan": "../evidence/pcaps/lan.pcap"}
    edit(meta)
    run_json.write_text(json.dumps(meta))
    return run_json.parent


def test_a_stale_saved_verdict_is_replaced(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A run dir whose run.json says FAIL (as an older rule judged it) passes today; the
    saved findings are not read, the pcap is judged again."""
    def older(meta: dict[str, Any]) -> None:
        for e in meta["expectations"]:
            if e["subject"] == "MUST":
                e["verdict"], e["detail"] = "fail", "OFFER-10: judged by an older rule"
        meta["findings"] = {}

    assert run([str(unpacked(tmp_path, older)), "--rejudge"]) == 0
    assert "MUST: every MUST rule holds (besides the expected violations SITE-2) — " \
           "fail -> pass" in capsys.readouterr().out


def test_a_run_from_before_rejudging_says_so(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE, copy)
    assert run([str(copy), "--rejudge"]) == 2
    assert "predates re-judging" in capsys.readouterr().err


def test_a_missing_pcap_is_an_error_not_a_pass(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    meta = unpacked(tmp_path)
    (tmp_path / "evidence" / "pcaps" / "lan.pcap").unlink()
    assert run([str(meta / "run.json"), "--rejudge"]) == 2
    assert "pcap of segment 'lan' not found" in capsys.readouterr().err


def test_without_rejudge_a_bundle_regenerates_its_summary(
        bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(bundle)]) == 0
    assert "verdict PASS" in capsys.readouterr().out
    assert "SITE-2" in (bundle.parent / "summary.html").read_text()
