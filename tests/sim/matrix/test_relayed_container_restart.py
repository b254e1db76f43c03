"""A restarted Boot Proxy container still reaches a relayed segment.

A restart recreates the proxy host's veth (the old container took it along), which has
none of the routes the runner added: the container must carry its routes over itself, or
the 4011 ACK, TFTP and HTTP answers to a relayed machine go nowhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.builder.runner import ScenarioRunner
from harness.components.container import DEFAULT_IMAGE, image_present
from harness.scenario.model import Scenario

from .cases import MACHINE, PROXY, matrix_scenario

pytestmark = [pytest.mark.sim, pytest.mark.needs_docker]


def _restart_then_boot(base: Scenario) -> Scenario:
    """``base`` with the proxy stopped and started again before the machine powers on."""
    steps = [{"at": 0, "action": "stop_proxy", "proxy": PROXY},
             {"at": 0, "action": "start_proxy", "proxy": PROXY},
             {"at": 0.1, "action": "power_on", "machines": [MACHINE]}]
    data = base.model_dump(mode="json", by_alias=True, exclude={"schema_ref"})
    return Scenario.model_validate({**data, "name": f"{base.name}-restart", "steps": steps})


def test_restarted_container_serves_a_relayed_uefi_pxe_machine(
        pytestconfig: pytest.Config) -> None:
    image = pytestconfig.getoption("boot_proxy_image") or DEFAULT_IMAGE
    if not image_present(image):
        pytest.fail(f"{image} is not built: `make images`")
    scenario = _restart_then_boot(matrix_scenario("uefi-x64", "relayed", "container", image))
    reports = Path(pytestconfig.getoption("flexlab_reports"))
    result = ScenarioRunner(scenario, reports_dir=reports).run()
    failed = [f"[{e.kind}] {e.subject}: {e.description} — {e.detail}"
              for e in result.expectations if e.verdict == "fail"]
    machine = next(m for m in result.machines if m.name == MACHINE)
    assert result.verdict == "pass", (result.error, failed, machine.reasons)
    assert machine.state == "Ready"
