"""``flexlab run --json --junit`` on the smoke scenario: one ``flexlab.run/v1`` document
whose run passed, with the documented keys, and a JUnit file with one case per
expectation and per rule of each segment."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.needs_root,
              pytest.mark.needs_binary("dnsmasq", how="apt-get install dnsmasq-base")]

ROOT = Path(__file__).resolve().parents[3]


def test_run_json_and_junit(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    res = subprocess.run([str(Path(sys.executable).with_name("flexlab")), "run",
                          str(ROOT / "scenarios" / "smoke.yaml"), "--reports", str(tmp_path),
                          "--json", "--junit", str(junit)],
                         capture_output=True, text=True, timeout=600)
    doc = json.loads(res.stdout)
    assert res.returncode == 0, (doc, res.stderr[-3000:])
    assert doc["format"] == "flexlab.run/v1" and doc["ok"] and doc["junit"] == str(junit)
    (run,) = doc["runs"]
    assert run["verdict"] == "pass" and run["scenario"] == "smoke" and run["error"] is None
    assert set(run) == {"scenario", "file", "tier", "lab_id", "verdict", "duration_s",
                        "error", "expectations", "rules", "reports"}
    assert all(Path(p).is_file() for p in run["reports"].values())
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "smoke"
    cases = suite.findall("testcase")
    saved = json.loads(Path(run["reports"]["json"]).read_text())
    rule_ids = {(seg, f["rule_id"]) for seg, fs in saved["findings"].items() for f in fs}
    rule_cases = [c for c in cases if ".rules." in (c.get("classname") or "")]
    assert rule_ids and len(rule_cases) == len(rule_ids)
    assert len(cases) == len(run["expectations"]) + len(rule_ids)
    assert suite.get("failures") == "0"
