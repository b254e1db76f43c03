"""Loading a Control Plane with one cluster, one known machine and proxy bp1 (shared by tests)."""

from __future__ import annotations

from harness.components.controlplane import ControlPlane
from harness.lab import Lab


def seed_one_machine(cp: ControlPlane, lab: Lab, host: str = "known") -> str:
    """Create cluster alpha with ``host``'s MAC and register proxy bp1; return its token."""
    api = cp.api
    api.create_cluster("alpha", 1, mode="standalone", environment="test")
    api.upload_artifact("vmlinuz", b"kernel-bytes")
    api.upload_artifact("initrd.img", b"initrd-bytes")
    api.create_profile("default", "vmlinuz", "initrd.img",
                       "console=ttyS0 flexlab.token={join_token} flexlab.cp={cp_url}")
    api.create_machine(lab.link(host, "lan").mac, "alpha", "node1", "default")
    token: str = api.register_proxy("bp1", ["alpha"], segments=["lan"])
    return token
