"""Helpers for emulator sim tests: the lab topology, a static web server, per-MAC boot scripts."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.lab import Host, HostLink, Lab, Segment, Topology
from harness.lab.process import LabProcess
from harness.lab.sockets import tcp_listening
from harness.wait import wait_until


def lan_topology(*servers: str, subnet: str | None = None) -> Topology:
    """The emulator tests' lab: one segment ``lan`` (``subnet``, or one chosen per lab)
    with a host per name in ``servers`` and host ``machines``, whose link has no address
    because each emulated machine in it takes its own lease."""
    return Topology(
        segments=(Segment("lan", subnet=subnet),),
        hosts=(*(Host(name, (HostLink("lan"),)) for name in servers),
               Host("machines", (HostLink("lan", address=None),))),
    )


#: site DHCP, a proxy and a web server (the dnsmasq proxy tests)
TOPOLOGY = lan_topology("dhcp", "proxy", "web")
#: a Control Plane, site DHCP and Boot Proxy bp1 (the tests that :func:`seed_cluster`)
CP_TOPOLOGY = lan_topology("cp", "dhcp", "bp1")
WEB_PORT = 8080


@dataclass
class WebRoot:
    """A static HTTP server in lab host ``web`` serving ``root``."""

    root: Path
    url: str
    process: LabProcess


def start_web(lab: Lab, root: Path) -> WebRoot:
    """python -m http.server in host ``web``; ready when it listens on its port."""
    proc = lab.start_process("web", [sys.executable, "-m", "http.server", str(WEB_PORT),
                                     "--directory", str(root)], "web")
    wait_until(lambda: tcp_listening(proc.pid, WEB_PORT) or (
        None if proc.running() else pytest.fail("http.server died:\n" + proc.log_tail())),
        timeout=10, what="http.server to listen", evidence=proc.log_tail)
    return WebRoot(root, f"http://{lab.address('web', 'lan')}:{WEB_PORT}", proc)


def write_boot_files(root: Path, web_url: str, macs: list[str]) -> dict[str, bytes]:
    """A per-MAC iPXE script naming a kernel and an initrd; returns the files' contents."""
    kernel = os.urandom(300_000)
    initrd = os.urandom(500_000)
    (root / "boot").mkdir(parents=True, exist_ok=True)
    (root / "vmlinuz").write_bytes(kernel)
    (root / "initrd.img").write_bytes(initrd)
    for mac in macs:
        (root / "boot" / f"{mac}.ipxe").write_text(
            "#!ipxe\n"
            f"kernel {web_url}/vmlinuz console=ttyS0 flexlab.mac=${{mac}}\n"
            "initrd /initrd.img\n"
            "boot\n")
    return {"vmlinuz": kernel, "initrd.img": initrd}


def seed_cluster(api: Any, macs: Sequence[str], *, expected: int | None = None,
                 kernel_size: int = 200_000, initrd_size: int = 300_000) -> str:
    """Load a Control Plane with cluster alpha of ``macs`` (node0, node1, ...) expecting
    ``expected`` nodes (all of them by default), a kernel and initrd of the given sizes and
    a profile whose command line carries the join contract; register proxy bp1 for it on
    segment lan and return bp1's token."""
    api.create_cluster("alpha", len(macs) if expected is None else expected,
                       mode="standalone", environment="test")
    api.upload_artifact("vmlinuz", b"K" * kernel_size)
    api.upload_artifact("initrd.img", b"I" * initrd_size)
    api.create_profile("default", "vmlinuz", "initrd.img",
                       "console=ttyS0 flexlab.token={join_token} flexlab.cp={cp_url} "
                       "flexlab.mac={mac}")
    for i, mac in enumerate(macs):
        api.create_machine(mac, "alpha", f"node{i}", "default")
    token: str = api.register_proxy("bp1", ["alpha"], segments=["lan"])
    return token
