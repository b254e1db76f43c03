"""``needs_docker`` asks the engine itself: a ping through the docker SDK with a short
timeout, at ``DOCKER_HOST`` or the local socket. A socket path nothing serves, or a
socket that accepts and never answers, is a missing requirement with a reason naming
where it looked and what went wrong; an engine that answers is not."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import pytest_plugin
from harness.pytest_plugin import docker_problem

pytestmark = pytest.mark.unit


@pytest.fixture
def fresh_check() -> Iterator[None]:
    """The session caches the host's answer: forget it before and after the test."""
    pytest_plugin._docker_problem_here.cache_clear()
    yield
    pytest_plugin._docker_problem_here.cache_clear()


def test_a_socket_nothing_serves_is_no_engine(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    where = f"unix://{tmp_path / 'docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", where)
    problem = docker_problem()
    assert problem is not None and where in problem, problem


def test_an_engine_that_never_answers_fails_within_the_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(path))
        mute.listen(8)   # connections are accepted by the kernel and never answered
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        started = time.monotonic()
        problem = docker_problem(timeout=1)
        took = time.monotonic() - started
    assert problem is not None and "timed out" in problem, problem
    assert took < 5, f"the check hung {took:.1f} s"


@pytest.mark.needs_docker
def test_the_engine_of_this_host_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert docker_problem() is None


def test_a_marked_test_skips_with_the_reason(pytester: pytest.Pytester, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             fresh_check: None) -> None:
    where = f"unix://{tmp_path / 'gone.sock'}"
    monkeypatch.setenv("DOCKER_HOST", where)
    monkeypatch.setenv("COLUMNS", "300")
    pytester.makeini("[pytest]\nflexlab = true\n")
    pytester.makepyfile(test_d="import pytest\n\n@pytest.mark.needs_docker\n"
                        "def test_docker():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:allure_pytest", "-rs",
                                f"--flexlab-reports={pytester.path / 'reports'}")
    result.assert_outcomes(skipped=1)
    out = result.stdout.str()
    assert pytest_plugin.REQUIREMENT_MARKERS["needs_docker"] in out
    assert f"no Docker engine answers at {where}" in out


@pytest.mark.parametrize(("options", "needs"), [((), True),
                                                (("--flexlab-boot-proxy-kind=process",), False)])
def test_a_scenario_running_the_container_needs_docker(pytester: pytest.Pytester,
                                                       options: tuple[str, ...],
                                                       needs: bool) -> None:
    """The Boot Proxy runs as its container by default, so its scenario needs the engine;
    run as a process (debugging) it does not."""
    smoke = Path(__file__).resolve().parents[2] / "scenarios" / "smoke.yaml"
    pytester.makefile(".flexlab.yaml", smoke=smoke.read_text())
    items, _ = pytester.inline_genitems("-p", "no:cacheprovider", "-p", "no:allure_pytest",
                                        *options)
    (item,) = items
    assert (item.get_closest_marker("needs_docker") is not None) is needs
