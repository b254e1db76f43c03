"""The emulators' TFTP client against a small loopback server: options, windows, probe, retries."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import struct
from typing import Any

import pytest

from harness.machines.sim.errors import BootFailed
from harness.machines.sim.tftp import ACK, DATA, ERROR, OACK, TftpClient

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

FILE = os.urandom(10_000)


class Server(asyncio.DatagramProtocol):
    """Answers RRQs from a new port (its TID), honouring blksize/windowsize/tsize.

    ``drop_first_data`` loses DATA 1 once, ``stranger`` sends one packet from another port,
    ``stale_oack`` resends the OACK of a transfer the client already aborted (as a loaded
    server whose resend timer fired while the client's ERROR 8 was on its way does).
    """

    def __init__(self, drop_first_data: bool = False, stranger: bool = False,
                 stale_oack: bool = False) -> None:
        self.log: list[Any] = []
        self.stale_oack = stale_oack
        self.drop_first_data = drop_first_data
        self.stranger = stranger
        self.tasks: list[asyncio.Task[None]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        parts = data[2:].split(b"\0")
        opts = {parts[i].decode(): parts[i + 1].decode() for i in range(2, len(parts) - 1, 2)}
        self.log.append(("RRQ", parts[0].decode(), opts))
        self.tasks.append(asyncio.get_running_loop().create_task(self.transfer(opts, addr)))

    async def transfer(self, opts: dict[str, str], client: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        try:
            blk = int(opts.get("blksize", 512))
            win = int(opts.get("windowsize", 1))
            oack = b""
            for key in ("blksize", "tsize", "windowsize"):
                if key in opts:
                    val = str(len(FILE)) if key == "tsize" else opts[key]
                    oack += key.encode() + b"\0" + val.encode() + b"\0"
            if oack:
                await loop.sock_sendto(sock, struct.pack("!H", OACK) + oack, client)
                reply = await asyncio.wait_for(loop.sock_recv(sock, 1500), 5)
                op, num = struct.unpack("!HH", reply[:4])
                self.log.append(("ERROR" if op == ERROR else "ACK", num))
                if op == ERROR:
                    if self.stale_oack:
                        await loop.sock_sendto(sock, struct.pack("!H", OACK) + oack, client)
                    return
            if self.stranger:
                other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                other.bind(("127.0.0.1", 0))
                other.setblocking(False)
                await loop.sock_sendto(other, struct.pack("!HH", DATA, 1) + b"x", client)
                err = await asyncio.wait_for(loop.sock_recv(other, 100), 5)
                self.log.append(("stranger-got", struct.unpack("!HH", err[:4])))
                other.close()
            blocks = [FILE[i:i + blk] for i in range(0, len(FILE) + 1, blk)]
            acked = 0
            while acked < len(blocks):
                for n in range(acked + 1, min(acked + win, len(blocks)) + 1):
                    if n == 1 and self.drop_first_data:
                        self.drop_first_data = False
                        continue
                    await loop.sock_sendto(sock, struct.pack("!HH", DATA, n) + blocks[n - 1],
                                           client)
                try:
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 1500), 5)
                except TimeoutError:
                    continue
                op, num = struct.unpack("!HH", reply[:4])
                assert op == ACK
                self.log.append(("ACK", num))
                acked = max(acked, num)
        finally:
            sock.close()


async def fetch(server: Server, **kw: Any) -> tuple[Any, Server]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server,
                                                       local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        client = TftpClient(sock, "127.0.0.1", (0.3, 0.3, 0.3), port=port)
        if kw.pop("probe_then_get", False):
            await client.probe_size("f", 1468)
            await asyncio.wait_for(asyncio.gather(*server.tasks), 5)
            result: Any = await client.get("f", **kw)
        elif kw.pop("probe", False):
            result = await client.probe_size("f", 1468)
        else:
            result = await client.get("f", **kw)
        # the server logs the client's last packet (final ACK / ERROR 8) before we look
        await asyncio.wait_for(asyncio.gather(*server.tasks), 5)
        return result, server
    finally:
        sock.close()
        transport.close()


def test_options_window_and_digest() -> None:
    res, server = asyncio.run(fetch(Server(), blksize=1000, tsize=True, windowsize=4))
    assert res.sha256 == hashlib.sha256(FILE).hexdigest() and res.size == len(FILE)
    assert res.oack == {"blksize": "1000", "tsize": str(len(FILE)), "windowsize": "4"}
    assert server.log[0] == ("RRQ", "f", {"blksize": "1000", "tsize": "0", "windowsize": "4"})
    acks = [n for kind, *rest in server.log[1:] if kind == "ACK" for n in rest]
    # ACK 0 for the OACK, then one per window of 4 blocks and the short last block (11 blocks)
    assert acks == [0, 4, 8, 11]


def test_size_probe_aborts_with_error_8() -> None:
    size, server = asyncio.run(fetch(Server(), probe=True))
    assert size == len(FILE)
    assert server.log[-1] == ("ERROR", 8)


def test_a_late_resend_from_the_aborted_probe_is_not_taken_for_the_next_answer() -> None:
    # seen in the 1,000-machine storm: the client answered the stale OACK with ACK 0 and
    # then refused the real transfer's packets as coming from an unknown transfer id
    res, _server = asyncio.run(fetch(Server(stale_oack=True), probe_then_get=True,
                                    blksize=1000, tsize=False, windowsize=None))
    assert res.sha256 == hashlib.sha256(FILE).hexdigest() and res.foreign_packets == 0


def test_lost_block_is_recovered_by_timeout_retransmission() -> None:
    res, _ = asyncio.run(fetch(Server(drop_first_data=True), blksize=512, tsize=False,
                               windowsize=None))
    assert res.sha256 == hashlib.sha256(FILE).hexdigest() and res.retransmits >= 1


def test_packet_from_another_port_gets_error_5_and_transfer_continues() -> None:
    res, server = asyncio.run(fetch(Server(stranger=True), blksize=512, tsize=True,
                                    windowsize=None))
    assert ("stranger-got", (ERROR, 5)) in server.log
    assert res.foreign_packets == 1 and res.sha256 == hashlib.sha256(FILE).hexdigest()


def test_silence_fails_like_firmware() -> None:
    async def run() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dead.bind(("127.0.0.1", 0))  # bound, never answers
        try:
            client = TftpClient(sock, "127.0.0.1", (0.05, 0.05), port=dead.getsockname()[1])
            await client.get("f", blksize=None, tsize=False, windowsize=None)
        finally:
            sock.close()
            dead.close()

    with pytest.raises(BootFailed) as exc:
        asyncio.run(run())
    assert exc.value.code == "PXE-E32"


def test_after_a_long_wait_a_short_one_times_out_on_its_own_deadline() -> None:
    # The client keeps one timer and moves its deadline. After the RRQ's second try (a 3 s
    # wait) DATA 1 comes at once, and the wait for DATA 2 is the first timeout again,
    # 0.2 s: a timer still set for the 3 s deadline would resend ACK 1 only then.
    async def run() -> float:
        loop = asyncio.get_running_loop()
        listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tid = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (listen, tid, sock):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        try:
            client = TftpClient(sock, "127.0.0.1", (0.2, 3.0), port=listen.getsockname()[1])
            task = asyncio.ensure_future(
                client.get("f", blksize=None, tsize=False, windowsize=None))
            await asyncio.wait_for(loop.sock_recvfrom(listen, 1500), 5)  # RRQ, not answered
            _, addr = await asyncio.wait_for(loop.sock_recvfrom(listen, 1500), 5)  # its resend
            await loop.sock_sendto(tid, struct.pack("!HH", DATA, 1) + FILE[:512], addr)
            first = await asyncio.wait_for(loop.sock_recv(tid, 100), 5)
            acked_at = loop.time()
            again = await asyncio.wait_for(loop.sock_recv(tid, 100), 5)  # DATA 2 "lost"
            gap = loop.time() - acked_at
            assert first == again == struct.pack("!HH", ACK, 1)
            await loop.sock_sendto(tid, struct.pack("!HH", DATA, 2) + b"end", addr)
            result = await asyncio.wait_for(task, 5)
            assert result.size == 515 and result.retransmits == 2
            return gap
        finally:
            for s in (listen, tid, sock):
                s.close()

    assert asyncio.run(run()) < 1.5


def test_a_power_cut_mid_transfer_stops_the_client_at_once() -> None:
    # A cut cancels the machine's task while it waits for DATA: the wait ends now, and
    # nothing is resent afterwards (no timer of the dead transfer is left to fire).
    async def run() -> None:
        loop = asyncio.get_running_loop()
        listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (listen, sock):
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        try:
            client = TftpClient(sock, "127.0.0.1", (0.3, 0.3, 0.3), port=listen.getsockname()[1])
            task = asyncio.ensure_future(
                client.get("f", blksize=None, tsize=False, windowsize=None))
            await asyncio.wait_for(loop.sock_recvfrom(listen, 1500), 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 0.5)
            with pytest.raises(TimeoutError):  # the 0.3 s resend never comes
                await asyncio.wait_for(loop.sock_recvfrom(listen, 1500), 1.0)
        finally:
            listen.close()
            sock.close()

    asyncio.run(run())
