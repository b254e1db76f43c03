"""Machines that boot through a lab: simulated firmware, VMs, real hardware."""
