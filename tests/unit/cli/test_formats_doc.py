"""docs/formats/README.md and the code agree: each command's ``--json`` document has the
top-level keys its format's table lists — every key it prints is documented, and every
key documented without a condition is printed."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import cli

from .conftest import BAD_SCENARIO, GOLDEN, ROOT, SMOKE, make_bundle

pytestmark = pytest.mark.unit
DOC = ROOT / "docs" / "formats" / "README.md"
CONDITIONAL = re.compile(r"\bonly\b|absent|^with `", re.I)


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """format -> (keys always present, keys present only in some cases), from the
    first table of each ``## <format>`` section."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    sections = re.split(r"^## ", DOC.read_text(encoding="utf-8"), flags=re.M)[1:]
    for section in sections:
        title = section.splitlines()[0].strip()
        rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| (.*) \|$", section, re.M)
        always = {k for k, meaning in rows if not CONDITIONAL.search(meaning)}
        out[title] = (always, {k for k, _ in rows} - always)
    return out


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    cli.main(argv)
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


def check(doc: dict[str, Any], formats: dict[str, tuple[set[str], set[str]]],
          error: bool = False) -> None:
    title = "Error document (any command)" if error else doc["format"]
    always, sometimes = formats[title]
    keys = set(doc)
    if error:
        assert always <= keys, f"{doc['format']} error document lacks {always - keys}"
        return
    assert keys <= always | sometimes, f"{title}: undocumented keys {keys - always - sometimes}"
    assert always <= keys, f"{title}: documented keys not printed {always - keys}"


def test_documents_match_their_tables(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    formats = documented()
    check(run(["validate", "--json", str(SMOKE)], capsys), formats)
    check(run(["schema", "--json"], capsys), formats)
    check(run(["inspect", "--json", "--all"], capsys), formats)
    check(run(["check-pcap", str(GOLDEN), "--json"], capsys), formats)
    check(run(["check-pcap", "--list-rules", "--json"], capsys), formats)
    check(run(["run", "--json", "--reports", str(tmp_path), str(BAD_SCENARIO)], capsys),
          formats)
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "fixtures" / "reports" / "sample-run", copy)
    check(run(["report", str(copy / "run.json"), "--json"], capsys), formats)
    # this fixture predates re-judging: --rejudge refuses it (bad input, the error document)
    check(run(["report", str(copy / "run.json"), "--json", "--rejudge"], capsys), formats,
          error=True)
    bad = tmp_path / "b.tar.gz"
    bad.write_bytes(b"x")
    check(run(["verify", str(bad), "--json"], capsys), formats)
    bundle, _ = make_bundle(tmp_path)
    check(run(["verify", str(bundle), "--json"], capsys), formats)
    check(run(["certify", "--iface", "lo", "--mac", "52:54:00:00:00:01", "--key",
               str(tmp_path / "none.pem"), "--out", str(tmp_path), "--json"], capsys),
          formats, error=True)
    check(run(["site-check", "--iface", "nonexistent0", "-q", "--json"], capsys), formats,
          error=True)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    check(run(["run", "--json", "--reports", str(tmp_path), str(SMOKE)], capsys), formats)


def test_every_inspect_lab_key_is_named_in_the_doc() -> None:
    from harness.lab.inspect import LabView

    text = DOC.read_text(encoding="utf-8").split("## flexlab.inspect/v1", 1)[1]
    text = text.split("\n## ", 1)[0]
    view = LabView("flabcde", 1, False, 0.0, 0.0, False).to_json()
    missing = [k for k in view if f"`{k}`" not in text]
    assert not missing, missing
