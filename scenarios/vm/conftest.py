"""vm-tier scenario runs boot with the node agent's clock sync in the boot profile.

Stopgap until the runner itself uses ``harness.scenario.vm_driver.VM_CMDLINE`` for
``tier: vm`` (see docs/VM-TIER.md, "Clock"): without ``flexlab.timeurl`` a TCG guest's
clock starts up to 1.4 s behind and the Control Plane rejects it about one boot in three.
Delete this file once harness/scenario/runner.py does that.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """Run each scenario under scenarios/vm/ with VM_CMDLINE as the profile's cmdline."""
    import harness.scenario.runner as runner
    from harness.scenario.vm_driver import VM_CMDLINE

    saved = runner.CMDLINE
    runner.CMDLINE = VM_CMDLINE
    try:
        yield
    finally:
        runner.CMDLINE = saved
