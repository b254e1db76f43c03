"""Helpers shared by the Control Plane tests: names, MACs, facts, a ready-made site."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from controlplane.client import ControlPlaneClient

ADMIN = "admin-" + secrets.token_hex(8)
_macs = itertools.count(1)


def unique(prefix: str) -> str:
    """A DNS-label name unique within the test run."""
    return f"{prefix}-{secrets.token_hex(3)}"


def new_mac() -> str:
    """A fresh locally-administered MAC."""
    n = next(_macs) + secrets.randbelow(1 << 20) * 4096
    return "02:fe:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def facts(mac: str, clock: float, **overrides: Any) -> dict[str, Any]:
    """Hardware facts that pass every requirement unless overridden."""
    base: dict[str, Any] = {
        "arch": "x86_64", "cpu_cores": 4, "memory_bytes": 8 * 10**9,
        "disks": [{"name": "vda", "size_bytes": 20 * 10**9}],
        "nics": [{"name": "eth0", "mac": mac}], "firmware": "efi",
        "vendor": "QEMU", "clock_unix": clock,
    }
    base.update(overrides)
    return base


def site(admin: ControlPlaneClient, nodes: int = 1,
         expected: int | None = None) -> dict[str, Any]:
    """A cluster, a profile with artifacts, a proxy serving it, and `nodes` machines."""
    cluster = unique("c")
    admin.create_cluster(cluster, expected or max(nodes, 1))
    admin.upload_artifact("vmlinuz", b"kernel-bytes")
    admin.upload_artifact("initrd.img", b"initrd-bytes")
    profile = unique("p")
    admin.create_profile(profile, "vmlinuz", "initrd.img",
                         "console=ttyS0 flexlab.host={hostname} flexlab.join={join_token} "
                         "flexlab.cp={cp_url} flexlab.mac={mac} flexlab.cluster={cluster}")
    proxy = unique("px")
    token = admin.register_proxy(proxy, [cluster], ["seg0"])
    macs = []
    for i in range(nodes):
        mac = new_mac()
        admin.create_machine(mac, cluster, f"{cluster}-n{i}", profile,
                             role="control-plane" if i == 0 else "worker")
        macs.append(mac)
    return {"cluster": cluster, "profile": profile, "proxy": proxy, "proxy_token": token,
            "macs": macs}


def join_token(admin: ControlPlaneClient, s: dict[str, Any], mac: str) -> str:
    """Boot ``mac`` through site ``s``'s proxy (as the Boot Proxy does) and return the
    one-time join token the Control Plane hands out for it."""
    with admin.with_token(s["proxy_token"]) as proxy:
        token: str = proxy.boot(mac).join_token
    return token
