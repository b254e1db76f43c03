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
