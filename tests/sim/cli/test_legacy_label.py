"""Containers labelled the pre-2026-12 way (``flexlab.lab=<id>``) are still found by
``flexlab inspect --all`` and removed by ``flexlab clean``; new ones carry
``io.flexlab.lab``. The container is only created (never started): the label is what
is under test, and ``docker ps -a`` lists created containers too."""

from __future__ import annotations

import subprocess

import pytest

from harness.lab import names
from harness.lab.cleanup import clean, labelled_containers
from harness.lab.inspect import inspect_labs

pytestmark = [pytest.mark.sim, pytest.mark.needs_root, pytest.mark.needs_docker]

IMAGE = "flexlab/bootproxy:latest"


@pytest.mark.parametrize("label", [names.DOCKER_LABEL, *names.LEGACY_DOCKER_LABELS])
def test_clean_removes_containers_with_either_label(label: str) -> None:
    if subprocess.run(["docker", "image", "inspect", IMAGE],
                      capture_output=True).returncode != 0:
        pytest.fail(f"{IMAGE} is not built here: run `make images`")
    lab_id = names.new_lab_id()
    cid = subprocess.run(["docker", "create", "--label", f"{label}={lab_id}",
                          "--name", f"{lab_id}-labeltest", "--network", "none", IMAGE],
                         capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    try:
        assert labelled_containers(lab_id) == [cid]
        (view,) = [v for v in inspect_labs(include_leftovers=True) if v.lab_id == lab_id]
        assert view.state == "leftover" and not view.registered
        assert [c.label for c in view.containers] == [label]
        assert clean([lab_id]) == {lab_id: []}
        assert labelled_containers(lab_id) == []
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
