"""The harness's structured log: its line format, the CLI flags, and who logs what."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import pytest

from harness import cli
from harness.components.base import Component
from harness.errors import WaitTimeout
from harness.lab.process import LabProcess
from harness.logs import HEAD, LOGGER, configured, level_for, log_event, phase
from harness.wait import wait_until

pytestmark = pytest.mark.unit


def _json_lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """pytest's caplog, catching the harness's records at INFO and above (read its
    ``records`` in the test: the list is a new one in each test phase)."""
    caplog.set_level(logging.INFO, logger="harness")
    return caplog


def _named(records: list[logging.LogRecord], event: str) -> list[logging.LogRecord]:
    return [r for r in records if getattr(r, "event", None) == event]


# -- the line format ----------------------------------------------------------------------

def test_json_lines_have_the_shared_head_then_the_fields(
        capsys: pytest.CaptureFixture[str]) -> None:
    with configured("json", 1):
        log_event("lab_built", "lab flab1 built in 1.5 s", lab="flab1", seconds=1.5)
        LOGGER.warning("a plain line")
    first, plain = _json_lines(capsys.readouterr().err)
    # the Boot Proxy's and Control Plane's head, in their order, then the fields
    assert tuple(first)[:5] == HEAD == ("ts", "level", "component", "event", "msg")
    assert first["level"] == "info" and first["component"] == "harness"
    assert first["event"] == "lab_built" and first["msg"] == "lab flab1 built in 1.5 s"
    assert first["lab"] == "flab1" and first["seconds"] == 1.5
    assert isinstance(first["ts"], float)
    assert plain["event"] == "message" and plain["msg"] == "a plain line"
    assert plain["level"] == "warning"


def test_the_msg_defaults_to_the_event_name_as_in_the_other_logs(
        capsys: pytest.CaptureFixture[str]) -> None:
    with configured("json", 1):
        log_event("phase_end")
    [line] = _json_lines(capsys.readouterr().err)
    assert line["msg"] == "phase_end"


def test_a_field_may_not_overwrite_the_head() -> None:
    with pytest.raises(ValueError, match="overwrite"):
        log_event("x", level_name="info", component="other")


def test_text_lines_say_the_same_for_a_person(capsys: pytest.CaptureFixture[str]) -> None:
    with configured("text", 1):
        log_event("process_start", "dnsmasq started, pid 42", name="dnsmasq", pid=42)
    [line] = capsys.readouterr().err.splitlines()
    assert " info " in line and "process_start" in line and "dnsmasq started, pid 42" in line
    assert line.endswith("name=dnsmasq  pid=42")
    assert not line.startswith("{")


@pytest.mark.parametrize(("verbosity", "shown"), [
    (0, {"warning"}), (1, {"info", "warning"}), (2, {"debug", "info", "warning"}),
])
def test_verbosity_picks_the_level(verbosity: int, shown: set[str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    with configured("json", verbosity):
        for level in (logging.DEBUG, logging.INFO, logging.WARNING):
            log_event("e", level=level)
    assert {str(d["level"]) for d in _json_lines(capsys.readouterr().err)} == shown
    assert level_for(verbosity) == min(logging.getLevelName(s.upper()) for s in shown)


def test_configured_restores_the_logger() -> None:
    before = (LOGGER.handlers[:], LOGGER.level, LOGGER.propagate)
    with configured("json", 2):
        assert LOGGER.propagate is False and LOGGER.level == logging.DEBUG
    assert (LOGGER.handlers, LOGGER.level, LOGGER.propagate) == before
    with pytest.raises(ValueError, match="text, json"), configured("xml"):
        pass


def test_unconfigured_the_harness_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """A library user (or a test) that configured nothing gets no new output."""
    log_event("lab_built", level=logging.WARNING)
    assert capsys.readouterr().err == ""


def test_phase_logs_its_start_end_and_failure(log: pytest.LogCaptureFixture) -> None:
    with phase("build lab", lab="flab1"):
        pass
    with pytest.raises(RuntimeError), phase("machines"):
        raise RuntimeError("boom")
    seen = [(r.event, r.fields["phase"]) for r in log.records]  # type: ignore[attr-defined]
    assert seen == [("phase_start", "build lab"), ("phase_end", "build lab"),
                    ("phase_start", "machines"), ("phase_failed", "machines")]
    assert log.records[1].fields["lab"] == "flab1"  # type: ignore[attr-defined]
    assert log.records[3].levelno == logging.WARNING and "boom" in log.records[3].getMessage()


# -- the CLI flags --------------------------------------------------------------------------

@pytest.fixture
def fake_command(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """``flexlab run`` replaced by a command that logs one event and records its argv."""
    calls: list[list[str]] = []

    def run(argv: list[str]) -> int:
        calls.append(argv)
        log_event("component_ready", "fake ready", name="fake")
        return 0

    module = types.ModuleType("fake_flexlab_command")
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.DELEGATED, "run", (module.__name__, "run"))
    return calls


@pytest.mark.parametrize("flags", [["--log-format", "json", "-v"], ["-v", "--log-format=json"]])
def test_log_flags_before_a_delegated_command(flags: list[str], fake_command: list[list[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*flags, "run", "-v", "x.yaml"]) == 0
    assert fake_command == [["-v", "x.yaml"]]  # the command's own -v is left to it
    [line] = _json_lines(capsys.readouterr().err)
    assert line["event"] == "component_ready" and line["component"] == "harness"


def test_without_flags_info_events_stay_quiet(fake_command: list[list[str]],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "x.yaml"]) == 0
    assert capsys.readouterr().err == ""


def test_text_is_the_default_format(fake_command: list[list[str]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-v", "run"]) == 0
    err = capsys.readouterr().err
    assert "component_ready" in err and "fake ready" in err and not err.startswith("{")


def test_log_flags_before_a_parsed_command(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def validate(args: object) -> int:
        log_event("phase_end", "validated")
        return 0

    monkeypatch.setattr(cli, "_cmd_validate", validate)
    assert cli.main(["-vv", "--log-format", "json", "validate", "a.yaml"]) == 0
    [line] = _json_lines(capsys.readouterr().err)
    assert line["msg"] == "validated"
    assert LOGGER.propagate is True  # main() leaves the logger as it found it


def test_a_bad_log_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--log-format", "xml", "run"]) == 2  # argparse's exit, returned
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_command_index_skips_the_leading_options() -> None:
    assert cli.command_index(["-v", "--log-format", "json", "run", "-v"]) == 3
    assert cli.command_index(["--log-format=text", "-vv", "clean"]) == 2
    assert cli.command_index(["run"]) == 0
    assert cli.command_index(["-v"]) == 1


# -- who logs what --------------------------------------------------------------------------

def test_a_process_logs_its_start_and_stop_with_its_pid(
        tmp_path: Path, log: pytest.LogCaptureFixture) -> None:
    proc = LabProcess("sleeper", ["sleep", "30"], tmp_path / "sleeper.log").start()
    pid = proc.pid
    proc.stop()
    [start] = _named(log.records, "process_start")
    [stop] = _named(log.records, "process_stop")
    assert start.fields == {"name": "sleeper", "pid": pid, "netns": None,  # type: ignore[attr-defined]
                            "argv": ["sleep", "30"], "log": str(tmp_path / "sleeper.log"),
                            "forked": False}
    assert stop.fields["pid"] == pid and stop.fields["signal"] == "SIGTERM"  # type: ignore[attr-defined]
    assert stop.fields["returncode"] == -15 and stop.levelno == logging.INFO  # type: ignore[attr-defined]
    proc.stop()
    assert len(_named(log.records, "process_stop")) == 1  # stop() again: nothing new to say


def test_a_process_that_failed_by_itself_is_a_warning_at_stop(
        tmp_path: Path, log: pytest.LogCaptureFixture) -> None:
    proc = LabProcess("false", ["false"], tmp_path / "false.log").start()
    wait_until(lambda: not proc.running(), timeout=10, what="false to exit")
    proc.stop()
    [stop] = _named(log.records, "process_stop")
    assert stop.levelno == logging.WARNING and stop.fields["returncode"] == 1  # type: ignore[attr-defined]
    assert "exited by itself" in stop.getMessage()


class _Fake(Component):
    name = "fake"

    def __init__(self, ready: bool = True) -> None:
        self.ready = ready
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def wait_ready(self, timeout: float = 10.0) -> None:
        if not self.ready:
            raise WaitTimeout("fake never answered")


class _Child(_Fake):
    def start(self) -> None:  # an override calling super(): one event, not two
        super().start()
        self.calls.append("child")


def test_components_log_start_ready_and_stop(log: pytest.LogCaptureFixture) -> None:
    with _Child() as fake:
        assert fake.calls == ["start", "child"]
    assert [r.event for r in log.records] == ["component_start", "component_ready",  # type: ignore[attr-defined]
                                         "component_stop"]
    ready = log.records[1].fields  # type: ignore[attr-defined]
    assert ready["name"] == "fake" and ready["kind"] == "_Child" and ready["seconds"] >= 0


def test_a_component_that_never_gets_ready_logs_why(log: pytest.LogCaptureFixture) -> None:
    with pytest.raises(WaitTimeout), _Fake(ready=False):
        pass
    [failed] = _named(log.records, "component_failed")
    assert failed.levelno == logging.WARNING
    assert failed.fields["during"] == "component_ready"  # type: ignore[attr-defined]
    assert failed.fields["error"] == "WaitTimeout"  # type: ignore[attr-defined]
    assert "fake never answered" in failed.getMessage()
    assert _named(log.records, "component_stop")  # the failed start was still stopped
