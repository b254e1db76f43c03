"""Nothing of a lab survives: after success, after a failing body, after SIGKILL + flexlab clean."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyroute2 import netns

from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab
from harness.lab.names import temp_dir
from harness.lab.registry import Registry, process_starttime
from harness.pytest_plugin import DEFAULT_TOPOLOGY

# clean(None) below removes every lab whose owner is gone, so the tests that kill a lab's
# owner on purpose run on the same xdist worker, one after another (conftest.py)
pytestmark = [pytest.mark.sim, pytest.mark.xdist_group("leftover-labs")]


def assert_nothing_left(lab_id: str, pids: list[int]) -> None:
    left_ns = [n for n in netns.listnetns() if n == lab_id or n.startswith(lab_id + "-")]
    assert left_ns == []
    assert [p for p in pids if process_starttime(p) is not None] == []
    assert not temp_dir(lab_id).exists()
    assert lab_id not in Registry().lab_ids()


def test_nothing_left_after_a_passing_run(tmp_path: Path) -> None:
    with Lab(DEFAULT_TOPOLOGY, reports_dir=tmp_path) as lab, SiteDhcp(lab, "dhcp", "lan"):
        pids = [p.pid for p in lab.processes]
        assert len(pids) == 2  # tcpdump + dnsmasq
        assert all(process_starttime(p) for p in pids)
    assert_nothing_left(lab.id, pids)
    assert (lab.reports_dir / "pcap" / "lan.pcap").exists(), "evidence outlives the lab"


def test_nothing_left_after_a_failing_body(tmp_path: Path) -> None:
    pids: list[int] = []
    lab = Lab(DEFAULT_TOPOLOGY, reports_dir=tmp_path)
    with pytest.raises(RuntimeError, match="test body failed"), lab:
        SiteDhcp(lab, "dhcp", "lan").start()
        pids = [p.pid for p in lab.processes]
        raise RuntimeError("test body failed")
    assert_nothing_left(lab.id, pids)


def test_partial_build_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Lab(DEFAULT_TOPOLOGY, reports_dir=tmp_path)

    def broken(host: object) -> None:
        raise OSError("simulated failure while building a host")

    monkeypatch.setattr(lab, "_build_host", broken)
    with pytest.raises(OSError, match="simulated failure"):
        lab.build()
    assert_nothing_left(lab.id, [p.pid for p in lab.processes])


CHILD = """
import sys
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab
from harness.pytest_plugin import DEFAULT_TOPOLOGY
lab = Lab(DEFAULT_TOPOLOGY, reports_dir=__import__('pathlib').Path(sys.argv[1]))
lab.build()
SiteDhcp(lab, "dhcp", "lan").__enter__()
print(lab.id, *[p.pid for p in lab.processes], flush=True)
sys.stdin.read()  # block until killed
"""


def test_sigkilled_run_is_cleaned_by_flexlab_clean(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        lab_id, *pid_text = child.stdout.readline().split()
        pids = [int(p) for p in pid_text]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        # the lab survived its owner: namespaces, dnsmasq, tcpdump, registry entry
        assert lab_id in netns.listnetns()
        assert all(process_starttime(p) for p in pids)
        assert lab_id in Registry().lab_ids()
        flexlab = Path(sys.executable).with_name("flexlab")
        res = subprocess.run([str(flexlab), "clean", "--lab", lab_id], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"{lab_id}: removed" in res.stdout
        assert_nothing_left(lab_id, pids)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


def test_clean_all_spares_a_live_lab(tmp_path: Path) -> None:
    from harness.lab.cleanup import clean

    with Lab(DEFAULT_TOPOLOGY, reports_dir=tmp_path) as lab:
        results = clean(None)
        assert lab.id not in results
        assert lab.id in netns.listnetns()
