"""Capture.dhcp_of: a client's DHCP events from an index built once (the judge asks it
for every machine of a storm; a scan per machine was O(machines x packets))."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.capture.synth_flows import BIOS, UEFI, Flow, bios_flow, uefi_flow

pytestmark = pytest.mark.unit


def test_dhcp_of_is_what_a_scan_finds_in_frame_order(tmp_path: Path) -> None:
    f = Flow()
    bios_flow(f)
    uefi_flow(f)
    bios_flow(f)
    cap = decode_pcap(f.b.write(str(tmp_path / "c.pcap")))
    for mac in (BIOS.mac, UEFI.mac):
        scan = [e for e in cap.dhcp if e.chaddr == mac]
        assert scan and cap.dhcp_of(mac) == scan
    assert cap.dhcp_of("52:54:00:ff:ff:ff") == []
    cap.dhcp_of(BIOS.mac).clear()  # the caller's copy
    assert cap.dhcp_of(BIOS.mac) == [e for e in cap.dhcp if e.chaddr == BIOS.mac]
    # the cache is not part of what a capture is: equal captures stay equal
    assert cap == decode_pcap(str(tmp_path / "c.pcap"))
