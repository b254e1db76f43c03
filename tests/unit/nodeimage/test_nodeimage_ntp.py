"""The node image's NTP client (chronyd -q, from Debian packages): staged with its whole
library closure from the unpacked packages, it runs inside the staged root alone
(chroot: no host library can fill a gap); a library no package ships is a build error
naming what to add. The agent asks for option 42 and reads its first server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from agentsh import agent_functions
from ntpfake import add_libc_extra, host_ntp_trees
from tlsfake import host_tls_trees

from harness.components.fake_ntp import NtpResponder
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


@pytest.mark.parametrize("server_ahead", [0.0, 2.5, -1.7])
def test_the_agent_reports_its_offset_measured_by_chronyd(server_ahead: float) -> None:
    """measure_ntp runs the real chronyd -Q against an NTP server on loopback that is
    `server_ahead` seconds ahead of this host and leaves the clock alone; the facts carry
    this clock minus the server's (a node still 2.5 s behind says -2.5, which the Control
    Plane rejects)."""
    require(os.geteuid() == 0, "chronyd -Q runs as root (-u root), as in the image")
    require(Path("/usr/sbin/chronyd").is_file(), "apt-get install chrony")
    srv = NtpResponder(server_ahead, "127.0.0.1", 0).serve_in_thread()
    try:
        script = (agent_functions("log", "chrony_wrong", "measure_ntp")
                  + f'measure_ntp 127.0.0.1 {srv.address[1]} && echo "FACTS={{x:1$CLOCK_FACTS}}"\n')
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=40)
    finally:
        srv.close()
    assert out.returncode == 0, out.stdout + out.stderr
    facts = json.loads(out.stdout.split("FACTS=")[1].replace("{x:1,", "{"))
    assert facts["clock_source"] == "ntp" and facts["clock_server"] == "127.0.0.1"
    assert facts["clock_offset_s"] == pytest.approx(-server_ahead, abs=0.05)
    assert "FLEXLAB-AGENT: ntp server=127.0.0.1 measured offset=" in out.stdout


def test_the_agent_parses_chronyds_last_verdict_and_nothing_else() -> None:
    run = agent_functions("chrony_wrong") + "chrony_wrong\n"
    lines = ("2026-12-04T16:31:02Z chronyd version 4.3 starting\n"
             "2026-12-04T16:31:06Z System clock wrong by -0.000002 seconds (ignored)\n"
             "2026-12-04T16:31:06Z System clock wrong by 3.222011 seconds (ignored)\n")
    got = subprocess.run(["sh", "-c", run], input=lines, capture_output=True, text=True)
    assert got.stdout.strip() == "3.222011"
    none = subprocess.run(["sh", "-c", run], capture_output=True, text=True,
                          input="2026-12-04T16:30:57Z No suitable source for synchronisation\n")
    assert none.stdout == ""


def test_the_registration_carries_the_ntp_facts_only_after_a_sync() -> None:
    agent = (FILES_DIR / "agent.sh").read_text()
    assert 'sync_ntp "$NTP" && measure_ntp "$NTP"' in agent
    assert '\\"clock_unix\\":$stamp$CLOCK_FACTS}}' in agent
    assert agent.index('CLOCK_FACTS=""\n') < agent.index('sync_ntp "$NTP" &&')
