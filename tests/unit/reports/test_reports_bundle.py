"""The results bundle, read back with the stdlib and yaml.safe_load only."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from harness.judge.result import RunResult
from harness.reports.bundle import write_bundle

pytestmark = pytest.mark.unit


@pytest.fixture
def unpacked(sample_run: RunResult, tmp_path: Path) -> tuple[Path, Path]:
    bundle = write_bundle(sample_run, tmp_path / "bundles")
    out = tmp_path / "unpacked"
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(out, filter="data")
    return bundle, out


def test_layout_and_name(unpacked: tuple[Path, Path]) -> None:
    bundle, out = unpacked
    assert bundle.name == "flexlab-sample-flsample.tar.gz"
    assert not list(bundle.parent.glob("*.partial"))
    for rel in (
        "README.txt", "meta/run.json", "results/results.yaml", "results/junit.xml",
        "results/rules.yaml", "evidence/summary.html",
        "evidence/pcaps/lan.pcap", "evidence/logs/bootproxy-bp1.log",
        "evidence/logs/site-dhcp0.log", "evidence/consoles/bios.log",
        "evidence/ladders/bios.svg", "evidence/ladders/late.svg",
    ):
        assert (out / rel).is_file(), rel
    readme = (out / "README.txt").read_text()
    assert "results/results.yaml" in readme
    assert "CONFORMANCE.md" not in readme  # not shipped: rules.yaml states the rules


def test_rules_and_junit_inside(unpacked: tuple[Path, Path], sample_run: RunResult) -> None:
    import xml.etree.ElementTree as ET

    rules = yaml.safe_load((unpacked[1] / "results/rules.yaml").read_text())["rules"]
    judged = {f.rule_id for fs in sample_run.findings.values() for f in fs}
    assert {r["id"] for r in rules} == judged
    offer3 = next(r for r in rules if r["id"] == "OFFER-3")
    assert offer3["level"] == "MUST" and offer3["statement"] and offer3["source"]
    junit = ET.parse(unpacked[1] / "results/junit.xml").getroot()
    names = {c.get("name") for c in junit.iter("testcase")}
    assert "OFFER-3" in names
    assert int(junit.get("failures", "0")) >= 1


def test_results_yaml_lists_every_check(unpacked: tuple[Path, Path], sample_run: RunResult) -> None:
    doc = yaml.safe_load((unpacked[1] / "results/results.yaml").read_text())
    assert doc["verdict"] == "fail" and doc["lab_id"] == "flsample"
    checks = doc["checks"]
    for c in checks:
        assert set(c) >= {"name", "kind", "status", "message"}
        assert c["status"] in ("passed", "failed", "skipped")  # Sonobuoy's words
    assert {c["kind"] for c in checks} == {"rule", "expectation"}
    exps = [c for c in checks if c["kind"] == "expectation"]
    assert [c["expectation"] for c in exps] == [e.kind for e in sample_run.expectations]
    offer3 = next(c for c in checks if c["name"] == "OFFER-3")
    assert offer3["status"] == "failed" and offer3["level"] == "MUST"
    assert offer3["findings"][0]["frames"] == [31, 33]
    skip = next(c for c in exps if c["expectation"] == "cluster")
    assert skip["status"] == "skipped"
    assert doc["summary"]["failed"] == sum(c["status"] == "failed" for c in checks) == 3
    assert doc["status"] == "failed"


def test_meta_has_resolved_config_versions_and_times(unpacked: tuple[Path, Path]) -> None:
    meta = json.loads((unpacked[1] / "meta/run.json").read_text())
    assert meta["scenario"]["timeout"] == 120.0 and meta["lab_id"] == "flsample"
    for key in ("flexlab", "python", "kernel", "dnsmasq", "qemu", "docker"):
        assert meta["versions"].get(key), key
    assert meta["started_iso"].startswith("2025-11-24T16:00:00")
    assert meta["missing_evidence"] == []
    assert meta["evidence"]["summary"] == "evidence/summary.html"


def test_summary_inside_links_to_evidence_inside(unpacked: tuple[Path, Path]) -> None:
    ev = unpacked[1] / "evidence"
    html = (ev / "summary.html").read_text()
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert hrefs
    for h in hrefs:
        assert (ev / unquote(h)).is_file(), h


def test_missing_evidence_is_recorded_not_fatal(sample_run: RunResult, tmp_path: Path) -> None:
    sample_run.logs.append(tmp_path / "gone.log")
    bundle = write_bundle(sample_run, tmp_path / "b")
    with tarfile.open(bundle, "r:gz") as tar:
        f = tar.extractfile("meta/run.json")
        assert f is not None
        meta = json.loads(f.read())
    assert meta["missing_evidence"] == [str(tmp_path / "gone.log")]


def test_readme_names_only_files_the_bundle_ships(unpacked: tuple[Path, Path]) -> None:
    out = unpacked[1]
    readme = (out / "README.txt").read_text()
    cited = set(re.findall(r"[\w./-]+\.(?:md|yaml|yml|json|xml|html|txt|svg|pcap)\b", readme))
    assert {"results/results.yaml", "results/junit.xml", "meta/run.json"} <= cited
    shipped = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert cited - shipped == set(), "README.txt cites files the bundle does not ship"


def test_junit_inside_has_a_case_per_check_with_its_status(unpacked: tuple[Path, Path]) -> None:
    import xml.etree.ElementTree as ET

    out = unpacked[1]
    checks = yaml.safe_load((out / "results/results.yaml").read_text())["checks"]
    cases = list(ET.parse(out / "results/junit.xml").getroot().iter("testcase"))
    assert len(cases) == len(checks)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    assert skipped == sum(c["status"] == "skipped" for c in checks)
