"""libvirt/QEMU virtual machines for the vm tier: the domain spec and the accelerator probe."""

from harness.machines.vm.console import AgentEvent, ConsoleTimeout, wait_for_event
from harness.machines.vm.domain import (
    Accel,
    DataDisk,
    DirectBoot,
    DomainSpec,
    Firmware,
    Nic,
    NicModel,
)
from harness.machines.vm.errors import VmError, VmSpecError

__all__ = [
    "Accel",
    "AgentEvent",
    "ConsoleTimeout",
    "DataDisk",
    "DirectBoot",
    "DomainSpec",
    "Firmware",
    "Nic",
    "NicModel",
    "VmError",
    "VmSpecError",
    "wait_for_event",
]
