"""The DHCP hot path's shortcuts behave exactly like the plain code they replaced.

Bursts larger than one receive batch are all answered, replies the kernel
refuses are queued and sent in order, counter handles are the same series as
`Registry.inc`, reply logs still appear when INFO is on, and the one-pass
option read, the hex MAC and the cached address packing agree with the
definitions they shortcut.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootproxy.dhcp.codec import CodecError, DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.dhcp.responder import ResponderConfig, _options
from bootproxy.dhcp.server import RECEIVE_BATCH, DhcpListener
from bootproxy.logs import JsonFormatter
from bootproxy.metrics import Registry

pytestmark = pytest.mark.unit


def _mac(i: int) -> str:
    return f"52:54:00:00:{(i >> 8) & 255:02x}:{i & 255:02x}"


def _request(i: int) -> bytes:
    return encode(
        DhcpPacket(
            xid=i,
            chaddr=bytes.fromhex(_mac(i).replace(":", "")),
            options=[
                (Opt.MESSAGE_TYPE, bytes((MessageType.REQUEST,))),
                (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003016"),
                (Opt.CLIENT_ARCH, b"\x00\x07"),
                (Opt.VENDOR_SPECIFIC, bytes((71, 4, 0, 0, 0, 0, 255))),
            ],
        )
    )


def _listener(registry: Registry, **kw: Any) -> DhcpListener:
    return DhcpListener(
        iface="lo", port=0, role=4011, server_addr="127.0.0.1", config=ResponderConfig(),
        served=lambda mac: True, registry=registry, bind_host="127.0.0.1",
        bind_device=False, **kw,
    )


def _client(rcvbuf: int | None = None) -> socket.socket:
    """A non-blocking UDP socket on loopback to send requests from and read replies on
    (``rcvbuf`` bytes of receive buffer, for a burst of replies)."""
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if rcvbuf is not None:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    return client


async def _collect(client: socket.socket, want: int, timeout: float = 10.0) -> list[bytes]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        assert left > 0, f"only {len(got)} of {want} replies arrived"
        try:
            got.append(await asyncio.wait_for(loop.sock_recv(client, 2048), left))
        except TimeoutError:
            continue
    return got


def test_a_burst_larger_than_one_batch_is_answered_whole() -> None:
    count = 2 * RECEIVE_BATCH + 17

    async def body() -> None:
        registry = Registry()
        listener = _listener(registry)
        await listener.start()
        client = _client(rcvbuf=4 * 1024 * 1024)
        try:
            # every request is in the listener's socket before the loop runs once
            for i in range(count):
                client.sendto(_request(i), ("127.0.0.1", listener.port))
            replies = await _collect(client, count)
            assert sorted(parse(r).xid for r in replies) == list(range(count))
            assert registry.value("bootproxy_dhcp_acks_total", interface="lo") == count
            assert registry.value(
                "bootproxy_dhcp_received_total", interface="lo", port=str(listener.port)
            ) == count
        finally:
            client.close()
            listener.close()

    asyncio.run(body())


class _RefusingSocket:
    """A real socket whose first `refuse` sends fail as a full send buffer would."""

    def __init__(self, real: socket.socket, refuse: int) -> None:
        self.real = real
        self.refuse = refuse

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if self.refuse > 0:
            self.refuse -= 1
            raise BlockingIOError
        return self.real.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_replies_the_kernel_refuses_are_queued_and_sent_in_order() -> None:
    async def body() -> None:
        registry = Registry()
        listener = _listener(registry)
        await listener.start()
        assert listener.sock is not None
        listener.sock = _RefusingSocket(listener.sock, refuse=1)  # type: ignore[assignment]
        client = _client()
        try:
            for i in range(5):
                client.sendto(_request(i), ("127.0.0.1", listener.port))
            replies = await _collect(client, 5)
            assert [parse(r).xid for r in replies] == [0, 1, 2, 3, 4]
            assert registry.value("bootproxy_dhcp_acks_total", interface="lo") == 5
            assert registry.total("bootproxy_dhcp_drops_total") == 0
            # queued replies are timed too, from their request's receipt
            assert registry.value("bootproxy_dhcp_reply_latency_seconds_count",
                                  interface="lo", kind="ack") == 5
        finally:
            client.close()
            listener.close()

    asyncio.run(body())


def test_reply_latency_runs_from_receipt_to_send() -> None:
    """A 40 ms --reply-delay-ms lands every reply in the buckets above 25 ms, none below."""
    delay = 0.04

    async def body() -> None:
        registry = Registry()
        listener = DhcpListener(
            iface="lo", port=0, role=4011, server_addr="127.0.0.1",
            config=ResponderConfig(reply_delay=delay), served=lambda mac: True,
            registry=registry, bind_host="127.0.0.1", bind_device=False,
        )
        await listener.start()
        client = _client()
        try:
            for i in range(3):
                client.sendto(_request(i), ("127.0.0.1", listener.port))
            await _collect(client, 3)
        finally:
            client.close()
            listener.close()

        def sample(name: str, **labels: str) -> float:
            return registry.value(f"bootproxy_dhcp_reply_latency_seconds_{name}",
                                  interface="lo", kind="ack", **labels)

        assert sample("count") == 3
        assert sample("bucket", le="0.025") == 0 and sample("bucket", le="+Inf") == 3
        assert 3 * delay <= sample("sum") < 3 * (delay + 1.0)

    asyncio.run(body())


def test_close_stops_answering_and_is_idempotent() -> None:
    """Answering before close; a request already waiting in the socket when close() runs
    is never answered; a second close() is harmless; the port is free again."""

    async def body() -> None:
        listener = _listener(Registry())
        await listener.start()
        port = listener.port
        client = _client()
        try:
            client.sendto(_request(1), ("127.0.0.1", port))
            [reply] = await _collect(client, 1)
            assert parse(reply).xid == 1
            # queued in the listener's socket; the loop has not run since, so only close()
            # stands between this request and its answer
            client.sendto(_request(2), ("127.0.0.1", port))
            listener.close()
            listener.close()
            with pytest.raises(TimeoutError):  # an answer would come within milliseconds
                await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 2048), 0.5)
        finally:
            client.close()
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", port))  # nothing holds the port any more
        finally:
            probe.close()

    asyncio.run(body())


def test_reply_is_logged_when_info_is_on(caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        listener = _listener(Registry())
        await listener.start()
        client = _client()
        try:
            client.sendto(_request(7), ("127.0.0.1", listener.port))
            await _collect(client, 1)
        finally:
            client.close()
            listener.close()

    logger = logging.getLogger("bootproxy")
    old_propagate = logger.propagate
    logger.propagate = True
    try:
        with caplog.at_level(logging.INFO, logger="bootproxy"):
            asyncio.run(body())
    finally:
        logger.propagate = old_propagate
    acks = [r for r in caplog.records if r.getMessage() == "dhcp_ack"]
    assert len(acks) == 1
    doc = json.loads(JsonFormatter("t").format(acks[0]))
    assert doc["mac"] == _mac(7) and doc["xid"] == "00000007" and doc["file"] == "ipxe.efi"


def test_counter_handle_is_the_same_series_as_inc() -> None:
    registry = Registry()
    handle = registry.counter("bootproxy_dhcp_drops_total", reason="x", interface="lo")
    # the series exists at 0 from the handle on (rate() needs the 0 before the first drop)
    assert 'bootproxy_dhcp_drops_total{interface="lo",reason="x"} 0.0' in registry.render()
    handle.inc()
    registry.inc("bootproxy_dhcp_drops_total", interface="lo", reason="x")
    handle.inc(2)
    assert registry.value("bootproxy_dhcp_drops_total", reason="x", interface="lo") == 4
    assert 'bootproxy_dhcp_drops_total{interface="lo",reason="x"} 4.0' in registry.render()


_option = st.tuples(st.sampled_from([43, 53, 60, 77, 82, 93, 97]), st.binary(max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.lists(_option, max_size=8))
def test_one_pass_options_agree_with_get(options: list[tuple[int, bytes]]) -> None:
    packet = DhcpPacket(options=options)
    table = _options(packet)
    for code in {c for c, _ in options} | {54, 61}:
        assert table.get(code) == packet.get(code)


@given(st.binary(min_size=16, max_size=16), st.integers(0, 16))
def test_mac_is_the_colon_hex_of_the_first_hlen_bytes(chaddr: bytes, hlen: int) -> None:
    packet = DhcpPacket(chaddr=chaddr, hlen=hlen)
    assert packet.mac == ":".join(f"{b:02x}" for b in chaddr[:hlen])


def test_cached_address_packing_still_refuses_bad_addresses() -> None:
    for _ in range(2):  # the second round would hit a cache entry if errors were cached
        with pytest.raises(CodecError):
            encode(DhcpPacket(siaddr="10.0.0.256"))
    good = encode(DhcpPacket(siaddr="10.0.0.1"))
    assert parse(good).siaddr == "10.0.0.1"
