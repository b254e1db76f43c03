"""The README's no-root quick start works as written: its ``flexlab`` lines run (from a
directory holding only the repository's fixtures and scenarios) with the exit statuses
the README promises."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from harness import cli

from .conftest import ROOT

pytestmark = pytest.mark.unit


def quick_start_lines() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start without root", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the quick start has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.startswith("flexlab ")]


def test_quick_start_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("fixtures", "scenarios"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    lines = quick_start_lines()
    statuses = []
    for line in lines:
        capsys.readouterr()
        statuses.append(cli.main(shlex.split(line)[1:]))
        if "--json" in line:
            assert json.loads(capsys.readouterr().out)["format"] == "flexlab.check-pcap/v1"
    assert statuses == [0, 1, 0, 0], list(zip(lines, statuses, strict=True))
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")
