"""The versioned JSON Schemas under docs/formats/ (``flexlab.<command>.v<n>.schema.json``)
hold for what the commands really print, and say the same as docs/formats/README.md.

Two checks: each schema's keys and required keys are the ones its table lists (no
validator needed, so the doc, the schema and the code cannot drift apart even where
jsonschema is not installed); and each command's real ``--json`` document, and its
error document, validates against its schema with ``jsonschema`` — while a document
that breaks the schema (a missing key, a wrong type) does not."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.builder.cli_run import run_json
from harness.cliout import document
from harness.reports.serialize import load

from .conftest import BAD_SCENARIO, GOLDEN, ROOT, SMOKE, make_bundle
from .test_formats_doc import documented

pytestmark = pytest.mark.unit
FORMATS = ROOT / "docs" / "formats"
NEEDS_JSONSCHEMA = pytest.mark.needs_module(
    "jsonschema", how="pip install jsonschema (flexlab's test dependencies)")


def schema_file(fmt: str) -> Path:
    """``flexlab.run/v1`` -> docs/formats/flexlab.run.v1.schema.json"""
    return FORMATS / f"{fmt.replace('/', '.')}.schema.json"


def schema_of(fmt: str) -> dict[str, Any]:
    data = json.loads(schema_file(fmt).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def table_formats() -> list[str]:
    return [title for title in documented() if title.startswith("flexlab.")]


def test_every_documented_format_has_its_schema_and_no_other() -> None:
    documented_files = {schema_file(fmt).name for fmt in table_formats()}
    on_disk = {p.name for p in FORMATS.glob("*.schema.json")}
    assert documented_files == on_disk


@pytest.mark.parametrize("fmt", table_formats())
def test_schema_keys_are_the_tables_keys(fmt: str) -> None:
    always, sometimes = documented()[fmt]
    result = schema_of(fmt)["$defs"]["result"]
    assert result["properties"]["format"] == {"const": fmt}
    assert set(result["properties"]) == always | sometimes
    assert set(result["required"]) == always


def test_the_error_document_is_in_every_schema() -> None:
    always, _ = documented()["Error document (any command)"]
    for fmt in table_formats():
        error = schema_of(fmt)["$defs"]["error"]
        assert set(error["required"]) == always, fmt
        assert error["properties"]["format"] == {"const": fmt}


def real_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the commands print on this host without building a lab (the same calls as
    test_formats_doc), plus a run document with a real saved run in it."""
    docs: list[dict[str, Any]] = []

    def run(argv: list[str]) -> None:
        capsys.readouterr()
        cli.main(argv)
        docs.append(json.loads(capsys.readouterr().out))

    run(["validate", "--json", str(SMOKE), str(BAD_SCENARIO)])
    run(["schema", "--json"])
    with monkeypatch.context() as m:   # --write writes the repository's file: not here
        m.setattr("harness.scenario.schema.SCHEMA_PATH", tmp_path / "scenario.schema.json")
        run(["schema", "--json", "--write"])
    run(["inspect", "--json", "--all"])
    run(["check-pcap", str(GOLDEN), "--json"])
    run(["check-pcap", "--list-rules", "--json"])
    run(["run", "--json", "--reports", str(tmp_path), str(BAD_SCENARIO)])
    sample = tmp_path / "sample"
    shutil.copytree(ROOT / "fixtures" / "reports" / "sample-run", sample)
    run(["report", str(sample / "run.json"), "--json"])
    run(["report", str(sample / "run.json"), "--json", "--rejudge"])
    bad = tmp_path / "b.tar.gz"
    bad.write_bytes(b"x")
    run(["verify", str(bad), "--json"])
    bundle, _ = make_bundle(tmp_path)
    run(["verify", str(bundle), "--json"])
    run(["certify", "--iface", "lo", "--mac", "52:54:00:00:00:01", "--key",
         str(tmp_path / "none.pem"), "--out", str(tmp_path), "--json"])
    run(["site-check", "--iface", "nonexistent0", "-q", "--json"])
    run(["clean", "--lab", "flabcde", "--json"])
    saved = load(sample / "run.json")
    docs.append(document("run", {"ok": False, "exit_status": 1, "error": None,
                                 "runs": [run_json(saved, {"json": sample / "run.json"})],
                                 "refused": [], "junit": None}))
    with monkeypatch.context() as m:
        m.setattr(os, "geteuid", lambda: 1000)
        run(["run", "--json", "--reports", str(tmp_path), str(SMOKE)])
    return docs


@NEEDS_JSONSCHEMA
def test_schemas_are_valid_json_schema() -> None:
    import jsonschema

    for path in sorted(FORMATS.glob("*.schema.json")):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@NEEDS_JSONSCHEMA
def test_real_documents_validate_against_their_schemas(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema

    docs = real_documents(tmp_path, capsys, monkeypatch)
    formats = {d["format"] for d in docs}
    assert formats >= set(table_formats()) - {"flexlab.demo/v1", "flexlab.certify/v1",
                                              "flexlab.site-check/v1"}  # need a lab or LAN
    assert any(d["format"] == "flexlab.run/v1" and d["runs"] for d in docs)
    for doc in docs:
        jsonschema.validate(doc, schema_of(doc["format"]),
                            cls=jsonschema.Draft202012Validator)


@NEEDS_JSONSCHEMA
def test_a_document_that_breaks_its_schema_fails(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema

    # documents that are not error documents (an error document holds whatever else)
    docs = {d["format"]: d for d in real_documents(tmp_path, capsys, monkeypatch)
            if "exit_status" not in d or d.get("runs")}
    broken = []
    run = copy.deepcopy(docs["flexlab.run/v1"])
    run["runs"] = [{**r, "duration_s": "slow"} for r in run["runs"]]
    broken.append(run)
    pcap = copy.deepcopy(docs["flexlab.check-pcap/v1"])
    del pcap["summary"]
    broken.append(pcap)
    verify = copy.deepcopy(docs["flexlab.verify/v1"])
    del verify["reason" if "reason" in verify else "signer"]
    broken.append(verify)
    wrong_format = copy.deepcopy(docs["flexlab.clean/v1"])
    wrong_format["format"] = "flexlab.clean/v2"
    broken.append(wrong_format)
    for doc in broken:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, schema_of(doc["format"].replace("/v2", "/v1")),
                                cls=jsonschema.Draft202012Validator)
