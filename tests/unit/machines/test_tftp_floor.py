"""The emulated firmware's TFTP waits have a wall-clock floor at any time scale.

The firmware matrix runs at time scale 0.1; the ROM's (1, 2, 4, 8) s waits for the
server's next packet then were 1.5 s in all, and under CI load dnsmasq was not scheduled
for that long: the machine failed mid-file (PXE-E35), a flake the real ROM would not have
had. A server that stalls 2 s mid-transfer reproduces it without load.
"""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from harness.machines.sim.errors import BootFailed
from harness.machines.sim.profiles import profile
from harness.machines.sim.tftp import ACK, DATA, PEER_WAIT_FLOOR, TftpClient, scaled_timeouts

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

FILE = bytes(range(256)) * 8  # 2,048 bytes: blocks 1-4 of 512 and an empty block 5
STALL = 2.0  # seconds the loaded host keeps the server off the CPU before block 3


async def _stalling_server(sock: socket.socket) -> None:
    """Lockstep TFTP from a new port (its TID), pausing ``STALL`` s before block 3."""
    loop = asyncio.get_running_loop()
    _, client = await loop.sock_recvfrom(sock, 1500)
    data_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    data_sock.bind(("127.0.0.1", 0))
    data_sock.setblocking(False)
    try:
        blocks = [FILE[i:i + 512] for i in range(0, len(FILE) + 1, 512)]
        for n, block in enumerate(blocks, start=1):
            if n == 3:
                await asyncio.sleep(STALL)
            await loop.sock_sendto(data_sock, struct.pack("!HH", DATA, n) + block, client)
            while True:  # the client's duplicate ACKs from the stall are read and dropped
                reply = await asyncio.wait_for(loop.sock_recv(data_sock, 1500), 10)
                if struct.unpack("!HH", reply[:4]) == (ACK, n):
                    break
    finally:
        data_sock.close()


async def _fetch(timeouts: tuple[float, ...]) -> int:
    loop = asyncio.get_running_loop()
    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind(("127.0.0.1", 0))
    listen.setblocking(False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    server = loop.create_task(_stalling_server(listen))
    try:
        client = TftpClient(sock, "127.0.0.1", timeouts, port=listen.getsockname()[1])
        result = await client.get("f", blksize=None, tsize=False, windowsize=None)
        return result.size
    finally:
        server.cancel()
        sock.close()
        listen.close()


def test_waits_scaled_without_a_floor_lose_a_stalled_server() -> None:
    """The flake itself: 0.1 x (1, 2, 4, 8) s gives up inside a 2 s stall."""
    bare = tuple(t * 0.1 for t in profile("edk2-x64").tftp_timeouts)
    assert sum(bare) < STALL
    with pytest.raises(BootFailed, match=r"PXE-E35.*block 3"):
        asyncio.run(_fetch(bare))


def test_the_floor_rides_out_the_stall() -> None:
    waits = scaled_timeouts(profile("edk2-x64").tftp_timeouts, 0.1)
    assert min(waits) == PEER_WAIT_FLOOR and sum(waits) > STALL
    assert asyncio.run(_fetch(waits)) == len(FILE)


def test_the_floor_never_lengthens_a_real_wait() -> None:
    assert scaled_timeouts((1.0, 2.0, 4.0, 8.0), 1.0) == (1.0, 2.0, 4.0, 8.0)
    assert scaled_timeouts((0.5, 4.0), 0.1) == (0.5, 1.0)  # a wait under the floor stays
    assert scaled_timeouts((4.0, 8.0, 16.0), 0.5) == (2.0, 4.0, 8.0)
