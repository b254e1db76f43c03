"""Allure glue: a real pytest run with --alluredir records steps and attachments;
without Allure, attach_run does nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.judge.result import RunResult
from harness.reports.serialize import to_json

pytestmark = pytest.mark.unit

INNER = '''
import os
from pathlib import Path
from harness.reports.allure import attach_run
from harness.reports.serialize import load

def test_run():
    path = Path(os.environ["FLEXLAB_RUN_JSON"])
    assert attach_run(load(path), base=path.parent) is True
'''


def test_no_op_without_allure(sample_run: RunResult, tmp_path: Path) -> None:
    """Plain Python (the flexlab CLI) has no Allure listener: nothing happens, no error.

    Checked in a child process because this pytest session records Allure results
    (the flexlab plugin turns them on)."""
    run_json = tmp_path / "run.json"
    run_json.write_text(to_json(sample_run))
    code = (
        "import sys; from pathlib import Path;"
        "from harness.reports.allure import allure_active, attach_run;"
        "from harness.reports.serialize import load;"
        f"r = load(Path({str(run_json)!r}));"
        "print(allure_active(), attach_run(r))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


def test_steps_and_attachments_in_allure_results(sample_run: RunResult, tmp_path: Path) -> None:
    run_json = tmp_path / "run" / "run.json"
    run_json.write_text(to_json(sample_run))
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    results = tmp_path / "allure"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(tmp_path / "pytest.ini"), f"--alluredir={results}", "test_inner.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**__import__("os").environ, "FLEXLAB_RUN_JSON": str(run_json)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    (res,) = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    steps = {s["name"]: s for s in res["steps"]}
    for name, start, end in sample_run.phases:
        step = steps[f"phase: {name} ({end - start:.2f} s)"]
        assert (step["start"], step["stop"]) == (int(start * 1000), int(end * 1000))
    offer3 = next(s for n, s in steps.items() if n.startswith("rule OFFER-3 [MUST]"))
    assert offer3["status"] == "failed" and "option 60" in offer3["statusDetails"]["message"]
    assert any(s["status"] == "passed" for n, s in steps.items() if n.startswith("rule "))
    att = {a["name"]: a for a in res["attachments"]}
    assert att["pcap lan"]["source"].endswith(".pcap")
    assert att["pcap lan"]["type"] == "application/vnd.tcpdump.pcap"
    for m in sample_run.machines:
        assert att[f"ladder {m.name}"]["type"] == "image/svg+xml"
    assert att["summary"]["type"] == "text/html"
    assert "console bios" in att and "log bootproxy-bp1.log" in att
    svg = (results / att["ladder http"]["source"]).read_text()
    assert "OFFER-3" in svg
