"""A transfer alone on its thread polls for its next ACK before sleeping, and only then.

What would make the lone-boot shortcut wrong: polling while other transfers need the
CPU and the GIL, polling on and on for a client too slow to be caught, a poll that
delays a stop, or a window that is not bounded.  Each has a test here; the speed it
buys is a benchmark figure (bench/tftp_http.py, the "flexlab-sleep" rows), not a test.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path

import pytest

from bootproxy.tftp import ReadTransfer, TftpConfig, TftpCounters, TftpServer, fetch
from bootproxy.tftp.__main__ import main as tftp_main
from bootproxy.tftp.mover import Transfer
from bootproxy.tftp.packets import Data, Opcode, Request, encode_ack, encode_request, parse_packet
from bootproxy.tftp.threads import _POLL_BACKOFF, TransferThreads

pytestmark = pytest.mark.unit

BLOCKS = 80  # blocks of 512 in CONTENT (the last one short)
CONTENT = bytes(range(256)) * 2 * (BLOCKS - 1) + b"end"


def run(coro: Coroutine[object, object, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def _ack_everything(client: socket.socket, delay: float, got: bytearray) -> None:
    """A blocking client: take each DATA, wait ``delay``, ACK it; stop after the short one."""
    while True:
        datagram, tid = client.recvfrom(65536)
        data = parse_packet(datagram)
        assert isinstance(data, Data)
        got += data.payload
        if delay:
            time.sleep(delay)
        client.sendto(encode_ack(data.block), tid)
        if len(data.payload) < 512:
            return


def _one_transfer(poll_us: int, running: int, delay: float) -> Transfer:
    """Serve CONTENT on a TransferThreads with ``running`` transfers counted as running
    in the server, to a client that ACKs each block after ``delay``; the ended transfer."""
    async def go() -> Transfer:
        loop = asyncio.get_running_loop()
        counters = TftpCounters(active=running)
        ended: list[Transfer] = []
        runner = TransferThreads(loop, counters, ended.append, ack_poll_us=poll_us)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.settimeout(10)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.connect(client.getsockname())
        sock.setblocking(False)
        machine = ReadTransfer(read=lambda o, c: CONTENT[o:o + c], size=len(CONTENT),
                               timeout=5.0)
        transfer = Transfer(sock, client.getsockname(), machine, lambda: None,
                            loop.create_future())
        got = bytearray()
        try:
            acking = threading.Thread(target=_ack_everything, args=(client, delay, got))
            acking.start()
            runner.add(transfer)
            await asyncio.to_thread(acking.join, 30)
            assert not acking.is_alive()
            while transfer not in ended:
                await asyncio.sleep(0.01)
        finally:
            client.close()
            await runner.stop()
        assert bytes(got) == CONTENT
        return transfer

    return asyncio.run(asyncio.wait_for(go(), 60))


def test_a_lone_transfer_takes_every_ack_by_polling() -> None:
    # a window of half a second: a client on this host always answers inside it
    transfer = _one_transfer(poll_us=500_000, running=1, delay=0)
    assert (transfer.polls_caught, transfer.polls_missed) == (BLOCKS, 0)


def test_no_poll_while_another_transfer_runs() -> None:
    """Two transfers share the host: each sleeps in recv, leaving the CPU to the other."""
    transfer = _one_transfer(poll_us=500_000, running=2, delay=0)
    assert (transfer.polls_caught, transfer.polls_missed) == (0, 0)


def test_no_poll_when_switched_off() -> None:
    transfer = _one_transfer(poll_us=0, running=1, delay=0)
    assert (transfer.polls_caught, transfer.polls_missed) == (0, 0)


def test_a_client_slower_than_the_window_is_polled_for_once_per_backoff() -> None:
    """ACKs 10 ms after each DATA against a 1 ms window: every poll misses, and after a
    miss the next ``_POLL_BACKOFF`` blocks are waited for asleep."""
    transfer = _one_transfer(poll_us=1_000, running=1, delay=0.01)
    polls = len(range(0, BLOCKS, _POLL_BACKOFF + 1))  # the waits for blocks 1, 66, ...
    assert polls == 2  # the content spans more than one backoff
    assert (transfer.polls_caught, transfer.polls_missed) == (0, polls)


def test_the_server_counts_the_polls_of_each_transfer(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(CONTENT)

    async def go() -> None:
        server = TftpServer(TftpConfig(root=tmp_path, host="127.0.0.1", port=0,
                                       ack_poll_us=500_000))
        await server.start()
        try:
            host, port = server.address
            for _ in range(2):  # one after the other: each alone, so each on the thread
                result = await fetch(host, port, "f.bin")
                assert result.data == CONTENT
                await server.wait_idle()
            assert server.counters.acks_polled == 2 * BLOCKS
            assert server.counters.ack_polls_missed == 0
            assert server.counters.snapshot()["acks_polled"] == 2 * BLOCKS
        finally:
            await server.stop()

    run(go())


def test_stop_does_not_wait_for_a_poll(tmp_path: Path) -> None:
    """Nobody ACKs DATA 1 while the thread polls with a window of most of a second:
    stop() still ends the transfer at once (its socket shut down reads empty)."""
    (tmp_path / "f.bin").write_bytes(CONTENT)

    async def go() -> None:
        server = TftpServer(TftpConfig(root=tmp_path, host="127.0.0.1", port=0,
                                       ack_poll_us=900_000))
        await server.start()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.settimeout(3)
        try:
            client.sendto(encode_request(Request(Opcode.RRQ, "f.bin", "octet", {})),
                          server.address)
            first = parse_packet((await asyncio.to_thread(client.recvfrom, 65536))[0])
            assert first == Data(1, CONTENT[:512])
            began = time.monotonic()
            await server.stop()
            assert time.monotonic() - began < 0.5
            assert server.counters.errors["aborted"] == 1
        finally:
            client.close()
            await server.stop()

    run(go())


@pytest.mark.parametrize("poll_us", [-1, 1_000_001])
def test_a_window_out_of_bounds_is_refused(tmp_path: Path, poll_us: int,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"ack_poll_us must be 0\.\.1000000"):
        TftpConfig(root=tmp_path, ack_poll_us=poll_us)
    with pytest.raises(SystemExit) as exit_info:
        tftp_main(["--root", str(tmp_path), "--ack-poll-us", str(poll_us)])
    assert exit_info.value.code == 2
    assert "ack_poll_us must be 0..1000000" in capsys.readouterr().err
