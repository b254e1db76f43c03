"""What emulated firmware does after a failed network boot, and when a run stops watching.

Real firmware with a network boot order does not give up: SeaBIOS reboots after
its ``reboot-timeout`` and tries PXE again, OVMF goes round its boot order again.
The emulator models that with :func:`boots_again` (``attempts=None``: forever).

A run cannot wait forever for a machine that will never boot, so the sim driver
stops *watching* (the firmware itself keeps rebooting until the run ends) once
nothing can change any more: every step of the scenario was played, and the
machine then failed :data:`QUIET_BOOTS` whole boots that all started after that
(:func:`settled`). A boot that began before the last step (a WAN still down, a
machine not yet assigned) does not count: the world it failed in is gone.
Both are pure functions of counts and times, so they are unit-tested alone.
"""

from __future__ import annotations

from collections.abc import Sequence

#: failed boots, all started after the scenario's last step, that end the watch on a machine
#: (the emulator's old fixed cap: three boots in an unchanging world)
QUIET_BOOTS = 3


def boots_again(failed: int, attempts: int | None) -> bool:
    """Whether firmware that has failed ``failed`` boots in a row reboots for another.

    ``attempts`` is how many boots it tries in all; None models SeaBIOS and OVMF with a
    network boot order, which retry until someone cuts the power.
    """
    if failed < 1:
        raise ValueError(f"boots_again asks after a failure, not after {failed}")
    if attempts is not None and attempts < 1:
        raise ValueError(f"a machine tries at least one boot, not {attempts}")
    return attempts is None or failed < attempts


def settled(failed_starts: Sequence[float], quiet_since: float | None,
            quiet_boots: int = QUIET_BOOTS) -> bool:
    """Whether a machine still retrying can no longer change the run's outcome.

    ``failed_starts`` are the (monotonic) start times of its failed boots;
    ``quiet_since`` is when every scenario step had been played (None: steps are still
    pending, so a later boot may meet a changed world). Settled when at least
    ``quiet_boots`` failed boots started at or after ``quiet_since``.
    """
    if quiet_since is None:
        return False
    return sum(1 for t in failed_starts if t >= quiet_since) >= quiet_boots


def still_retrying(error: str, failed: int, quiet_boots: int = QUIET_BOOTS) -> str:
    """The not-Ready reason of a machine the run stopped watching: its last error first
    (what it stopped on), then that it was never going to get further."""
    return (f"{error} (boot failed {failed} times, the last {quiet_boots} after the "
            "scenario's last step; the firmware keeps rebooting, the run stopped watching)")
