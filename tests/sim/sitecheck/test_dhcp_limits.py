"""What site-check's DHCP probes put on the wire, read back from the segment's capture:
bounded and rate limited when active, nothing at all with --passive."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from harness.capture.decode import decode_pcap
from harness.capture.events import DhcpEvent
from harness.lab.nsthread import NamespaceWorker
from harness.sitecheck.dhcp_link import PacketLink
from harness.sitecheck.dhcp_wire import ETH_P_IP, pxe_discover_frame
from harness.sitecheck.sites import SiteCheckRun, SiteLab, load_site
from harness.wait import wait_until

pytestmark = [pytest.mark.sim, pytest.mark.timeout(60)]

STRANGERS = ["52:54:00:5e:00:01", "52:54:00:5e:00:02"]  # MACs no Boot Proxy serves

def reports(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.getoption("flexlab_reports"))

def client_frames(pcap: Path, macs: set[str]) -> list[DhcpEvent]:
    """Every DHCP frame the given MACs sent, in capture order."""
    return [e for e in decode_pcap(str(pcap), require_dhcp=False).dhcp
            if e.src_mac in macs and e.sport == 68]

def test_active_probes_are_few_rate_limited_and_never_request(
        request: pytest.FixtureRequest) -> None:
    # snooping drops every proxy reply, so each probe MAC is retried: the worst case
    with SiteLab(load_site("snooping"), checker_segment="lan",
                 reports_dir=reports(request)) as site:
        node = site.macs["node"][0]
        args = ["--listen", "2"] + [a for m in (node, *STRANGERS) for a in ("--mac", m)]
        run = site.run_sitecheck(args)
        checker = site.checker_mac
        pcap = site.lab.pcaps["lan"]
    assert [r["verdict"] for r in run.results("proxydhcp.offer")] == ["fail"] * 3, run.explain()
    sent = client_frames(pcap, {checker, node, *STRANGERS})
    assert sent, "the capture shows no probe at all"
    assert {e.msg_type for e in sent} == {"DISCOVER"}  # never a REQUEST: no lease taken
    assert all(e.dst_ip == "255.255.255.255" and e.giaddr == "0.0.0.0" for e in sent)
    per_mac = {mac: [e for e in sent if e.chaddr == mac] for mac in (checker, node, *STRANGERS)}
    assert all(1 <= len(frames) <= 2 for frames in per_mac.values()), per_mac
    assert all(e.vendor_class is None for e in per_mac[checker])          # the plain probe
    assert all((e.vendor_class or "").startswith("PXEClient") for mac in (node, *STRANGERS)
               for e in per_mac[mac])
    pxe = sorted((e for e in sent if e.chaddr != checker), key=lambda e: e.time)
    gaps = [b.time - a.time for a, b in itertools.pairwise(pxe)]
    assert min(gaps) >= 0.18, gaps  # 200 ms apart (capture timestamps jitter a little)

class Progress:
    """The CLI's progress lines (stderr), read by a thread as they come: a buffered pipe
    read under select() would see a line only when the next write arrives."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _next_with(self, text: str, timeout: float) -> str | None:
        """The next line containing ``text`` ("" when the CLI ended first), or None when
        ``timeout`` seconds pass; lines without it are consumed."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return ""
            if text in line:
                return line
        return None

    def wait_for(self, text: str, timeout: float) -> str:
        """Block until a line containing ``text`` arrives; AssertionError with all lines
        seen when the CLI ends or the time runs out first."""
        line = self._next_with(text, timeout)
        if not line:
            raise AssertionError(f"site-check never said {text!r}; it said:\n{self.text()}")
        return line

    def next_line(self, text: str, timeout: float) -> bool:
        """True when a line containing ``text`` arrives (or the CLI ends) within
        ``timeout`` seconds."""
        return self._next_with(text, timeout) is not None

    def text(self) -> str:
        """Everything read so far (all of it once the CLI has ended and was joined)."""
        self._thread.join(timeout=10)
        return "".join(self.lines)


def test_passive_sends_nothing_and_reports_what_it_overheard(
        request: pytest.FixtureRequest) -> None:
    with SiteLab(load_site("good"), checker_segment="lan",
                 reports_dir=reports(request)) as site:
        node = site.macs["node"][0]
        out = site.lab.reports_dir / "passive"
        argv = site.in_checker(site.sitecheck_argv(["--passive", "--listen", "3"], out))
        proc = subprocess.Popen(argv, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            progress = Progress(proc)
            progress.wait_for("checking ProxyDHCP", timeout=30)
            wait_until(lambda: _holds_packet_socket(proc.pid), timeout=5,
                       what="site-check to listen for ProxyDHCP traffic")
            # a machine's PXE ROM, from the machines' attachment host: the proxy serves it
            machine_host = site.runner.plan.machine_host("lan")
            # again every 0.25 s until the phase's closing "(3.0 s)" line: one frame sent
            # while this test process was starved could miss the 3-s window
            iface = site.lab.link(machine_host, "lan").host_iface
            with NamespaceWorker(site.lab.ns(machine_host)) as worker:
                for _ in range(60):
                    worker.call(_send_pxe_discover, iface, node)
                    if progress.next_line(" s)", timeout=0.25):
                        break
                else:
                    raise AssertionError(f"the ProxyDHCP phase never ended:\n{progress.text()}")
            assert proc.stdout is not None
            stdout = proc.stdout.read()
            proc.wait(timeout=30)
            stderr = progress.text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        checker = site.checker_mac
        pcap = site.lab.pcaps["lan"]

    report = json.loads((out / "result.json").read_text())
    run = SiteCheckRun(proc.returncode, stdout, report, stderr, argv)
    assert client_frames(pcap, {checker}) == []
    dhcp = run.result("dhcp.offers")
    assert dhcp["verdict"] == "skip", run.explain()  # nobody asked for an address meanwhile
    offer = run.result("proxydhcp.offer")
    assert offer["verdict"] == "pass", run.explain()
    assert offer["summary"].startswith("passive: ProxyDHCP ") and node in offer["summary"]
    assert any(f"PXE DISCOVERs from {node}" in line for line in offer["evidence"])
    assert run.result("responders.conflict")["verdict"] == "pass"

def _holds_packet_socket(pid: int) -> bool:
    """Process ``pid`` has an AF_PACKET socket bound to IPv4 frames on an interface (its
    passive listener, ready to hear). A socket is listed in /proc/net/packet from the
    moment it is created, with protocol 0 and no interface until it is bound: a frame sent
    in between is never seen, which is how this test once failed in CI."""
    mine = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                mine.add(target[8:-1])
    lines = Path(f"/proc/{pid}/net/packet").read_text().splitlines()[1:]
    # columns: sk RefCnt Type Proto Iface R Rmem User Inode
    return any(cols[-1] in mine and int(cols[3], 16) == ETH_P_IP and int(cols[4]) != 0
               for cols in (line.split() for line in lines))


def test_a_packet_socket_counts_as_listening_only_once_bound() -> None:
    # what would make the passive test pass by luck: taking a socket not yet bound for one
    # that hears; the check must say no until bind() and yes after it
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        assert not _holds_packet_socket(os.getpid())
        sock.bind(("lo", ETH_P_IP))
        assert _holds_packet_socket(os.getpid())


def _send_pxe_discover(iface: str, mac: str) -> None:
    with PacketLink(iface) as link:
        link.send(pxe_discover_frame(mac, 0x5EED))
