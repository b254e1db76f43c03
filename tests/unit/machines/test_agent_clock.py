"""The emulated agent's clock: SNTP as RFC 4330 computes it, and what it reports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from harness.machines.sim.agent import (
    NTP_EPOCH,
    ClockExchange,
    NodeFacts,
    http_clock_facts,
    recv_arrival,
    sntp_offset,
    sntp_request,
    stamp_arrivals,
)

pytestmark = pytest.mark.unit


def _stamp(unix: float) -> bytes:
    secs = unix + NTP_EPOCH
    return struct.pack("!II", int(secs), int((secs % 1) * 2**32))


def _reply(origin: bytes, t2: float, t3: float, *, mode: int = 4, stratum: int = 8) -> bytes:
    head = bytes([0x20 | mode, stratum]) + b"\0" * 22
    return head + origin + _stamp(t2) + _stamp(t3)


def test_offset_of_a_clock_five_seconds_fast() -> None:
    t1 = 1_800_000_000.25           # the client's (fast) clock at send
    server_now = t1 - 5.0 + 0.010   # the server's clock: 5 s behind, 10 ms one way
    reply = _reply(sntp_request(t1)[40:48], server_now, server_now + 0.001)
    offset = sntp_offset(reply, t1, t1 + 0.021)
    assert offset == pytest.approx(-5.0, abs=0.001)


def test_request_is_a_version_4_client_request_with_our_timestamp() -> None:
    req = sntp_request(1_800_000_000.5)
    assert len(req) == 48 and req[0] == 0x23
    assert req[40:48] == _stamp(1_800_000_000.5)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r[:40], "bytes"),
    (lambda r: bytes([0x23]) + r[1:], "mode 3"),
    (lambda r: r[:1] + b"\0" + r[2:], "kiss-o'-death"),
    (lambda r: r[:24] + b"\1" * 8 + r[32:], "origin"),
])
def test_a_reply_that_is_no_answer_is_refused(mutate, message: str) -> None:
    t1 = 1_800_000_000.0
    good = _reply(sntp_request(t1)[40:48], t1, t1)
    with pytest.raises(ValueError, match=message):
        sntp_offset(mutate(good), t1, t1)


def test_payload_reports_the_clock_as_given_and_the_address() -> None:
    body = NodeFacts(clock_skew=7.0).payload("52:54:00:00:00:01", "efi", 1000.0,
                                             ipv4="10.0.0.9")
    assert body["facts"]["clock_unix"] == 1000.0  # the caller applies skew and NTP step
    assert body["facts"]["nics"] == [{"name": "eth0", "mac": "52:54:00:00:00:01",
                                      "ipv4": "10.0.0.9"}]
    assert "ipv4" not in NodeFacts().payload("52:54:00:00:00:01", "efi", 1.0)["facts"]["nics"][0]


def test_a_two_way_exchange_bounds_the_offset_by_half_the_round_trip() -> None:
    """The server read its clock somewhere between sent and received: whichever moment,
    the true offset lies within the error of the midpoint's."""
    sent, received = 1000.0, 1001.2          # a slow exchange: 1.2 s round trip
    for server_read_at in (sent, 1000.3, received):   # by the agent's clock
        true_offset = 3.0                    # the agent is 3 s ahead of the server
        exchange = ClockExchange(sent, server_read_at - true_offset, received)
        assert exchange.error == pytest.approx(0.6)
        assert abs(exchange.offset - true_offset) <= exchange.error + 1e-9


@pytest.mark.parametrize(("offset", "error", "decided"), [
    (0.2, 0.3, True), (-0.7, 0.3, True), (4.0, 0.5, True), (-1.2, 0.1, True),
    (0.7, 0.7, False), (1.05, 0.3, False), (-1.3, 0.5, False)])
def test_an_exchange_decides_only_when_its_bound_leaves_no_doubt(
        offset: float, error: float, decided: bool) -> None:
    exchange = ClockExchange(100.0 - error, 100.0 - offset, 100.0 + error)
    assert exchange.offset == pytest.approx(offset) and exchange.error == pytest.approx(error)
    assert exchange.decides(1.0) is decided


def test_the_shortest_round_trip_is_reported_and_none_reports_nothing() -> None:
    slow = ClockExchange(100.0, 98.4, 101.0)
    quick = ClockExchange(200.0, 197.95, 200.1)
    facts = http_clock_facts("http://10.0.0.1:8000/api/v1/time", [slow, quick, slow])
    assert facts == {"clock_source": "http", "clock_server": "http://10.0.0.1:8000/api/v1/time",
                     "clock_offset_s": pytest.approx(2.1), "clock_error_s": pytest.approx(0.05)}
    assert http_clock_facts("http://x/api/v1/time", []) == {}
    body = NodeFacts().payload("52:54:00:00:00:01", "efi", 1.0, clock=facts)
    assert body["facts"]["clock_error_s"] == pytest.approx(0.05)


@contextlib.contextmanager
def _stamped_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A non-blocking receiver on loopback with kernel arrival stamps on, and a sender."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        stamp_arrivals(rx)
        _until_arrivals_are_stamped(rx, tx)
        rx.setblocking(False)
        yield rx, tx


def _until_arrivals_are_stamped(rx: socket.socket, tx: socket.socket) -> None:
    """Wait until the kernel stamps datagrams when they arrive, not when they are read.

    Turning SO_TIMESTAMPNS on enables the kernel's global stamping switch through deferred
    work; until that work runs (late on a loaded host), a datagram is stamped only when
    recvmsg reads it. A probe read after a pause shows which: a stamp older than the read
    means arrival stamping is live.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tx.sendto(b"probe", rx.getsockname())
        time.sleep(0.02)
        before_read = time.time()
        _data, ancillary, _flags, _addr = rx.recvmsg(64, socket.CMSG_SPACE(16))
        stamps = [struct.unpack("qq", raw[:16]) for _lvl, _kind, raw in ancillary]
        if stamps and stamps[0][0] + stamps[0][1] / 1e9 < before_read:
            return
    pytest.fail("the kernel never stamped a datagram on arrival within 10 s")


def test_recv_arrival_gives_the_kernels_arrival_time_not_the_busy_loops() -> None:
    """An emulated agent on a loop busy with other machines must not count that delay as
    network time: the reply's arrival is the kernel's stamp."""
    async def main() -> tuple[float, float, float]:
        with _stamped_pair() as (rx, tx):
            sent = time.time()
            tx.sendto(b"reply", rx.getsockname())
            time.sleep(0.4)  # the loop is busy elsewhere while the reply waits
            data, arrived = await recv_arrival(rx, 64)
            assert data == b"reply"
            return sent, arrived, time.time()

    sent, arrived, read = asyncio.run(main())
    assert abs(arrived - sent) < 0.1 and read - arrived > 0.3


def test_recv_arrival_waits_for_a_datagram_that_comes_later() -> None:
    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        with _stamped_pair() as (rx, tx):
            loop.call_later(0.1, tx.sendto, b"late", rx.getsockname())
            async with asyncio.timeout(5):
                data, _ = await recv_arrival(rx, 64)
            return data

    assert asyncio.run(main()) == b"late"
