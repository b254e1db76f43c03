"""Power cuts and resets of emulated machines, proved on the segment's capture.

A machine cut mid-TFTP sends nothing more (while the server keeps sending to
it); a machine reset mid-boot sends a new DISCOVER with a fresh xid and boots
to Ready through the reference Boot Proxy and the Control Plane.
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.components.dnsmasq_proxy import DnsmasqProxy
from harness.lab import Lab, Topology
from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.machines.sim.profiles import FirmwareProfile
from harness.wait import wait_until

from .webroot import CP_TOPOLOGY, seed_cluster

pytestmark = [pytest.mark.sim, pytest.mark.timeout(180)]

# what the sim agent's registration starts with on the wire (plain HTTP in cp_site)
REGISTER_REQUEST = b"POST /api/v1/nodes/register "

# EDK2 fetching ipxe.efi (~1 MB) in 512-byte blocks, one at a time: ~2,000 round trips,
# long enough to be cut in the middle of it
SLOW_EDK2: FirmwareProfile = dataclasses.replace(profile("edk2-x64"), tftp_blksize=512,
                                                 tftp_windowsize=None)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One captured Ethernet frame: time, addresses, and the IPv4/UDP/TCP bits the checks need.

    ``tcp_flags`` spells the set flags in tcpdump's order of letters (``F S R P A U``:
    a pure acknowledgement is ``"A"``); ``tcp_payload`` is the segment's data length and
    ``tcp_head`` its first bytes (an HTTP request line).
    """

    ts: float
    src: str
    dst: str
    ip_proto: int | None
    udp_sport: int | None
    udp_dport: int | None
    dhcp_xid: int | None
    dhcp_type: int | None
    tcp_flags: str | None = None
    tcp_payload: int | None = None
    tcp_head: bytes = b""


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def read_frames(pcap: Path) -> list[Frame]:
    """Every complete frame of a (possibly still growing) classic pcap written by tcpdump."""
    data = pcap.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    out: list[Frame] = []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            break  # tcpdump is still writing this one
        raw = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        sport = dport = xid = mtype = None
        flags: str | None = None
        payload: int | None = None
        head = b""
        proto = raw[23] if len(raw) >= 34 and raw[12:14] == b"\x08\x00" else None
        tcp = 14 + (raw[14] & 0x0F) * 4 if proto == 6 else 0
        if proto == 6 and len(raw) >= tcp + 14:
            flags = "".join(name for bit, name in enumerate("FSRPAU") if raw[tcp + 13] >> bit & 1)
            ip_len = struct.unpack("!H", raw[16:18])[0]
            body_at = tcp + (raw[tcp + 12] >> 4) * 4
            payload = ip_len - (body_at - 14)
            head = raw[body_at:body_at + 64]
        if len(raw) >= 42 and raw[12:14] == b"\x08\x00" and raw[23] == 17:
            ihl = (raw[14] & 0x0F) * 4
            udp = 14 + ihl
            sport, dport = struct.unpack("!HH", raw[udp:udp + 4])
            body = raw[udp + 8:]
            if dport == 67 and len(body) > 240:
                xid = struct.unpack("!I", body[4:8])[0]
                opts = body[240:]
                i = 0
                while i + 1 < len(opts) and opts[i] != 255:
                    if opts[i] == 0:
                        i += 1
                        continue
                    if opts[i] == 53:
                        mtype = opts[i + 2]
                    i += 2 + opts[i + 1]
        out.append(Frame(ts, _mac(raw[6:12]), _mac(raw[0:6]), proto, sport, dport, xid, mtype,
                         flags, payload, head))
    return out


def _stop(fleet: Fleet) -> None:
    fleet.stop()
    with contextlib.suppress(Exception):
        fleet.wait(60)


def test_power_off_mid_tftp_leaves_the_machine_silent(emu_lab: Lab) -> None:
    lab = emu_lab
    mac = "52:54:00:0f:f1:01"
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url="http://192.0.2.1/boot/${mac}.ipxe",
                         served_macs=(mac,))
    with proxy:
        fleet = Fleet(lab, "machines", "lan", [EmulatorSpec(mac, SLOW_EDK2)], scale=0.1,
                      linger=True)
        fleet.start(timeout=90)
        try:
            m = fleet.machine(mac)
            wait_until(lambda: m.tftp is not None and m.tftp.blocks >= 100, timeout=60,
                       interval=0.002, what="the TFTP transfer to be under way",
                       evidence=lambda: f"state {m.state}: {m.timeline.events[-3:]}")
            fleet.power_off([mac])
            assert m.state == "off" and m.finished
            off = m.timeline.of_kind("power")[-1].detail["cut_at"]
            # the cut is complete: its macvlan is gone from the machines' namespace
            links = subprocess.run(["ip", "-n", lab.ns("machines"), "-o", "link"],
                                   capture_output=True, text=True, check=True).stdout
            assert f" {m.ifname}@" not in links, links
            # dnsmasq, unanswered, retransmits its DATA to the dead machine: wait for that,
            # so the silence below is silence under stimulus
            pcap = lab.pcaps["lan"]
            wait_until(lambda: [f for f in read_frames(pcap)
                                if f.dst == mac and f.ts > off and f.udp_sport != 67],
                       timeout=30, what="the TFTP server to resend to the cut machine",
                       interval=0.2)
        finally:
            _stop(fleet)
    lab.teardown()  # flushes the capture
    frames = read_frames(lab.pcaps["lan"])
    before = [f for f in frames if f.src == mac and f.ts <= off]
    after = [f for f in frames if f.src == mac and f.ts > off]
    assert [f for f in before if f.udp_dport and f.udp_dport not in (67, 69, 4011)], \
        "the capture should show the machine's TFTP ACKs before the cut"
    assert after == [], f"{len(after)} frames from {mac} after power off at {off}: {after[:5]}"
    resent = [f for f in frames if f.dst == mac and f.ts > off and f.udp_sport not in (67,)]
    assert resent, "the server should have kept sending to the machine after the cut"



def test_a_rebooting_machine_gives_up_its_device_until_its_next_lease(emu_lab: Lab) -> None:
    """A machine whose boot fails after its lease reboots with no address: its macvlan
    goes while it reboots, so the kernel stops copying the segment's broadcasts to it
    (a 5,000-machine storm whose rebooting machines kept theirs drowned in such copies)."""
    lab = emu_lab
    mac = "52:54:00:0f:f1:02"
    # the script URL is unreachable from the lab: every boot fails after DHCP and its device
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url="http://192.0.2.1/boot/${mac}.ipxe",
                         served_macs=(mac,))
    seen: list[bool] = []   # device present, at each look while the machine reboots
    with proxy:
        fleet = Fleet(lab, "machines", "lan",
                      [EmulatorSpec(mac, profile("ipxe-bios"), boot_attempts=3,
                                    reboot_delay=5.0)],
                      scale=0.1, linger=True)
        fleet.start(timeout=90)
        try:
            m = fleet.machine(mac)

            def watch() -> bool:
                if m.state == "rebooting":
                    seen.append(m.ifname in m.netdevs.created)
                return m.finished

            wait_until(watch, timeout=60, interval=0.01, what="the machine to give up",
                       evidence=lambda: f"state {m.state}: {m.timeline.events[-3:]}")
        finally:
            _stop(fleet)
    bound = [e for e in m.timeline.of_kind("state") if e.summary == "bound"]
    assert m.state == "failed" and len(bound) == 3, m.timeline.events
    assert seen, "the machine was never seen rebooting"
    assert not all(seen), \
        f"its device stayed up through every reboot ({len(seen)} looks)"
    links = subprocess.run(["ip", "-n", lab.ns("machines"), "-o", "link"],
                           capture_output=True, text=True, check=True).stdout
    assert f" {m.ifname}@" not in links, links


@contextlib.contextmanager
def cp_site(lab: Lab, mac: str) -> Iterator[Any]:
    """Control Plane (one cluster, ``mac`` assigned), site DHCP and our Boot Proxy, running."""
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            api = cp.api
            token = seed_cluster(api, [mac])
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token)
            with SiteDhcp(lab, "dhcp", "lan"), proxy:
                yield api
    finally:
        cp.close()


def test_reset_mid_boot_discovers_afresh_and_reaches_ready(
        make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(CP_TOPOLOGY)
    mac = "52:54:00:0f:f2:01"
    with cp_site(lab, mac) as api:
        fleet = Fleet(lab, "machines", "lan", [EmulatorSpec(mac, SLOW_EDK2)], scale=0.1)
        fleet.start(timeout=120)
        try:
            m = fleet.machine(mac)
            wait_until(lambda: m.tftp is not None and m.tftp.blocks >= 100,
                       timeout=60, interval=0.002, what="the first boot's TFTP",
                       evidence=lambda: f"state {m.state}")
            fleet.reset([mac])
            result = fleet.wait(120)
        finally:
            _stop(fleet)
        state = api.machines()[0].model_dump()
    got = result.by_mac(mac)
    assert got["state"] == "done", (got["error"], got["timeline"])
    assert got["boots"] == 2 and got["cuts"] == 1
    events = got["timeline"]["events"]
    states = [e["summary"] for e in events if e["kind"] == "state"]
    cut = states.index("off")
    assert "tftp" in states[:cut] and "ready" not in states[:cut]
    assert states[cut + 1] == "power-on" and states[-2:] == ["ready", "done"]
    assert state["mac"] == mac and state["state"] == "Ready", state
    off = next(e for e in events if e["kind"] == "power")["detail"]["unix"]

    pcap = lab.pcaps["lan"]
    lab.teardown()
    frames = read_frames(pcap)
    discovers = [f for f in frames if f.src == mac and f.dhcp_type == 1]
    first = {f.dhcp_xid for f in discovers if f.ts <= off}
    second = {f.dhcp_xid for f in discovers if f.ts > off}
    assert first and second, [(f.ts, f.dhcp_xid) for f in discovers]
    assert not first & second, "the reset machine reused an xid of its first boot"


def test_power_off_mid_http_sends_no_fin_or_reset(make_lab: Callable[[Topology], Lab]) -> None:
    """Cut while the agent waits on a slow registration: the open TCP connection dies
    silently (no FIN, no RST from the machine), even when the Control Plane answers it."""
    lab = make_lab(CP_TOPOLOGY)
    mac = "52:54:00:0f:f3:01"
    with cp_site(lab, mac) as api:
        api.set_fault("register", latency_ms=3000)
        fleet = Fleet(lab, "machines", "lan", [EmulatorSpec(mac, profile("ipxe-bios"))],
                      scale=0.1, linger=True)
        fleet.start(timeout=60)
        try:
            m = fleet.machine(mac)
            pcap = lab.pcaps["lan"]
            # the agent's POST /nodes/register has left the machine (the capture shows its
            # request line) and the Control Plane holds it for 3 s: cut now. The agent's
            # state is no proof: "clock" comes before the clock check's GET and the POST
            # (a cut there left nothing for the Control Plane to answer, in CI)
            wait_until(lambda: [f for f in read_frames(pcap) if f.src == mac
                                and f.tcp_head.startswith(REGISTER_REQUEST)],
                       timeout=30, what="the agent's registration to leave the machine",
                       evidence=lambda: m.state, interval=0.05)
            assert m.lease is not None
            address = m.lease.address
            fleet.power_off([mac])
            began = m.timeline.of_kind("power")[-1].detail["began"]
            off = m.timeline.of_kind("power")[-1].detail["cut_at"]
            assert m.timeline.of_kind("power")[-1].detail["state"] == "agent"
            # the Control Plane answers the dead connection once its latency is over
            wait_until(lambda: [f for f in read_frames(pcap) if f.dst == mac and f.ts > off
                                and f.ip_proto == 6],
                       timeout=15, what="the Control Plane to answer the cut connection",
                       interval=0.2)
        finally:
            _stop(fleet)
    lab.teardown()
    frames = read_frames(pcap)
    before = [f for f in frames if f.src == mac and f.ts <= off and f.ip_proto == 6]
    # while the cut is under way only the kernel may speak for the machine, and only to
    # acknowledge data arriving: a FIN, a reset or data (a TLS close_notify) is a goodbye
    during = [f for f in frames if f.src == mac and began < f.ts <= off]
    after = [f for f in frames if f.src == mac and f.ts > off]
    assert before, f"the capture should show the machine's TCP ({address}) before the cut"
    assert all(f.tcp_flags == "A" and f.tcp_payload == 0 for f in during), during
    assert after == [], f"{len(after)} frames from {mac} after power off: {after[:5]}"
