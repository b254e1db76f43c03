"""`make bench` (bench/run.py) measures every ProxyDHCP and storm figure as the median of
RUNS whole runs, as the rule for figures asks; --quick stays one short run each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import run as bench_run

pytestmark = pytest.mark.unit


def _record(calls: list[tuple[str, Any]]) -> dict[str, Any]:
    def proxy_once(plan: Any, path: Path) -> dict[str, Any]:
        calls.append(("proxydhcp once", None))
        return {}

    def proxy_repeated(plan: Any, runs: int, path: Path, command: str) -> dict[str, Any]:
        calls.append(("proxydhcp repeated", runs))
        return {}

    def storm(per_kind: int, results: Path, timeout: float, runs: int = 1) -> dict[str, Any]:
        calls.append((f"storm {2 * per_kind}", runs))
        return {}

    return {"proxy_once": proxy_once, "proxy_repeated": proxy_repeated, "storm": storm}


@pytest.mark.parametrize(("quick", "want"), [
    (False, [("proxydhcp repeated", 3), ("storm 200", 3), ("storm 1000", 3)]),
    (True, [("proxydhcp once", None), ("storm 100", 1)]),
])
def test_each_figure_is_made_of_the_runs_it_should_be(
        quick: bool, want: list[tuple[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    fakes = _record(calls)
    monkeypatch.setattr(bench_run.proxydhcp, "run_benchmark", fakes["proxy_once"])
    monkeypatch.setattr(bench_run.proxydhcp, "run_repeated", fakes["proxy_repeated"])
    monkeypatch.setattr(bench_run.storm, "run_storm", fakes["storm"])
    bench_run.run_all(quick, {"tftp_http", "vm"}, tmp_path)
    assert calls == want
    assert bench_run.RUNS >= 3


def test_the_tftp_http_file_names_no_temp_path(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The child writes into a temp dir and puts it in its own command line; the committed
    tftp_http.json must not carry that path."""
    import json
    import subprocess

    real_run = subprocess.run

    def fake_child(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if "--results" not in argv:  # git and version probes of the provenance stamp
            return real_run(argv, **kwargs)
        out = Path(argv[argv.index("--results") + 1])
        for name in ("tftp.json", "http.json"):
            (out / name).write_text(json.dumps({"command": " ".join(argv[1:])}))
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(bench_run.subprocess, "run", fake_child)
    bench_run.run_tftp_http(quick=True, results=tmp_path)
    text = (tmp_path / "tftp_http.json").read_text()
    assert "flexlab-bench-" not in text and "--results <tmp>" in text, text
