"""`flexlab run`'s exit status per run: a verdict (0 pass, 1 fail) only when the run
could give one; the host or a service stopping it mid-run (Docker gone, a program
missing, a lab or daemon that would not start) is 3, incomplete — as docs/CLI.md says.
A Boot Proxy under test that never becomes ready is the system under test failing: 1."""

from __future__ import annotations

import pytest

from harness.builder.cli_run import run_status
from harness.components.bootproxy import ProxyNotReady, wait_proxy_ready
from harness.errors import ComponentError, DependencyError, FlexlabError, LabError, WaitTimeout
from harness.exitcodes import FAIL, INCOMPLETE, OK, USAGE
from harness.judge.result import ExpectationResult, RunResult

pytestmark = pytest.mark.unit


def result(error: str | None = None, failed: bool = False) -> RunResult:
    run = RunResult(scenario_name="s", scenario_file=None, scenario={}, tier="sim",
                    lab_id="flabcde", started=0.0, finished=1.0, error=error)
    run.expectations = [ExpectationResult("machine", "m", "Ready",
                                          "fail" if failed else "pass")]
    return run


def test_a_passing_run_is_ok() -> None:
    assert run_status(result(), None) == OK


def test_a_failed_expectation_is_a_fail() -> None:
    assert run_status(result(failed=True), None) == FAIL


@pytest.mark.parametrize("failure", [
    DependencyError("the Docker engine stopped answering while starting x"),
    DependencyError("dnsmasq not found: apt-get install dnsmasq-base"),
    LabError("netns add failed"), ComponentError("dnsmasq exited with 2"),
    WaitTimeout("no ready line"), ConnectionRefusedError(111, "refused"),
])
def test_the_host_or_a_service_stopping_a_run_is_incomplete(failure: Exception) -> None:
    assert run_status(result(error=str(failure)), failure) == INCOMPLETE


@pytest.mark.parametrize("failure", [
    FlexlabError("scenario timeout (120s): still waiting for bios"),
    ProxyNotReady("Boot Proxy container x died: exit 1"),
    KeyError("a harness bug"),
])
def test_other_failures_stay_a_fail(failure: Exception) -> None:
    assert run_status(result(error=str(failure)), failure) == FAIL


def test_a_proxy_that_never_gets_ready_fails_with_its_evidence() -> None:
    def wait() -> list[object]:
        raise WaitTimeout("bootproxy-bp1: no ready line in 15 s; last lines: Traceback")

    with pytest.raises(ProxyNotReady, match="last lines: Traceback") as caught:
        wait_proxy_ready(wait)
    assert run_status(result(error="x"), caught.value) == FAIL


def test_an_image_cannot_run_as_a_process(capsys: pytest.CaptureFixture[str]) -> None:
    from harness import cli

    from .conftest import SMOKE

    status = cli.main(["run", "--boot-proxy-image", "example/bp:1", "--boot-proxy-kind",
                       "process", str(SMOKE)])
    assert status == USAGE
    assert "cannot be combined with --boot-proxy-kind process" in capsys.readouterr().err
