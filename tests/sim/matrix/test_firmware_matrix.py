"""Firmware x topology x proxy kind: every sim firmware reaches Ready, or fails for its written
reason (tests/sim/matrix/cases.py GAPS, as strict xfails: a gap that closes is noticed).

Each case is a Scenario built in code and run through the public ScenarioRunner, one lab each.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from harness.builder.reporting import publish
from harness.builder.runner import ScenarioRunner
from harness.components.container import DEFAULT_IMAGE, image_present
from harness.judge.result import MachineResult, RunResult
from harness.rules.model import Level, Verdict

from .cases import (
    GAPS,
    KINDS,
    MACHINE,
    SIM_FIRMWARE,
    TOPOLOGIES,
    VM_ONLY,
    Gap,
    case_id,
    matrix_scenario,
)


class KnownGap(Exception):
    """The case stopped exactly where its documented gap says it must."""


def _params() -> list[Any]:
    """Every case as a pytest param: sim tier, Docker for containers, the gap as a strict
    xfail that only KnownGap satisfies."""
    out = []
    for firmware, topology, kind in itertools.product(SIM_FIRMWARE, TOPOLOGIES, KINDS):
        marks: list[pytest.MarkDecorator] = [pytest.mark.sim]
        if kind == "container":
            marks.append(pytest.mark.needs_docker)
        gap = GAPS.get((firmware, topology, kind))
        if gap is not None:
            marks.append(pytest.mark.xfail(strict=True, raises=KnownGap, reason=gap.reason))
        out.append(pytest.param(firmware, topology, kind, marks=marks,
                                id=case_id(firmware, topology, kind)))
    return out


def _explain(result: RunResult) -> str:
    lines = [f"{result.scenario_name} (lab {result.lab_id}): {result.error or ''}"]
    lines += [f"  ✗ [{e.kind}] {e.subject}: {e.description} — {e.detail}"
              for e in result.expectations if e.verdict == "fail"]
    for m in result.machines:
        lines.append(f"  machine {m.name} {m.firmware}: {m.state}; {'; '.join(m.reasons)}")
    return "\n".join(lines)


def _machine(result: RunResult) -> MachineResult:
    found = [m for m in result.machines if m.name == MACHINE]
    assert found, _explain(result)
    return found[0]


@pytest.mark.parametrize(("firmware", "topology", "kind"), _params())
def test_firmware_reaches_ready(firmware: str, topology: str, kind: str,
                                pytestconfig: pytest.Config) -> None:
    image = pytestconfig.getoption("boot_proxy_image")
    if kind == "container" and not image_present(image or DEFAULT_IMAGE):
        pytest.fail(f"{image or DEFAULT_IMAGE} is not built: `make images`")
    reports = Path(pytestconfig.getoption("flexlab_reports"))
    runner = ScenarioRunner(matrix_scenario(firmware, topology, kind, image),
                            reports_dir=reports)
    result = runner.run()
    gap = GAPS.get((firmware, topology, kind))
    try:
        _judge(result, gap)
    except AssertionError:
        publish(result, reports, runner.captures)  # the evidence, for a real failure only
        raise


def _judge(result: RunResult, gap: Gap | None) -> None:
    """Ready with every expectation met, or stopped exactly where ``gap`` says (KnownGap)."""
    machine = _machine(result)
    if gap is not None and machine.state != "Ready":
        failure = "; ".join(machine.reasons)
        assert gap.stops_with in failure, (
            f"documented gap ({gap.reason}) should stop at {gap.stops_with!r}, but:\n"
            + _explain(result))
        # as far as it went, the boot was right: no MUST broken but those the gap breaks,
        # a complete capture, and the proxy answered (or, for this gap, did not)
        broken = {f.rule_id for found in result.findings.values() for f in found
                  if f.verdict is Verdict.FAIL and f.level is Level.MUST}
        assert broken == gap.fails_rules, f"rules broken: {sorted(broken)}\n" + _explain(result)
        fails = [e for e in result.expectations if e.verdict == "fail"]
        assert not [e for e in fails if e.kind == "run"], _explain(result)
        unanswered = any(e.kind == "machine" and e.description.startswith("booted via")
                         for e in fails)
        assert unanswered == (not gap.answered), _explain(result)
        raise KnownGap(gap.reason)
    assert result.verdict == "pass", _explain(result)
    assert machine.state == "Ready"


@pytest.mark.unit
def test_matrix_covers_every_firmware_profile() -> None:
    """A profile added to the model is either emulated (and so in the matrix) or named
    vm-only; gaps name only real cases and say why."""
    from harness.scenario.model import FIRMWARE_PROFILES

    assert set(SIM_FIRMWARE) | set(VM_ONLY) == set(FIRMWARE_PROFILES)
    assert not set(SIM_FIRMWARE) & set(VM_ONLY)
    assert set(VM_ONLY) == {"ovmf-ipxe", "uefi-arm64"}
    combos = set(itertools.product(SIM_FIRMWARE, TOPOLOGIES, KINDS))
    assert set(GAPS) <= combos
    assert all(g.reason and g.stops_with for g in GAPS.values())
    assert len(combos) == len(SIM_FIRMWARE) * 2 * 3 == 36


@pytest.mark.unit
def test_each_case_is_its_own_scenario() -> None:
    """Cases share nothing: each is a distinct, validated scenario of one machine."""
    a = matrix_scenario("uefi-http", "relayed", "process")
    b = matrix_scenario("uefi-http", "relayed", "process")
    assert a is not b and a == b
    assert [s.name for s in a.segments] == ["core", "lan"]
    assert a.segments[1].relay is not None and a.machines[0].segment == "lan"
    assert "RELAY-1" in a.expect.rules
    direct = matrix_scenario("bios-pxe", "direct", "container", image="x/y:z")
    assert direct.machines[0].segment == "core" and direct.proxies[0].image == "x/y:z"
    assert matrix_scenario("bios-pxe", "direct", "process", image="x/y:z").proxies[0].image \
        is None
    with pytest.raises(ValueError, match="ovmf-ipxe"):
        matrix_scenario("ovmf-ipxe", "direct", "process")
