"""docs/BENCHMARKS.md is what bench/results/*.json give, and nothing else: no figure in it
can be hand-written, edited, or left over from results that have since changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import report
from bench.provenance import gaps, spread, stamp

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "BENCHMARKS.md"


def test_the_committed_document_is_what_the_results_files_give() -> None:
    """Regenerating from bench/results reproduces docs/BENCHMARKS.md byte for byte."""
    assert DOC.read_text() == report.render_dir(RESULTS), (
        "docs/BENCHMARKS.md differs from what bench/results/*.json give: a figure was edited "
        "by hand or a results file changed without the document; run "
        "`python -m bench.report` and commit both")


def test_the_check_fails_on_a_hand_edited_figure_and_on_a_changed_results_file(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    doc = tmp_path / "BENCHMARKS.md"
    assert report.main(["--results", str(results), "--doc", str(doc)]) == 0
    assert report.main(["--results", str(results), "--doc", str(doc), "--check"]) == 0
    text = doc.read_text()
    # a hand-edited figure: the first number of the summary table, changed
    row = next(line for line in text.splitlines() if line.startswith("| proxydhcp |"))
    doc.write_text(text.replace(row, row.replace("offers/s", "0 offers/s", 1)))
    assert report.main(["--results", str(results), "--doc", str(doc), "--check"]) == 1
    # a results file changed after the document was written
    doc.write_text(text)
    site = json.loads((results / "site-scenarios.json").read_text())
    site["scenarios"][0]["wall_s"]["median"] = 999.5
    (results / "site-scenarios.json").write_text(json.dumps(site))
    assert report.main(["--results", str(results), "--doc", str(doc), "--check"]) == 1
    assert "999.50" in report.render_dir(results)


def test_every_results_file_is_named_with_its_provenance_and_gaps() -> None:
    doc = DOC.read_text()
    for path in sorted(RESULTS.glob("*.json")):
        assert f"| {path.name} |" in doc, f"{path.name} is not in the provenance table"


def test_gaps_name_what_a_results_file_lacks() -> None:
    full = {**stamp("python -m bench.x", runs=3)}
    assert gaps(full) == []
    assert gaps({**full, "runs": 1}) == ["only 1 run (a median needs 3)"]
    lacking = gaps({"date_utc": "2026-01-01 00:00:00Z"})
    assert lacking == ["command", "commit", "versions", "run count", "load"]


def test_spread_is_median_min_max_and_count() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert spread([]) == {"median": None, "min": None, "max": None, "n": 0}
