"""The TFTP server end to end on loopback: own client with options, and tftp-hpa's client."""

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bootproxy.tftp import TftpConfig, TftpServer, TransferError, fetch
from bootproxy.tftp.packets import (
    Data,
    Error,
    Opcode,
    OptionAck,
    Request,
    encode_ack,
    encode_error,
    encode_request,
    parse_packet,
)

pytestmark = pytest.mark.unit

CONTENT = os.urandom(300_000) + b"\n\r\nend\n"


@pytest.fixture
def boot_root(tmp_path: Path) -> Path:
    root = tmp_path / "boot"
    root.mkdir()
    (root / "ipxe.efi").write_bytes(CONTENT)
    (root / "exact").write_bytes(b"y" * 1024)
    (tmp_path / "secret").write_text("do not serve")
    os.symlink(tmp_path / "secret", root / "link-out")
    return root


@pytest.fixture(params=[{}, {"dedicated_threads": 0}], ids=["own-thread", "pump"])
def runner(request: pytest.FixtureRequest) -> dict[str, int]:
    """Which runner moves the transfers: a thread each (the default for the first few),
    or the one epoll thread every transfer past them shares; both must answer alike."""
    return dict(request.param)


@asynccontextmanager
async def serving(root: Path, **kw: object) -> AsyncIterator[TftpServer]:
    """A started server on an ephemeral loopback port, stopped on every path."""
    srv = TftpServer(TftpConfig(root=root, host="127.0.0.1", port=0, **kw))  # type: ignore[arg-type]
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def run(coro: Coroutine[object, object, None]) -> None:
    """Run one test coroutine on a fresh loop (no pytest-asyncio dependency)."""
    asyncio.run(asyncio.wait_for(coro, 60))


class _Raw(asyncio.DatagramProtocol):
    """A raw UDP peer for hand-written protocol exchanges: send, receive, or both."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))

    def send(self, datagram: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(datagram, addr)

    async def recv(self, timeout: float = 2.0) -> tuple[object, tuple[str, int]]:
        data, addr = await asyncio.wait_for(self.queue.get(), timeout)
        return parse_packet(data), addr

    async def ask(self, datagram: bytes, addr: tuple[str, int],
                  timeout: float = 2.0) -> tuple[object, tuple[str, int]]:
        """One step of an exchange: send ``datagram`` and return the next packet and its
        source (the server's transfer id)."""
        self.send(datagram, addr)
        return await self.recv(timeout)


@asynccontextmanager
async def raw_peer() -> AsyncIterator[_Raw]:
    """A raw loopback UDP peer, closed on every path: what each hand-written exchange
    with the server opens and must not leak."""
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(_Raw, local_addr=("127.0.0.1", 0))
    try:
        yield peer
    finally:
        transport.close()


def _rrq(name: str, **options: str) -> bytes:
    return encode_request(Request(Opcode.RRQ, name, "octet", options))


@pytest.mark.parametrize("options", [
    {}, {"blksize": "1468", "tsize": "0"}, {"blksize": "1024", "windowsize": "8", "timeout": "2"},
])
def test_fetch_with_options(boot_root: Path, runner: dict[str, int],
                            options: dict[str, str]) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server:
            host, port = server.address
            result = await fetch(host, port, "ipxe.efi", options)
            assert result.data == CONTENT
            if "tsize" in options:
                assert result.oack["tsize"] == str(len(CONTENT))
            if "windowsize" in options:
                assert result.oack["windowsize"] == "8"
                # ~293 blocks of 1024 in windows of 8: about 37 ACKs, not 293.
                assert result.acks_sent < 50
            await server.wait_idle()
            snap = server.counters
            assert snap.transfers_completed == 1
            assert snap.bytes_sent >= len(CONTENT)

    run(go())


def test_size_multiple_of_blksize(boot_root: Path, runner: dict[str, int]) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server:
            result = await fetch(*server.address, "exact", {"blksize": "512"})
            assert result.data == b"y" * 1024

    run(go())


@pytest.mark.parametrize("name,code", [("missing", 1), ("../secret", 2), ("/etc/passwd", 2),
                                       ("link-out", 2)])
def test_refused_names(boot_root: Path, runner: dict[str, int], name: str, code: int) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server:
            with pytest.raises(TransferError) as info:
                await fetch(*server.address, name, {"tsize": "0"})
            assert info.value.code == code
            kind = "file_not_found" if code == 1 else "access_violation"
            assert server.counters.errors[kind] == 1

    run(go())


def test_write_request_refused(boot_root: Path, runner: dict[str, int]) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server, raw_peer() as peer:
            wrq = encode_request(Request(Opcode.WRQ, "x", "octet", {}))
            packet, _ = await peer.ask(wrq, server.address)
            assert isinstance(packet, Error) and packet.code == 2

    run(go())


def test_new_tid_and_foreign_port_gets_error_5(boot_root: Path, runner: dict[str, int]) -> None:
    async def go() -> None:
        async with (serving(boot_root, **runner) as server, raw_peer() as client,
                    raw_peer() as stranger):
            packet, tid = await client.ask(_rrq("ipxe.efi", blksize="1024"), server.address)
            assert packet == OptionAck({"blksize": "1024"})
            assert tid[1] != server.address[1]
            reply, src = await stranger.ask(encode_ack(0), tid)
            assert isinstance(reply, Error) and reply.code == 5 and src == tid
            data, src = await client.ask(encode_ack(0), tid)
            assert isinstance(data, Data) and data.block == 1 and src == tid
            client.send(encode_error(0, "done here"), tid)
            await server.wait_idle()
            assert server.counters.errors["unknown_tid"] == 1

    run(go())


def test_duplicate_ack_gets_no_reply_and_timeout_resends(boot_root: Path,
                                                         runner: dict[str, int]) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as srv, raw_peer() as client:
            packet, tid = await client.ask(_rrq("ipxe.efi", timeout="1"), srv.address)
            assert isinstance(packet, OptionAck)
            first, _ = await client.ask(encode_ack(0), tid)
            assert first == Data(1, CONTENT[:512])
            second, _ = await client.ask(encode_ack(1), tid)
            assert isinstance(second, Data) and second.block == 2
            # a duplicate ACK 1 must not trigger a resend of 2, but the 1 s timer does
            resent, _ = await client.ask(encode_ack(1), tid, timeout=3.0)
            assert resent == second
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            again, _ = await client.recv(timeout=3.0)
            assert again == second and loop.time() - t0 > 0.8  # timer-paced, not ack-paced
            client.send(encode_error(0, "bye"), tid)

    run(go())


def test_error_8_after_oack_is_not_answered(boot_root: Path, runner: dict[str, int]) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server, raw_peer() as client:
            packet, tid = await client.ask(_rrq("ipxe.efi", tsize="0"), server.address)
            assert packet == OptionAck({"tsize": str(len(CONTENT))})
            client.send(encode_error(8, "tsize probe only"), tid)
            await server.wait_idle()
            with pytest.raises(TimeoutError):
                await client.recv(timeout=1.5)
            assert server.counters.option_probes == 1
            assert server.counters.transfers_failed == 0

    run(go())


class _ScriptedSocket:
    """socket.socket for `_transfer_sockets`: bind to port 0 takes the next scripted port."""

    script: list[int] = []
    made: list["_ScriptedSocket"] = []

    def __init__(self, *_: object) -> None:
        self.port = 0
        self.closed = False
        _ScriptedSocket.made.append(self)

    def setblocking(self, _flag: bool) -> None:
        pass

    def setsockopt(self, *_: object) -> None:
        pass

    def bind(self, addr: tuple[str, int]) -> None:
        self.port = addr[1] or _ScriptedSocket.script.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def connect(self, _peer: tuple[str, int]) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("avoid, want", [(5000, 5001), (None, 5000), (4000, 5000)])
def test_the_port_the_clients_last_transfer_had_is_not_handed_out_again(
        monkeypatch: pytest.MonkeyPatch, avoid: int | None, want: int) -> None:
    from bootproxy.tftp import server as server_module

    monkeypatch.setattr(server_module.socket, "socket", _ScriptedSocket)
    monkeypatch.setattr(_ScriptedSocket, "script", [5000, 5001])
    monkeypatch.setattr(_ScriptedSocket, "made", [])
    sock, strangers = server_module._transfer_sockets("127.0.0.1", ("127.0.0.1", 2000),
                                                      avoid=avoid)
    assert sock.getsockname()[1] == want and strangers.getsockname()[1] == want
    assert not sock.closed and not strangers.closed  # type: ignore[attr-defined]
    # the kernel's first pick, when it was the port to avoid, is held and then let go
    left = [s for s in _ScriptedSocket.made if s not in (sock, strangers)]
    assert all(s.closed for s in left) and len(left) == (1 if avoid == 5000 else 0)


def test_a_client_asking_again_from_its_port_is_not_given_its_last_tid_to_avoid(
        boot_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bootproxy.tftp import server as server_module

    asked: list[int | None] = []
    probe_port: list[int] = []
    real = server_module._transfer_sockets

    def recording(host: str, peer: tuple[str, int],
                  avoid: int | None = None) -> tuple[socket.socket, socket.socket]:
        asked.append(avoid)
        return real(host, peer, avoid)

    monkeypatch.setattr(server_module, "_transfer_sockets", recording)

    async def go() -> None:
        async with serving(boot_root) as server, raw_peer() as client:
            _, probe_tid = await client.ask(_rrq("ipxe.efi", tsize="0"), server.address)
            probe_port.append(probe_tid[1])
            client.send(encode_error(8, "tsize probe"), probe_tid)
            await server.wait_idle()
            packet, read_tid = await client.ask(_rrq("ipxe.efi", blksize="1468"),
                                                server.address)
            assert packet == OptionAck({"blksize": "1468"})
            assert read_tid != probe_tid
            client.send(encode_error(0, "enough"), read_tid)

    run(go())
    assert asked == [None, probe_port[0]]


def test_refused_client_gets_silence(boot_root: Path) -> None:
    async def go() -> None:
        asked: list[str] = []

        def allow(ip: str) -> bool:
            asked.append(ip)
            return False

        srv = TftpServer(TftpConfig(root=boot_root, host="127.0.0.1", port=0), allow=allow)
        await srv.start()
        try:
            with pytest.raises(TransferError) as info:
                await fetch(*srv.address, "ipxe.efi", timeout=0.3, retries=1)
            assert info.value.code is None  # a timeout: not one byte came back
            assert asked and asked[0] == "127.0.0.1"
            assert srv.counters.transfers_started == 0
        finally:
            await srv.stop()

    run(go())


def test_concurrency_cap_drops_extra_requests(boot_root: Path, runner: dict[str, int]) -> None:
    async def go() -> None:
        async with (serving(boot_root, **runner, max_transfers=1) as srv, raw_peer() as first,
                    raw_peer() as second):
            await first.ask(_rrq("ipxe.efi"), srv.address)
            second.send(_rrq("ipxe.efi"), srv.address)
            with pytest.raises(TimeoutError):
                await second.recv(timeout=0.5)
            assert srv.counters.errors["busy"] == 1

    run(go())


@pytest.mark.needs_binary("tftp", how="apt-get install tftp-hpa")
@pytest.mark.parametrize("mode", ["binary", "ascii"])
def test_tftp_hpa_client(boot_root: Path, runner: dict[str, int],
                         tmp_path: Path, mode: str) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server:
            host, port = server.address
            out = tmp_path / "got"
            proc = await asyncio.create_subprocess_exec(
                "tftp", "-m", mode, host, str(port), "-c", "get", "ipxe.efi", str(out),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode == 0, stdout
            if mode == "binary":
                assert out.read_bytes() == CONTENT
            else:
                # netascii round trip: the client converts CR LF back; bare CR came as CR NUL.
                assert out.read_bytes() == CONTENT

    run(go())


def test_port_in_use_raises(boot_root: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        async def go() -> None:
            srv = TftpServer(TftpConfig(root=boot_root, host="127.0.0.1",
                                        port=sock.getsockname()[1]))
            with pytest.raises(OSError):
                await srv.start()
        asyncio.run(go())
    finally:
        sock.close()


def test_retransmitted_rrq_does_not_start_a_second_transfer(boot_root: Path,
                                                            runner: dict[str, int]) -> None:
    async def go() -> None:
        async with serving(boot_root, **runner) as server, raw_peer() as client:
            first, tid = await client.ask(_rrq("ipxe.efi", blksize="1024"), server.address)
            assert isinstance(first, OptionAck)
            client.send(_rrq("ipxe.efi", blksize="1024"), server.address)  # "lost" OACK
            with pytest.raises(TimeoutError):
                await client.recv(timeout=0.5)  # no OACK from a second TID
            assert server.counters.errors["duplicate_request"] == 1
            assert server.counters.transfers_started == 1
            data, src = await client.ask(encode_ack(0), tid)
            assert isinstance(data, Data) and data.block == 1 and src == tid
            assert server.counters.bytes_sent == 1024  # counted live, mid-transfer
            client.send(encode_error(0, "bye"), tid)

    run(go())
