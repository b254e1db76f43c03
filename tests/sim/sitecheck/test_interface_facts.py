"""site-check learns its interface from netlink, so it is right under ``nsenter --net`` too
(where /sys still shows the host's interfaces)."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

pytestmark = pytest.mark.sim


@pytest.fixture
def netns() -> object:
    """A fresh network namespace (root: the sim tier carries needs_root)."""
    name = f"fltest{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_mac_and_address_come_from_the_namespace_entered(netns: str) -> None:
    ip = ["ip", "-n", netns]
    subprocess.run([*ip, "link", "add", "fl0", "address", "02:12:34:56:78:9a", "type", "veth",
                    "peer", "name", "fl1"], check=True)
    subprocess.run([*ip, "addr", "add", "10.250.7.2/24", "dev", "fl0"], check=True)
    code = ("from harness.sitecheck.runner import interface_facts;"
            "print(*interface_facts('fl0'))")
    out = subprocess.run(["nsenter", f"--net=/run/netns/{netns}", sys.executable, "-c", code],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["02:12:34:56:78:9a", "10.250.7.2/24"]
