"""How the runner powers and watches machines, whatever they are (emulators or VMs).

A driver is built for one lab, is told about every machine copy, powers
copies on and off, and reports each copy's progress. The runner never knows
which kind it drives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.scenario.model import Facts


@dataclass(frozen=True)
class TimelineEvent:
    """One thing a machine did or saw, ``t`` seconds after the run started.

    ``kind`` is one of: sent, received, chose-offer, tftp, http, state, power, note.
    ``peer`` is the other side's address where there is one.
    """

    t: float
    kind: str
    summary: str
    peer: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MachinePlan:
    """One machine copy as the runner hands it to a driver."""

    key: str            # unique copy name, e.g. "bios" or "worker17"
    group: str          # the scenario's machine name
    mac: str
    firmware: str
    segment: str
    attach_host: str    # lab host (namespace) the copy attaches through
    nic: str
    facts: Facts
    cp_urls: tuple[str, ...] = ()


@dataclass
class MachineProgress:
    """What a driver knows about one copy."""

    key: str
    phase: str = "off"          # off, dhcp, boot-server, tftp, ipxe, http, agent, done, failed
    finished: bool = False      # the copy has nothing more to do (booted, gave up or failed)
    error: str | None = None
    answered_by: list[str] = field(default_factory=list)   # server addresses of proxy offers
    timeline: list[TimelineEvent] = field(default_factory=list)
    console: str | None = None


class MachineDriver(Protocol):
    """What the runner needs from a machine backend."""

    kind: str

    def add(self, plans: list[MachinePlan]) -> None:
        """Declare the copies (nothing is powered yet)."""

    def power_on(self, keys: list[str], at: float) -> None:
        """Press the power button of these copies (``at``: seconds since the run began)."""

    def power_off(self, keys: list[str]) -> None:
        """Cut power to these copies."""

    def progress(self) -> dict[str, MachineProgress]:
        """Current progress of every copy."""

    def close(self) -> None:
        """Stop everything the driver started."""
