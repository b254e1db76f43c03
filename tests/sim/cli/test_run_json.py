"""``flexlab run --json --junit`` on the smoke scenario: one ``flexlab.run/v1`` document
whose run passed, with the documented keys, and a JUnit file with one case per
expectation and per rule of each segment. And the same run with the Docker engine gone
(``DOCKER_HOST`` at a socket nothing serves): no verdict, exit 3, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.exitcodes import INCOMPLETE
from harness.lab.cleanup import lab_namespaces, labelled_containers
from harness.lab.registry import Registry

pytestmark = [pytest.mark.sim, pytest.mark.needs_root,
              pytest.mark.needs_binary("dnsmasq", how="apt-get install dnsmasq-base")]

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.needs_docker
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
                        "error", "incomplete", "expectations", "rules", "reports"}
    assert run["incomplete"] is False
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


def test_docker_gone_mid_run_is_incomplete_and_cleaned_up(tmp_path: Path) -> None:
    """The lab, Control Plane and site DHCP are up when the Boot Proxy container cannot be
    started: the host's fault, so 3 (not 1, a verdict), and the lab is gone."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'no-docker.sock'}"}
    res = subprocess.run([str(Path(sys.executable).with_name("flexlab")), "run",
                          str(ROOT / "scenarios" / "smoke.yaml"), "--reports", str(tmp_path),
                          "--json"], capture_output=True, text=True, timeout=600, env=env)
    doc = json.loads(res.stdout)
    assert res.returncode == INCOMPLETE, (doc, res.stderr[-3000:])
    assert doc["exit_status"] == INCOMPLETE and not doc["ok"]
    (run,) = doc["runs"]
    assert run["incomplete"] is True and run["verdict"] == "fail"
    assert "Docker engine" in run["error"], run["error"]
    assert run["lab_id"] and not lab_namespaces(run["lab_id"])
    assert not labelled_containers(run["lab_id"])
    # and nothing kept for ``flexlab clean``: no engine was behind DOCKER_HOST, so no
    # container of the lab can be left, and its teardown must not fail asking for one
    assert Registry().load(run["lab_id"]) is None
