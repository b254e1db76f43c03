"""The WAN router leaves nothing behind: stop() undoes start(), and after a SIGKILLed run
``flexlab clean`` finds its wireguard-go processes and control sockets by the lab id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyroute2 import netns

from harness.lab import Lab
from harness.lab.cleanup import clean
from harness.lab.registry import Registry, process_starttime
from harness.wan import WanRouter, WanRouterConfig
from harness.wan.wireguard import UAPI_DIR

from .conftest import wan_topology

pytestmark = pytest.mark.sim


def test_stop_removes_table_and_tunnel_and_keeps_the_evidence(tmp_path: Path) -> None:
    config = WanRouterConfig(private=True, loss_pct=1)
    with Lab(wan_topology(config), reports_dir=tmp_path) as lab:
        router = WanRouter(lab, config)
        with router:
            pids = [p.pid for p in lab.processes if "-wg-" in p.name]
            sockets = sorted(UAPI_DIR.glob(f"{lab.id}-*.sock"))
            assert len(sockets) == (2 if router.backend == "userspace" else 0)
            # the configured loss is in place once the router is ready, on both link ends
            assert lab.run(None, ["nft", "list", "tables"]).count("impair_") == 2
        assert "flexlab_wan" not in lab.run("wan", ["nft", "list", "tables"])
        assert "-wg" not in lab.run("wan", ["ip", "-o", "link"])
        assert "-wg" not in lab.run("cloud", ["ip", "-o", "link"])
        assert "impair_" not in lab.run(None, ["nft", "list", "tables"])
        assert [p for p in pids if process_starttime(p) is not None] == []
        assert list(UAPI_DIR.glob(f"{lab.id}-*.sock")) == []
        names = {p.name for p in router.artifacts()}
        assert {"wan-wan.log", "wan-wan-flows.json", "wan-wan-nft.json"} <= names


CHILD = """
import sys
from pathlib import Path
from harness.lab import Lab
from harness.wan import WanRouter, WanRouterConfig
sys.path.insert(0, sys.argv[2])
from conftest import wan_topology
config = WanRouterConfig(private=True)
lab = Lab(wan_topology(config), reports_dir=Path(sys.argv[1]))
lab.build()
router = WanRouter(lab, config).__enter__()
print(lab.id, router.backend, *[p.pid for p in lab.processes if "-wg-" in p.name], flush=True)
sys.stdin.read()  # block until killed
"""


def test_sigkilled_run_is_cleaned_by_flexlab_clean(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path),
                              str(Path(__file__).parent)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        lab_id, backend, *pid_text = child.stdout.readline().split()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    pids = [int(p) for p in pid_text]
    if backend == "userspace":
        assert len(pids) == 2 and all(process_starttime(p) for p in pids)
        assert len(list(UAPI_DIR.glob(f"{lab_id}-*.sock"))) == 2
    assert clean([lab_id]) == {lab_id: []}
    assert [p for p in pids if process_starttime(p) is not None] == []
    assert list(UAPI_DIR.glob(f"{lab_id}-*.sock")) == []
    assert [n for n in netns.listnetns() if n.startswith(lab_id)] == []
    assert lab_id not in Registry().lab_ids()
