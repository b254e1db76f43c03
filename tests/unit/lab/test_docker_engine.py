"""Clean-up asks the engine the run used (``DOCKER_HOST``), not a fixed socket."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.lab import docker_engine
from harness.lab.docker_engine import docker_endpoint, engine_can_exist

pytestmark = pytest.mark.unit


@pytest.fixture
def docker_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_engine.shutil, "which", lambda name: f"/bin/{name}")


def test_endpoint_follows_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    assert docker_endpoint() == "tcp://10.0.0.1:2375"
    monkeypatch.delenv("DOCKER_HOST")
    assert docker_endpoint() == "unix:///var/run/docker.sock"


def test_missing_socket_of_docker_host_means_no_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_on_path: None) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'gone.sock'}")
    assert not engine_can_exist()


def test_present_socket_of_docker_host_may_have_an_engine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_on_path: None) -> None:
    path = tmp_path / "d.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        assert engine_can_exist()


def test_tcp_engine_may_exist_and_no_cli_means_none(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_engine.shutil, "which", lambda name: f"/bin/{name}")
    assert engine_can_exist("tcp://10.0.0.1:2375")
    monkeypatch.setattr(docker_engine.shutil, "which", lambda name: None)
    assert not engine_can_exist("tcp://10.0.0.1:2375")
