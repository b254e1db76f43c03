"""Emulated firmware's retry policy: it reboots into PXE after every failed boot (as SeaBIOS and
OVMF with a boot order do), and the run stops watching only after three failed boots that all
began once the scenario's last step was played."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.machines.sim.errors import BootFailed
from harness.machines.sim.machine import EmulatorSpec, SimMachine
from harness.machines.sim.profiles import profile
from harness.machines.sim.retry import QUIET_BOOTS, boots_again, settled, still_retrying

from .test_power import MAC, FakePort

pytestmark = pytest.mark.unit


def test_firmware_without_a_cap_boots_again_after_any_number_of_failures() -> None:
    assert all(boots_again(n, None) for n in (1, 3, 4, 1000))


def test_a_capped_firmware_stops_after_its_last_attempt() -> None:
    assert boots_again(1, 3) and boots_again(2, 3)
    assert not boots_again(3, 3)
    assert not boots_again(1, 1)  # one attempt: the emulator's default for bare fleets


def test_nonsense_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="after a failure"):
        boots_again(0, None)
    with pytest.raises(ValueError, match="at least one boot"):
        boots_again(1, 0)


def test_not_settled_while_steps_are_pending() -> None:
    assert not settled([1.0, 2.0, 3.0, 4.0, 5.0], None)


def test_only_boots_started_after_the_last_step_count() -> None:
    # the WAN came back at 10: boots that began in the outage say nothing about the end
    before = [1.0, 4.0, 7.0, 9.9]
    assert not settled(before, 10.0)
    assert not settled([*before, 10.0, 13.0], 10.0)
    assert settled([*before, 10.0, 13.0, 16.0], 10.0)
    assert QUIET_BOOTS == 3


def test_the_not_ready_reason_keeps_the_last_error_first() -> None:
    text = still_retrying("PXE-E53: no boot filename received", 5)
    assert text.startswith("PXE-E53: no boot filename received")
    assert "5 times" in text and "keeps rebooting" in text


def _failing_machine(attempts: int | None, fail_until: int) -> tuple[SimMachine, list[int]]:
    """A machine whose boots fail (PXE-E53) until the ``fail_until``-th, then succeed."""
    spec = EmulatorSpec(MAC, profile("pxe-bios"), boot_attempts=attempts, reboot_delay=1.0)
    netdevs: Any = None
    m = SimMachine(spec, FakePort(), netdevs, "m0", scale=0.001)  # type: ignore[arg-type]
    tries: list[int] = []

    async def boot() -> None:
        tries.append(len(tries) + 1)
        if len(tries) < fail_until:
            raise BootFailed("PXE-E53", "no boot filename received")
        m.state = "done"

    m._boot = boot  # type: ignore[method-assign]
    return m, tries


def test_an_uncapped_machine_reboots_past_the_old_three_attempts_and_boots() -> None:
    m, tries = _failing_machine(None, fail_until=7)
    asyncio.run(m.run())
    assert tries == [1, 2, 3, 4, 5, 6, 7]
    assert m.state == "done" and m.error is None
    assert len(m.failed_starts) == 6
    reboots = [e for e in m.timeline.events if e.summary == "rebooting"]
    assert [e.detail["attempt"] for e in reboots] == [2, 3, 4, 5, 6, 7]


def test_a_capped_machine_still_fails_with_its_last_error() -> None:
    m, tries = _failing_machine(3, fail_until=7)
    asyncio.run(m.run())
    assert tries == [1, 2, 3]
    assert m.state == "failed" and m.error is not None and m.error.code == "PXE-E53"
