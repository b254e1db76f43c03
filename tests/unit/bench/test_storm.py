"""The storm bench's client-phase split, median run and segment size, on fixed data."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from bench.storm import _median_run, client_phases, cpu_by_phase, dhcp_latency, segment_prefix
from harness.judge.result import MachineResult, TimelineEvent

pytestmark = pytest.mark.unit


def _machine(states: list[tuple[float, str]]) -> MachineResult:
    return MachineResult(
        name="m", mac="52:54:00:00:00:01", firmware="seabios-ipxe", segment="lan",
        cluster="storm", driver="sim", state="Ready",
        timeline=[TimelineEvent(t=t, kind="state", summary=s) for t, s in states]
        + [TimelineEvent(t=0.05, kind="sent", summary="DISCOVER")])


def test_client_phases_add_each_state_until_the_next_and_group_the_dhcp_rounds() -> None:
    m = _machine([(0.0, "power-on"), (0.0, "dhcp-discover"), (1.0, "dhcp-request"),
                  (1.5, "bound"), (1.5, "pxe-request"), (1.7, "tftp"), (5.7, "ipxe"),
                  (5.7, "dhcp-discover"), (6.2, "bound"), (6.2, "script"), (6.5, "kernel"),
                  (7.0, "agent"), (7.2, "clock"), (7.3, "registered"), (7.4, "ready")])
    phases = client_phases([m, m])
    assert phases["tftp"] == {"p50": 4.0, "p95": 4.0, "sum": 8.0, "machines": 2}
    assert phases["dhcp"]["p50"] == 2.0  # both DHCP rounds (firmware and iPXE)
    assert phases["http"]["p50"] == 0.8 and phases["agent"]["p50"] == 0.4
    assert next(iter(phases)) == "tftp"  # biggest share first


def test_the_median_run_is_one_real_run_and_a_run_not_all_ready_counts_slowest() -> None:
    runs: list[dict[str, Any]] = [{"time_to_all_ready_s": None, "n": 1},
                                  {"time_to_all_ready_s": 30.0, "n": 2},
                                  {"time_to_all_ready_s": 20.0, "n": 3}]
    assert _median_run(runs)["n"] == 2


def test_the_segment_pool_holds_the_storm() -> None:
    assert segment_prefix(200) == segment_prefix(1000) == 20
    assert 2 ** (32 - segment_prefix(5000)) // 2 >= 5000


def test_dhcp_latency_reads_each_servers_answer_time_from_the_capture(tmp_path: Path) -> None:
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is needed to filter the capture (scripts/setup-host.sh installs it)")
    mac = "52:54:00:00:00:01"

    def frame(t: float, src: str, op: int, kind: str, dport: int) -> Any:
        pkt = (Ether(src=mac) / IP(src=src, dst="255.255.255.255")
               / UDP(sport=68 if op == 1 else 67, dport=dport)
               / BOOTP(op=op, xid=7, chaddr=bytes.fromhex(mac.replace(":", "")))
               / DHCP(options=[("message-type", kind), "end"]))
        pkt.time = 1000.0 + t
        return pkt

    pcap = tmp_path / "lan.pcap"
    wrpcap(str(pcap), [frame(0.0, "0.0.0.0", 1, "discover", 67),
                       frame(0.002, "10.0.0.2", 2, "offer", 68),
                       frame(0.004, "10.0.0.3", 2, "offer", 68),
                       frame(0.1, "0.0.0.0", 1, "request", 67),
                       frame(0.6, "10.0.0.2", 2, "ack", 68)])
    got = dhcp_latency(pcap)
    assert got["REQUEST->ACK from 10.0.0.2"]["p50_s"] == pytest.approx(0.5, abs=1e-3)
    assert got["DISCOVER->OFFER from 10.0.0.3"]["p50_s"] == pytest.approx(0.004, abs=1e-3)
    assert set(got) == {"DISCOVER->OFFER from 10.0.0.2", "DISCOVER->OFFER from 10.0.0.3",
                        "REQUEST->ACK from 10.0.0.2"}


def test_sigterm_unwinds_the_storm_so_its_lab_is_torn_down(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A SIGTERM (CI, `timeout`) mid-storm runs the clean-up as Ctrl-C does, exits 130."""
    import os
    import signal
    import time

    import bench.storm as storm

    torn_down: list[bool] = []

    def storm_that_gets_sigterm(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:  # stands in for the runner's ExitStack, which tears the lab down
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
            raise AssertionError("SIGTERM did not interrupt the storm")
        finally:
            torn_down.append(True)

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(storm, "run_storm", storm_that_gets_sigterm)
    monkeypatch.setattr(storm.os, "geteuid", lambda: 0)
    assert storm.main(["--per-kind", "1"]) == 130
    assert torn_down == [True]
    assert signal.getsignal(signal.SIGTERM) == before  # the handler does not outlive main()


def test_cpu_by_phase_interpolates_between_samples_and_leaves_out_unsampled_phases() -> None:
    samples = [(100.0, 1.0), (101.0, 1.5), (103.0, 3.5), (104.0, 3.5)]
    phases = [("site", 100.0, 100.5), ("machines", 100.5, 103.5), ("judge", 103.5, 106.0)]
    # 0.5 s at 0.5 CPU-s/s; then 1.25 -> 3.5 (1.0 s of it at 1 CPU-s/s, idle after 103)
    assert cpu_by_phase(samples, phases) == {"site": 0.25, "machines": 2.25}
