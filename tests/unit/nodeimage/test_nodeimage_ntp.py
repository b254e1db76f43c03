"""The node image's NTP client (chronyd -q, from Debian packages): staged with its whole
library closure from the unpacked packages, it runs inside the staged root alone
(chroot: no host library can fill a gap); a library no package ships is a build error
naming what to add. The agent asks for option 42 and reads its first server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ntpfake import add_libc_extra, host_ntp_trees
from tlsfake import host_tls_trees

from harness.pytest_plugin import require
from nodeimage import ntpclient, tlsclient
from nodeimage.errors import PackageError
from nodeimage.initramfs import FILES_DIR

pytestmark = pytest.mark.unit


def _trees(tmp_path: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    tls = host_tls_trees(tmp_path / "tls")
    add_libc_extra(tls["libc6"])
    ntp = host_ntp_trees(tmp_path / "ntp")
    ntp["libc6"] = tls["libc6"]
    return tls, ntp


def test_chronyd_runs_from_the_staged_root_alone(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "chroot needs root")
    tls, ntp = _trees(tmp_path)
    root = tmp_path / "root"
    tlsclient.stage(root, tls)
    copied = ntpclient.stage(root, ntp)
    assert copied[0] == ntpclient.PROGRAM and "lib/x86_64-linux-gnu/libm.so.6" in copied
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    out = subprocess.run(["chroot", str(root), "/" + ntpclient.PROGRAM, "-v"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("chronyd (chrony) version")


def test_a_library_no_package_ships_is_a_build_error(tmp_path: Path) -> None:
    tls, ntp = _trees(tmp_path)
    for lib in (ntp["libgnutls30"]).rglob("libgnutls.so.30"):
        lib.unlink()
    root = tmp_path / "root"
    tlsclient.stage(root, tls)
    with pytest.raises(PackageError, match=r"needs libgnutls\.so\.30.*NTP_PACKAGES"):
        ntpclient.stage(root, ntp)


def test_a_package_not_unpacked_is_named(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="needs chrony"):
        ntpclient.stage(tmp_path, {})


def test_the_agent_asks_for_option_42_and_syncs_from_its_first_server() -> None:
    agent = (FILES_DIR / "agent.sh").read_text()
    script = (FILES_DIR / "udhcpc.script").read_text()
    assert "-O ntpsrv" in agent and "ntp=$ntp" in script
    assert '/usr/sbin/chronyd -q -u root' in agent
    # NTP first; the Control Plane's HTTP time only where the site offers no NTP
    assert agent.index('sync_ntp "$NTP"') < agent.index("sync_time\nfi")
