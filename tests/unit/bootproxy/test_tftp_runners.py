"""Who moves a transfer's datagrams: a thread each for the first few, the epoll pump after.

What the two runners must share with each other (and with tftpd-hpa's process per
transfer): a timer that duplicates cannot postpone, a stop that does not wait for
timers, and a failure that ends one transfer, not the server.
"""

import asyncio
import errno
import mmap
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bootproxy.tftp import ReadTransfer, TftpConfig, TftpCounters, TftpServer
from bootproxy.tftp.mover import Transfer
from bootproxy.tftp.packets import (
    Data,
    Opcode,
    OptionAck,
    Request,
    encode_ack,
    encode_error,
    encode_request,
    parse_packet,
)
from bootproxy.tftp.pump import TransferPump
from bootproxy.tftp.threads import TransferThreads
from bootproxy.tftp.transfer import Outcome

pytestmark = pytest.mark.unit

CONTENT = bytes(range(256)) * 40  # 10,240 bytes: 21 blocks of 512


def run(coro: Coroutine[object, object, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def _client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(3.0)
    return sock


async def _recv(sock: socket.socket, timeout: float = 3.0) -> tuple[object, tuple[str, int]]:
    """The next packet on a blocking client socket, read off the event loop."""
    sock.settimeout(timeout)
    data, addr = await asyncio.to_thread(sock.recvfrom, 65536)
    return parse_packet(data), addr


async def _until(check: object, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        await asyncio.sleep(0.01)


def _transfer_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("tftp-1")}


@pytest.fixture
def boot_root(tmp_path: Path) -> Path:
    (tmp_path / "f.bin").write_bytes(CONTENT)
    return tmp_path


def _rrq(**options: str) -> bytes:
    return encode_request(Request(Opcode.RRQ, "f.bin", "octet", options))


@asynccontextmanager
async def _serving(root: Path, threads: int) -> AsyncIterator[tuple[TftpServer, socket.socket]]:
    """A started server with ``threads`` dedicated threads and one client, both closed on
    every path (stopping a stopped server is a no-op)."""
    server = TftpServer(TftpConfig(root=root, host="127.0.0.1", port=0,
                                   dedicated_threads=threads))
    await server.start()
    client = _client()
    try:
        yield server, client
    finally:
        client.close()
        await server.stop()


async def _at_data_1(server: TftpServer, client: socket.socket) -> tuple[str, int]:
    """Start a transfer with a 1 s timeout and take DATA 1; the transfer's address."""
    client.sendto(_rrq(timeout="1"), server.address)
    _, tid = await _recv(client)
    client.sendto(encode_ack(0), tid)
    first, _ = await _recv(client)
    assert first == Data(1, CONTENT[:512])
    return tid


def test_the_first_transfers_get_a_thread_each_and_the_rest_the_pump(boot_root: Path) -> None:
    async def go() -> None:
        server = TftpServer(TftpConfig(root=boot_root, host="127.0.0.1", port=0,
                                       dedicated_threads=2))
        await server.start()
        clients = [_client() for _ in range(4)]
        try:
            tids = []
            for client in clients[:3]:
                client.sendto(_rrq(timeout="5"), server.address)
                oack, tid = await _recv(client)
                assert oack == OptionAck({"timeout": "5"})
                tids.append(tid)
            names = {f"tftp-127.0.0.1:{c.getsockname()[1]}" for c in clients[:2]}
            assert _transfer_threads() == names
            # every runner serves: the pumped third transfer gets its DATA too
            clients[2].sendto(encode_ack(0), tids[2])
            data, _ = await _recv(clients[2])
            assert data == Data(1, CONTENT[:512])
            # the first ends: its thread is gone and the next transfer gets one
            clients[0].sendto(encode_error(0, "done"), tids[0])
            await _until(lambda: server.counters.transfers_failed == 1, "counted")
            await _until(lambda: len(_transfer_threads()) == 1, "its thread gone")
            clients[3].sendto(_rrq(timeout="5"), server.address)
            await _recv(clients[3])
            assert _transfer_threads() == {
                f"tftp-127.0.0.1:{c.getsockname()[1]}" for c in (clients[1], clients[3])}
        finally:
            for client in clients:
                client.close()
            await server.stop()
        assert _transfer_threads() == set()

    run(go())


@pytest.mark.parametrize("threads", [1, 0], ids=["own-thread", "pump"])
def test_duplicate_acks_do_not_postpone_the_resend(boot_root: Path, threads: int) -> None:
    """A client repeating an old ACK every 0.2 s must still get the resend at the timeout:
    a timer restarted by every datagram received would never fire."""
    async def go() -> None:
        async with _serving(boot_root, threads) as (server, client):
            tid = await _at_data_1(server, client)
            sent = time.monotonic()
            first = Data(1, CONTENT[:512])

            async def repeat() -> None:
                while True:
                    await asyncio.sleep(0.2)
                    client.sendto(encode_ack(0), tid)

            repeating = asyncio.create_task(repeat())
            try:
                again, _ = await _recv(client, timeout=3.0)
            finally:
                repeating.cancel()
            waited = time.monotonic() - sent
            assert again == first
            assert 0.8 < waited < 1.5, waited
            client.sendto(encode_error(0, "bye"), tid)

    run(go())


@pytest.mark.parametrize("threads", [1, 0], ids=["own-thread", "pump"])
def test_stop_ends_a_waiting_transfer_at_once(boot_root: Path, threads: int) -> None:
    async def go() -> None:
        async with _serving(boot_root, threads) as (server, client):
            client.sendto(_rrq(timeout="10"), server.address)
            await _recv(client)  # the OACK; no ACK follows, so the transfer waits 10 s
            began = time.monotonic()
            await server.stop()
            assert time.monotonic() - began < 2.0
            assert server.counters.transfers_failed == 1
            assert server.counters.errors["aborted"] == 1
            assert server.counters.active == 0
            assert _transfer_threads() == set()

    run(go())


def _failing_read(offset: int, count: int) -> bytes:
    if offset >= 512:
        raise OSError(errno.EIO, "Input/output error")
    return CONTENT[offset:offset + count]


@pytest.mark.parametrize("runner_type", [TransferThreads, TransferPump],
                         ids=["own-thread", "pump"])
def test_a_failing_transfer_ends_alone(runner_type: type[TransferThreads | TransferPump]
                                       ) -> None:
    """A read error (EIO from the disk) inside one transfer ends that transfer, closes its
    socket, reports it ended, and leaves the runner serving the next one."""
    async def go() -> None:
        loop = asyncio.get_running_loop()
        ended: list[Transfer] = []
        runner = runner_type(loop, TftpCounters(), ended.append)
        client = _client()
        try:
            transfers = []
            for read in (_failing_read, lambda o, c: CONTENT[o:o + c]):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind(("127.0.0.1", 0))
                sock.connect(client.getsockname())
                sock.setblocking(False)
                machine = ReadTransfer(read=read, size=len(CONTENT), timeout=5.0)
                transfers.append(Transfer(sock, client.getsockname(), machine, lambda: None,
                                          loop.create_future()))
            broken, healthy = transfers
            runner.add(broken)
            first, _ = await _recv(client)
            assert first == Data(1, CONTENT[:512])  # sent before the read of block 2 failed
            await _until(lambda: broken in ended, "the broken transfer reported ended")
            assert broken.sock.fileno() == -1
            runner.add(healthy)
            got = b""
            tid = None
            while True:
                data, tid = await _recv(client)
                assert isinstance(data, Data)
                got += data.payload
                client.sendto(encode_ack(data.block), tid)
                if len(data.payload) < 512:
                    break
            assert got == CONTENT
            await _until(lambda: healthy in ended, "the healthy transfer ended")
        finally:
            client.close()
            await runner.stop()

    run(go())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_each_transfer_has_a_port_of_its_own_and_leaves_no_socket_behind(boot_root: Path
                                                                        ) -> None:
    """A transfer's port is shared by two sockets (the connected one and the strangers'
    catcher), so it must still be a port no other transfer holds; and both are closed
    when the transfer ends."""
    async def go() -> None:
        server = TftpServer(TftpConfig(root=boot_root, host="127.0.0.1", port=0))
        await server.start()
        before = _open_fds()
        clients = [_client() for _ in range(40)]
        try:
            for client in clients:
                client.sendto(_rrq(timeout="5"), server.address)
            tids = [(await _recv(client))[1] for client in clients]
            assert len(set(tids)) == len(clients)
            assert server.counters.transfers_started == len(clients)
            for client, tid in zip(clients, tids, strict=True):
                client.sendto(encode_error(0, "bye"), tid)
            for client in clients:
                client.close()
            clients.clear()
            await server.wait_idle()
            # every transfer's two sockets and its file are closed (the clients' too)
            assert _open_fds() == before
        finally:
            for client in clients:
                client.close()
            await server.stop()

    run(go())


_SEND_LATER = r"""
import socket, sys, time
at, port = float(sys.argv[1]), int(sys.argv[2])
sock = socket.socket(fileno=int(sys.argv[4]))
time.sleep(max(0.0, at - time.monotonic()))
sock.sendto(bytes.fromhex(sys.argv[3]), ("127.0.0.1", port))
with open(sys.argv[5], "r+b") as sent:  # seen by the GIL holder through its mmap
    sent.write(b"\x01")
"""


@asynccontextmanager
async def _mapped(path: Path) -> AsyncIterator[mmap.mmap]:
    """``path`` mapped shared: another process's write to the file shows in it at once."""
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        yield m


@pytest.mark.parametrize("threads", [1, 0], ids=["own-thread", "pump"])
def test_an_error_queued_while_the_runner_waited_for_the_gil_is_read_before_a_resend(
        boot_root: Path, threads: int, tmp_path: Path) -> None:
    """Under load a runner whose timer ran out may get the GIL only later, while the
    client's ERROR 8 already sits in its socket: it must read it, not resend the OACK
    (TFTP-4: silence after ERROR 8; a storm's capture caught a resend 50 ms late).

    The load is made here: this thread holds the GIL across the server's deadline (a
    long switch interval and a busy loop), and another process sends the ERROR meanwhile
    from the client's socket."""
    sent_flag = tmp_path / "sent"
    sent_flag.write_bytes(b"\x00")

    async def go() -> None:
        async with _serving(boot_root, threads) as (server, client), \
                _mapped(sent_flag) as sent:
            client.sendto(_rrq(tsize="0", timeout="1"), server.address)
            oack, tid = await _recv(client)
            assert isinstance(oack, OptionAck)
            deadline = time.monotonic() + 1.0  # the server's timer, started just before
            send_at = deadline + 0.15
            sender = subprocess.Popen(
                [sys.executable, "-c", _SEND_LATER, str(send_at), str(tid[1]),
                 encode_error(8, "size probe").hex(), str(client.fileno()), str(sent_flag)],
                pass_fds=[client.fileno()], stdin=subprocess.DEVNULL)
            try:
                # idle (GIL free) until just before the deadline, then hold the GIL past
                # it until the ERROR is in the server's socket: on a loaded host the
                # sender may start late, and a GIL let go before it sent tests nothing
                await asyncio.sleep(max(0.0, deadline - 0.1 - time.monotonic()))
                interval = sys.getswitchinterval()
                sys.setswitchinterval(5.0)
                try:
                    give_up = send_at + 30.0
                    # a memory read and the vDSO clock: nothing here lets the GIL go
                    while time.monotonic() < send_at + 0.3 or (
                            sent[0] == 0 and time.monotonic() < give_up):
                        pass
                finally:
                    sys.setswitchinterval(interval)
                assert sent[0] == 1, "the sender never sent the ERROR"
                assert sender.wait(10) == 0
            finally:
                if sender.poll() is None:
                    sender.kill()
                    sender.wait()
            await _until(lambda: server.counters.active == 0, "the probe ended")
            assert server.counters.option_probes == 1
            client.settimeout(1.5)
            with pytest.raises(TimeoutError):
                data, _ = await asyncio.to_thread(client.recvfrom, 65536)
                raise AssertionError(f"the server resent after the ERROR: {data!r}")

    run(go())


@pytest.mark.parametrize("threads", [1, 0], ids=["own-thread", "pump"])
def test_a_client_whose_port_closed_ends_its_transfer_at_once(boot_root: Path,
                                                              threads: int) -> None:
    """A machine reset mid-transfer closes its port: the kernel answers the next DATA
    with ICMP port unreachable, which reaches the transfer's connected socket. Waiting
    out every retry (here 5 x 1 s) only held a transfer slot for nobody."""
    async def go() -> None:
        async with _serving(boot_root, threads) as (server, client):
            await _at_data_1(server, client)
            client.close()  # gone: DATA 1's resend is refused
            began = time.monotonic()
            await _until(lambda: server.counters.active == 0, "the transfer ended", 10.0)
            assert time.monotonic() - began < 2.5  # the first resend, not the last retry
            assert server.counters.transfers_failed == 1
            assert server.counters.errors["client_gone"] == 1

    run(go())


def test_a_client_gone_after_the_last_block_is_tftp8_not_a_failure() -> None:
    """Gone after the final DATA went out (its ACK lost): the file was delivered as far as
    the server can know, as when the retries run out (TFTP-8)."""
    machine = ReadTransfer(read=lambda o, c: CONTENT[o:o + c], size=100)
    machine.start()
    assert machine.sent == machine.last_block == 1
    machine.on_peer_gone()
    assert machine.finished and machine.outcome is Outcome.FINAL_UNACKED
    early = ReadTransfer(read=lambda o, c: CONTENT[o:o + c], size=len(CONTENT))
    early.start()
    early.on_peer_gone()
    assert early.finished and early.outcome is Outcome.CLIENT_GONE
    assert early.on_timeout() == []  # finished: nothing more is sent
