"""The 4011 load generator: packets it builds, replies it parses, a run on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

import pytest

from bench.errors import BenchError
from bench.pxe4011 import ACK, build_discover, build_request, menu_types, parse_reply, run_load
from bootproxy.dhcp.codec import parse as decode

pytestmark = pytest.mark.unit

MAC = "00:0c:01:00:00:2a"


def test_request_carries_boot_item_and_pxe_options() -> None:
    raw = build_request(MAC, 0x1234, "10.0.0.5", item_type=0x8001)
    pkt = decode(raw)
    assert pkt.xid == 0x1234 and pkt.mac == MAC and pkt.ciaddr == "10.0.0.5"
    assert pkt.message_type == 3
    assert pkt.get(60) == b"PXEClient:Arch:00007:UNDI:003016"
    assert pkt.get(93) == b"\x00\x07"
    vendor = pkt.get(43)
    assert vendor is not None and vendor[:6] == bytes((71, 4)) + struct.pack("!HH", 0x8001, 0)
    assert raw.endswith(b"\xff")


def test_discover_is_relayed() -> None:
    pkt = decode(build_discover(MAC, 7, "10.0.0.9"))
    assert pkt.message_type == 1 and pkt.giaddr == "10.0.0.9"


def test_bad_mac_is_refused() -> None:
    with pytest.raises(BenchError, match="not a MAC"):
        build_request("00:0c:01", 1, "10.0.0.5", 0)


def _ack_for(request: bytes) -> bytes:
    reply = bytearray(request)
    reply[0] = 2
    opt = reply.index(bytes((53, 1, 3)), 240)
    reply[opt + 2] = ACK
    return bytes(reply)


def test_parse_reply_reads_xid_and_type_and_rejects_requests() -> None:
    req = build_request(MAC, 99, "10.0.0.5", 0)
    assert parse_reply(req) is None  # a BOOTREQUEST is no reply
    parsed = parse_reply(_ack_for(req))
    assert parsed is not None and parsed[0] == 99 and parsed[1] == ACK


def test_menu_types_reads_43_9() -> None:
    menu = bytes((9, 8)) + struct.pack("!H", 0x8001) + bytes((1,)) + b"a" \
        + struct.pack("!H", 0) + bytes((0,))
    assert menu_types(bytes((6, 1, 8)) + menu + b"\xff") == [0x8001, 0]


def _echo_server(sock: socket.socket, answer_every: int, stop: threading.Event) -> None:
    """Answer every ``answer_every``-th request with an ACK (a lossy fake proxy)."""
    n = 0
    sock.settimeout(0.05)
    while not stop.is_set():
        try:
            data, addr = sock.recvfrom(2048)
        except TimeoutError:
            continue
        n += 1
        if n % answer_every == 0:
            sock.sendto(_ack_for(data), addr)


@pytest.mark.parametrize(("answer_every", "expect_received"), [(1, 200), (2, 100)])
def test_run_on_loopback_counts_answers_and_drops(answer_every: int,
                                                  expect_received: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=_echo_server, args=(server, answer_every, stop))
    thread.start()
    try:
        result = asyncio.run(run_load("127.0.0.1", [MAC, "00:0c:01:00:00:2b"], rate=2000,
                                      count=200, duration=5, item_type=0, bind="127.0.0.1",
                                      source_port=0, server_port=port, drain=2.0))
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.sent == 200
    assert result.received == expect_received
    assert result.drop_ratio == pytest.approx(1 - expect_received / 200)
    out = result.as_dict()
    lat = out["latency_ms"]
    assert isinstance(lat, dict) and lat["p50"] is not None and lat["p50"] < 1000


def test_run_is_bounded_by_duration() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        result = asyncio.run(run_load("127.0.0.1", [MAC], rate=100, count=10_000,
                                      duration=0.3, item_type=0, bind="127.0.0.1",
                                      source_port=0, server_port=sink.getsockname()[1],
                                      drain=0.1))
    finally:
        sink.close()
    assert 20 <= result.sent <= 40  # ~100/s for 0.3 s, not 10,000
    assert result.received == 0 and result.drop_ratio == 1.0
