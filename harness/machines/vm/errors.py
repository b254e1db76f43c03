"""Errors of the VM machine backend; messages say what to change or install."""

from harness.errors import FlexlabError


class VmError(FlexlabError):
    """Base class for VM backend failures."""


class VmSpecError(VmError, ValueError):
    """A domain spec is invalid (bad name, MAC, tap, missing UEFI vars path...)."""


class AccelProbeError(VmError):
    """The accelerator probe could not run at all (no QEMU, no node image)."""


class DiskError(VmError):
    """A data disk or UEFI variable store could not be created."""
