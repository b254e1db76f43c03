"""``flexlab demo --dhcp-only --json``: a real lab leases one address; stdout is one
``flexlab.demo/v1`` document with the keys docs/formats/README.md lists, and the lab is
gone afterwards."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.lab.cleanup import lab_namespaces
from harness.lab.registry import Registry

pytestmark = [pytest.mark.sim, pytest.mark.needs_root,
              pytest.mark.needs_binary("dnsmasq", how="apt-get install dnsmasq-base")]

ROOT = Path(__file__).resolve().parents[3]


def test_demo_dhcp_only_json(tmp_path: Path) -> None:
    res = subprocess.run([str(Path(sys.executable).with_name("flexlab")), "demo",
                          "--dhcp-only", "--json", "--reports", str(tmp_path)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(res.stdout)
    assert doc["format"] == "flexlab.demo/v1" and doc["ok"] and doc["verdict"] == "pass"
    assert [d["type"] for d in doc["dhcp"]][:4] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert Path(doc["reports"]["html"]).is_file()
    section = (ROOT / "docs" / "formats" / "README.md").read_text().split(
        "## flexlab.demo/v1", 1)[1].split("\n## ", 1)[0]
    assert set(doc) == set(re.findall(r"^\| `([^`]+)` \|", section, re.M))
    assert Registry().load(doc["lab_id"]) is None and lab_namespaces(doc["lab_id"]) == []
