"""bench/nodeimage_ab.py: only cached, successful builds are timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.nodeimage_ab import one_build, summarise
from bench.storm_ab import Config

pytestmark = pytest.mark.unit


def test_a_build_that_was_not_cached_or_failed_is_counted_apart() -> None:
    runs = [{"seconds": 0.1, "exit": 0, "cached": True},
            {"seconds": 300.0, "exit": 0, "cached": False},   # it built: not a cached time
            {"seconds": 0.3, "exit": 0, "cached": True},
            {"seconds": 0.01, "exit": 1, "cached": False}]    # it failed
    s = summarise(runs)
    assert s["seconds"] == {"median": 0.2, "min": 0.1, "max": 0.3, "n": 2}
    assert s["runs_not_cached_or_failed"] == 2


def test_one_build_reads_what_the_builder_said(tmp_path: Path) -> None:
    """A stand-in tree whose `python -m nodeimage build` says cached, then one that builds."""
    venv = tmp_path / "t" / ".venv" / "bin"
    venv.mkdir(parents=True)
    python = venv / "python"
    python.write_text("#!/bin/sh\necho \"$SAY\" >&2\necho /out/id\n")
    python.chmod(0o755)
    cached = one_build(Config("a", tmp_path / "t", {"SAY": "nodeimage: cached 0123"}))
    assert cached["cached"] and cached["exit"] == 0 and cached["seconds"] >= 0
    built = one_build(Config("b", tmp_path / "t", {"SAY": "nodeimage: built 0123"}))
    assert not built["cached"]
