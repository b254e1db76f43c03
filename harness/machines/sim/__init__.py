"""Firmware emulators for the sim tier: machines that PXE-boot like real ROMs, by the thousand.

Each machine follows a :class:`~harness.machines.sim.profiles.FirmwareProfile`
(option set and order, ports, timers, offer selection of one real ROM family),
does DHCP over raw Ethernet frames on a shared per-segment socket, then TFTP,
HTTP and an emulated node agent over the kernel's own UDP/TCP stack on a
per-machine macvlan carrying its MAC and leased address. See docs/EMULATORS.md.
"""

from harness.machines.sim.errors import SimMachineError
from harness.machines.sim.fleet import Fleet, FleetResult
from harness.machines.sim.machine import EmulatorSpec, SimMachine
from harness.machines.sim.profiles import PROFILES, FirmwareProfile, profile
from harness.machines.sim.timeline import EmulatorEvent, Timeline

__all__ = [
    "PROFILES",
    "EmulatorEvent",
    "EmulatorSpec",
    "FirmwareProfile",
    "Fleet",
    "FleetResult",
    "SimMachine",
    "SimMachineError",
    "Timeline",
    "profile",
]
