"""TFTP rules on traffic a loaded but correct server produces (seen in the 1,000-machine
storm): retried requests, timer resends that land just after a late duplicate ACK, and
an ERROR answering a stray packet after the client's ERROR 8. None of these is a defect;
the defects next to them still are."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.capture.synth import Host
from harness.capture.synth_flows import BIOS, Flow, bios_flow
from harness.rules import Report

pytestmark = pytest.mark.unit

Judge = Callable[..., Report]
RRQ = b"\x00\x01pxelinux.0\x00octet\x00blksize\x00512\x00"
OACK = b"\x00\x06blksize\x00512\x00"


def _ack(n: int) -> bytes:
    return b"\x00\x04" + n.to_bytes(2, "big")


def _data(n: int, size: int = 512) -> bytes:
    return b"\x00\x03" + n.to_bytes(2, "big") + bytes(size)


def _error(code: int) -> bytes:
    return b"\x00\x05" + code.to_bytes(2, "big") + b"x\x00"


def _hosts(f: Flow) -> tuple[Host, Host]:
    return Host(BIOS.mac, BIOS.ip), f.site.proxy


def _retried_request(f: Flow, *, change_port_mid_transfer: bool = False) -> None:
    bios_flow(f)
    me, p = _hosts(f)
    f.b.udp(me, p, 2080, 69, RRQ, 0.01)
    f.b.udp(me, p, 2080, 69, RRQ, 1.0)          # the client's own retry
    f.b.udp(p, me, 40010, 2080, OACK, 0.01)      # answer to the first request
    f.b.udp(p, me, 40011, 2080, OACK, 0.01)      # answer to the retry, from a new port
    f.b.udp(me, p, 2080, 40010, _ack(0), 0.01)   # the client keeps the first ...
    f.b.udp(me, p, 2080, 40011, _error(5), 0.01)  # ... and turns the other away
    f.b.udp(p, me, 40010, 2080, _data(1), 0.01)
    f.b.udp(me, p, 2080, 40010, _ack(1), 0.01)
    f.b.udp(p, me, 40012 if change_port_mid_transfer else 40010, 2080, _data(2, 10), 0.01)
    f.b.udp(me, p, 2080, 40010, _ack(2), 0.01)


def test_a_retried_request_answered_twice_is_two_transfers(judge: Judge) -> None:
    assert "TFTP-1" not in judge(_retried_request).failed_rules()


def test_a_port_change_inside_a_transfer_is_still_caught(judge: Judge) -> None:
    report = judge(lambda f: _retried_request(f, change_port_mid_transfer=True))
    assert "TFTP-1" in report.failed_rules()


def _slow_client(f: Flow) -> None:
    bios_flow(f)
    me, p = _hosts(f)
    f.b.udp(me, p, 2090, 69, RRQ, 0.01)
    f.b.udp(p, me, 40020, 2090, OACK, 0.01)
    f.b.udp(me, p, 2090, 40020, _ack(0), 0.01)
    f.b.udp(p, me, 40020, 2090, _data(1), 0.01)
    f.b.udp(me, p, 2090, 40020, _ack(1), 0.01)
    f.b.udp(p, me, 40020, 2090, _data(2), 0.01)   # lost on the way
    f.b.udp(p, me, 40020, 2090, _data(2), 1.0)    # the server's 1 s timer
    f.b.udp(me, p, 2090, 40020, _ack(1), 0.98)    # the client's own late resend ...
    f.b.udp(p, me, 40020, 2090, _data(2), 0.02)   # ... just before the timer fires again
    f.b.udp(me, p, 2090, 40020, _ack(2), 0.01)
    f.b.udp(p, me, 40020, 2090, _data(3, 10), 0.01)
    f.b.udp(me, p, 2090, 40020, _ack(3), 0.01)


def test_a_timer_resend_just_after_a_duplicate_ack_is_not_the_apprentice(judge: Judge) -> None:
    assert "TFTP-7" not in judge(_slow_client).failed_rules()


def _after_error8(f: Flow, server_sends: bytes, crossing: bool = False) -> None:
    bios_flow(f)
    me, p = _hosts(f)
    f.b.udp(me, p, 2095, 69, b"\x00\x01pxelinux.0\x00octet\x00tsize\x000\x00", 0.01)
    f.b.udp(p, me, 40030, 2095, b"\x00\x06tsize\x003000\x00", 0.01)
    f.b.udp(me, p, 2095, 40030, _error(8), 0.01)
    if crossing:  # the server's timer resend, on the wire before the ERROR 8 reached it
        f.b.udp(p, me, 40030, 2095, b"\x00\x06tsize\x003000\x00", 0.005)
        return
    f.b.udp(me, p, 2095, 40030, _ack(0), 0.5)     # a confused client's stray packet
    f.b.udp(p, me, 40030, 2095, server_sends, 0.01)


def test_an_error_answering_a_stray_packet_after_error_8_is_fine(judge: Judge) -> None:
    assert "TFTP-4" not in judge(lambda f: _after_error8(f, _error(5))).failed_rules()


def test_data_after_error_8_is_still_caught(judge: Judge) -> None:
    assert "TFTP-4" in judge(lambda f: _after_error8(f, _data(1))).failed_rules()


def _unanswered_probe_then_real_request(f: Flow) -> None:
    bios_flow(f)
    me, p = _hosts(f)
    # EDK2's size probe is dropped by a loaded server; the client goes on to the real read
    f.b.udp(me, p, 2099, 69, b"\x00\x01pxelinux.0\x00octet\x00tsize\x000\x00blksize\x00512\x00",
            0.01)
    f.b.udp(me, p, 2099, 69,
            b"\x00\x01pxelinux.0\x00octet\x00blksize\x00512\x00windowsize\x004\x00", 3.0)
    f.b.udp(p, me, 40040, 2099, b"\x00\x06blksize\x00512\x00windowsize\x004\x00", 0.01)
    f.b.udp(me, p, 2099, 40040, _ack(0), 0.01)
    f.b.udp(p, me, 40040, 2099, _data(1, 10), 0.01)
    f.b.udp(me, p, 2099, 40040, _ack(1), 0.01)


def test_an_unanswered_request_does_not_take_the_next_ones_answer(judge: Judge) -> None:
    # seen in a boot storm: the OACK for the real read was judged against the dropped
    # probe's options ("windowsize not requested")
    assert "TFTP-3" not in judge(_unanswered_probe_then_real_request).failed_rules()


def test_a_resend_crossing_the_error_8_on_the_wire_is_fine(judge: Judge) -> None:
    assert "TFTP-4" not in judge(lambda f: _after_error8(f, b"", crossing=True)).failed_rules()


PROBE = b"\x00\x01ipxe.efi\x00octet\x00tsize\x000\x00blksize\x001468\x00"
PROBE_OACK = b"\x00\x06tsize\x00850528\x00blksize\x001468\x00"
READ = b"\x00\x01ipxe.efi\x00octet\x00blksize\x001468\x00windowsize\x004\x00"
READ_OACK = b"\x00\x06blksize\x001468\x00windowsize\x004\x00"


def _probe_then_read_on_the_same_tids(f: Flow, *, late_probe_resend: bool = False) -> None:
    """EDK2's size probe, its ERROR 8, and the real read from the same client port, which
    the server happened to answer from the port the probe had (the kernel picked it again:
    seen in boot-storm, 2026-12-06). The server resends that OACK on its timer."""
    bios_flow(f)
    me, p = _hosts(f)
    f.b.udp(me, p, 44264, 69, PROBE, 0.01)
    f.b.udp(p, me, 47302, 44264, PROBE_OACK, 0.001)
    f.b.udp(me, p, 44264, 47302, _error(8), 0.6)
    f.b.udp(me, p, 44264, 69, READ, 0.0005)
    if late_probe_resend:
        # a server that did not stop: the probe's OACK again, a second after its ERROR 8
        # (the read is answered from a new port)
        f.b.udp(p, me, 47302, 44264, PROBE_OACK, 1.0)
        f.b.udp(p, me, 47400, 44264, READ_OACK, 0.001)
        return
    f.b.udp(p, me, 47302, 44264, READ_OACK, 0.001)
    for _ in range(2):
        f.b.udp(p, me, 47302, 44264, READ_OACK, 1.0)  # the read's timer resends


def test_a_read_answered_from_the_probes_port_is_a_transfer_of_its_own(judge: Judge) -> None:
    report = judge(_probe_then_read_on_the_same_tids)
    assert "TFTP-4" not in report.failed_rules()
    assert "TFTP-3" not in report.failed_rules()


def test_the_probes_own_oack_resent_after_its_error_8_is_still_caught(judge: Judge) -> None:
    report = judge(lambda f: _probe_then_read_on_the_same_tids(f, late_probe_resend=True))
    assert "TFTP-4" in report.failed_rules()
