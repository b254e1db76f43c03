"""``flexlab check-pcap`` exit codes, table and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.capture.synth import pxe43
from harness.capture.synth_flows import Flow, bios_flow
from harness.check_pcap import run

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"


def test_conformant_capture_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(PCAPS / "synthetic_all.pcap")]) == 0
    out = capsys.readouterr().out
    assert "OFFER-2" in out and "conformant" in out


def test_must_violation_exits_1_and_json_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = Flow(tweaks={"proxy_offer": lambda s: s.set_option(43, b"\x06\x05\x08")})
    bios_flow(f)
    path = f.b.write(str(tmp_path / "bad.pcap"))
    assert run([path, "--json", "--proxy", "10.0.0.2"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["context"]["proxies"] == ["10.0.0.2"]
    fails = [x for x in doc["findings"] if x["verdict"] == "fail"]
    assert [x["rule_id"] for x in fails] == ["OFFER-7"]
    assert fails[0]["frames"] == [1, 3] and fails[0]["citation"].startswith("RFC 2132")
    assert pxe43([]) == b"\xff"


def test_serves_turns_on_silent5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = str(PCAPS / "synthetic_bios.pcap")
    assert run([pcap, "--serves", "52:54:00:00:00:11", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (s5,) = [x for x in doc["findings"] if x["rule_id"] == "SILENT-5"]
    assert s5["verdict"] == "pass"
    assert run([pcap, "--serves", "52:54:00:00:00:aa", "--failures-only"]) == 1
    assert "SILENT-5" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.pcap"], "cannot open"),
        (["{bios}", "--serves", "not-a-mac"], "not a MAC"),
        (["{bios}", "--proxy", "10.0.0.999"], "not an IPv4"),
        (["{bios}", "--rule", "XYZ-1"], "unknown rule"),
    ],
)
def test_unusable_input_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(bios=PCAPS / "synthetic_bios.pcap") for a in args]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_corrupt_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "trunc.pcap"
    p.write_bytes((PCAPS / "synthetic_bios.pcap").read_bytes()[:-3])
    assert run([str(p)]) == 2
    assert "truncated" in capsys.readouterr().err


def test_bad_arguments_exit_2() -> None:
    assert run([]) == 2
    assert run(["--help"]) == 0
    assert run(["x.pcap", "--no-such-flag"]) == 2


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--list-rules"]) == 0
    out = capsys.readouterr().out
    assert "SILENT-5" in out and "RFC 3046" in out
