"""Every ``flexlab`` command: ``--json`` prints one document with a ``format`` key, the
exit statuses of docs/CLI.md (0 ok, 1 fail, 2 usage, 3 incomplete, 130 interrupted), and
no signal handler left behind. Commands are called through ``harness.cli.main`` with a
real argv, as the console script does."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness import cli
from harness.exitcodes import FAIL, INCOMPLETE, INTERRUPTED, OK, USAGE

from .conftest import BAD_SCENARIO, GOLDEN, SMOKE, json_doc, kill_self, make_bundle

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _handlers_restored() -> object:
    """No command may leave its SIGINT/SIGTERM handler installed (pytest would inherit it)."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    assert {s: signal.getsignal(s) for s in before} == before


# -- the top level ---------------------------------------------------------------------
def test_no_command_unknown_command_and_bad_options_are_usage_errors() -> None:
    assert cli.main([]) == USAGE
    assert cli.main(["no-such-command"]) == USAGE
    assert cli.main(["validate"]) == USAGE          # argparse: FILE missing
    assert cli.main(["run"]) == USAGE               # a delegated parser's own usage error
    assert cli.main(["cp"]) == USAGE
    assert cli.main(["--version"]) == OK


def test_every_command_offers_json() -> None:
    parser = cli.build_parser(complete=True)
    sub = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(sub.choices, dict)
    for command in ("demo", "run", "validate", "schema", "clean", "check-pcap", "report",
                    "site-check", "certify", "verify", "inspect"):
        assert "--json" in sub.choices[command]._option_string_actions, command


# -- validate / schema -----------------------------------------------------------------
def test_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--json", str(SMOKE)]) == OK
    doc = json_doc(capsys, "flexlab.validate/v1")
    assert doc["ok"] and doc["files"][0]["scenario"] == "smoke"


def test_validate_an_invalid_file_is_a_failed_verdict(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--json", str(SMOKE), str(BAD_SCENARIO)]) == FAIL
    doc = json_doc(capsys, "flexlab.validate/v1")
    assert not doc["ok"]
    assert [f["ok"] for f in doc["files"]] == [True, False]
    assert "duplicate-key.yaml:" in doc["files"][1]["error"]


def test_schema_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema", "--json"]) == OK
    doc = json_doc(capsys, "flexlab.schema/v1")
    assert "properties" in doc["schema"]


# -- run ---------------------------------------------------------------------------------
def test_run_refuses_a_bad_scenario_with_2(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    assert cli.main(["run", "--json", "--reports", str(tmp_path), str(BAD_SCENARIO)]) == USAGE
    doc = json_doc(capsys, "flexlab.run/v1")
    assert doc["exit_status"] == USAGE and doc["refused"][0]["file"] == str(BAD_SCENARIO)
    assert doc["runs"] == []


def test_run_without_root_is_incomplete(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["run", "--json", "--reports", str(tmp_path), str(SMOKE)]) == INCOMPLETE
    doc = json_doc(capsys, "flexlab.run/v1")
    assert "root" in doc["error"] and not doc["ok"]


# -- check-pcap ------------------------------------------------------------------------
def test_check_pcap_json_and_junit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junit = tmp_path / "out" / "junit.xml"
    assert cli.main(["check-pcap", str(GOLDEN), "--json", "--junit", str(junit)]) == OK
    doc = json_doc(capsys, "flexlab.check-pcap/v1")
    assert doc["ok"] and doc["findings"]
    assert junit.read_text().count("<testcase ") == len({f["rule_id"] for f in doc["findings"]})


def test_check_pcap_must_failure_exits_1_and_fails_its_junit_case(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from harness.capture.synth_flows import Flow, bios_flow

    # the proxy's option 43 ends without its 255 terminator: OFFER-7, a MUST rule
    flow = Flow(tweaks={"proxy_offer": lambda s: s.set_option(43, b"\x06\x05\x08")})
    bios_flow(flow)
    pcap = flow.b.write(str(tmp_path / "bad.pcap"))
    junit = tmp_path / "junit.xml"
    assert cli.main(["check-pcap", pcap, "--json", "--junit", str(junit),
                     "--proxy", "10.0.0.2"]) == FAIL
    assert json_doc(capsys, "flexlab.check-pcap/v1")["ok"] is False
    xml = junit.read_text()
    assert xml.count("<failure ") == 1 and 'name="OFFER-7"' in xml
    assert 'failures="1"' in xml


def test_check_pcap_bad_input_is_usage(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    assert cli.main(["check-pcap", str(tmp_path / "missing.pcap")]) == USAGE
    assert cli.main(["check-pcap", "--no-such-flag"]) == USAGE


def test_check_pcap_list_rules_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-pcap", "--list-rules", "--json"]) == OK
    doc = json_doc(capsys, "flexlab.check-pcap.rules/v1")
    assert any(r["id"] == "SILENT-5" for r in doc["rules"])


# -- clean / inspect -------------------------------------------------------------------
def test_clean_usage_errors_and_no_root(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["clean"]) == USAGE
    assert cli.main(["clean", "--lab", "not-a-lab"]) == USAGE
    capsys.readouterr()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["clean", "--lab", "flabcde", "--json"]) == INCOMPLETE
    assert "root" in json_doc(capsys, "flexlab.clean/v1")["error"]


def test_inspect_json_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["inspect", "--lab", "nope"]) == USAGE
    capsys.readouterr()
    assert cli.main(["inspect", "--json"]) == OK
    doc = json_doc(capsys, "flexlab.inspect/v1")
    assert isinstance(doc["labs"], list)
    assert all(lab["owner_alive"] for lab in doc["labs"])  # without --all: running ones


# -- report ------------------------------------------------------------------------------
def test_report_json_and_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import shutil

    fixture = Path(__file__).resolve().parents[3] / "fixtures" / "reports" / "sample-run"
    copy = tmp_path / "copy"
    shutil.copytree(fixture, copy)
    assert cli.main(["report", str(copy / "run.json"), "--json"]) == OK
    doc = json_doc(capsys, "flexlab.report/v1")
    assert doc["verdict"] == "fail" and doc["summary"].endswith("summary.html")
    assert cli.main(["report", str(tmp_path / "missing.json"), "--json"]) == USAGE
    doc = json_doc(capsys, "flexlab.report/v1")
    assert doc["exit_status"] == USAGE and doc["error"]


# -- site-check / certify / verify ---------------------------------------------------------
def test_site_check_exit_statuses(capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["site-check", "--iface", "lo", "--ports", "x"]) == USAGE
    assert cli.main(["site-check", "--iface", "nonexistent0", "-q", "--json"]) == USAGE
    assert json_doc(capsys, "flexlab.site-check/v1")["exit_status"] == USAGE
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli.main(["site-check", "--iface", "lo", "-q", "--json"]) == INCOMPLETE
    assert "root" in json_doc(capsys, "flexlab.site-check/v1")["error"]


def test_site_check_sigterm_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.sitecheck.runner as runner

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(runner, "run_site_check", kill_self(signal.SIGTERM))
    assert cli.main(["site-check", "--iface", "lo", "-q"]) == INTERRUPTED


def test_certify_exit_statuses(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["certify", "--iface", "lo", "--mac", "52:54:00:00:00:01", "--out", str(tmp_path),
            "--key", str(tmp_path / "missing.pem")]
    assert cli.main([*argv, "--json"]) == USAGE
    assert "signing key" in json_doc(capsys, "flexlab.certify/v1")["error"]
    assert cli.main(["certify", "--iface", "lo"]) == USAGE  # --mac missing
    import harness.certify.cli as certify_cli

    monkeypatch.setattr(certify_cli, "certify", kill_self(signal.SIGINT))
    assert cli.main(argv) == INTERRUPTED


def test_verify_exit_statuses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bundle.tar.gz"
    bad.write_bytes(b"not a tarball")
    assert cli.main(["verify", str(bad), "--json"]) == FAIL
    doc = json_doc(capsys, "flexlab.verify/v1")
    assert doc["valid"] is False and "tar.gz" in doc["reason"]
    assert cli.main(["verify", str(bad), "--pubkey", str(tmp_path / "none.pub"),
                     "--json"]) == USAGE
    assert json_doc(capsys, "flexlab.verify/v1")["exit_status"] == USAGE
    assert cli.main(["verify"]) == USAGE


# -- interruption through the top level ---------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_command_exits_130_without_traceback(
        signum: int, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.scenario as scenario

    monkeypatch.setattr(scenario, "load_scenario", kill_self(signum))
    assert cli.main(["validate", str(SMOKE)]) == INTERRUPTED
    err = capsys.readouterr().err
    assert "Traceback" not in err and "cleaning up" in err


def test_demo_bad_option_is_usage() -> None:
    assert cli.main(["demo", "--no-such-flag"]) == USAGE


def test_verify_json_of_a_valid_bundle(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    from harness.certify.keys import fingerprint

    bundle, key = make_bundle(tmp_path)
    assert cli.main(["verify", str(bundle), "--json"]) == OK
    doc = json_doc(capsys, "flexlab.verify/v1")
    assert doc["valid"] and doc["signer"] == fingerprint(key.public_key())
    assert doc["machine"] == "52:54:00:00:00:01" and doc["verdict"] == "CERTIFIED"


def test_services_refuse_bad_settings_with_2(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bootproxy", "--config", str(tmp_path / "missing.yaml")]) == USAGE
    assert "flexlab bootproxy: cannot read config file" in capsys.readouterr().err
    assert cli.main(["cp", "serve", "--listen", "no-port", "--db",
                     str(tmp_path / "cp.sqlite3")]) == USAGE
