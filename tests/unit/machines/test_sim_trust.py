"""The emulated node's trust in its Control Plane: the CA from the boot's newc initrds, and
refusals named as the real agent names them (unknown-ca, hostname-mismatch, expired, no-ca).

TLS is checked for real on loopback against certificates made by the Control Plane's own
fault generator (controlplane.tls), so each reason comes from OpenSSL's verify code."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest

from bootproxy.cainitrd import CA_PATH, ca_initrd
from bootproxy.cptls import _REASONS as PROXY_REASONS
from controlplane.tls import TlsFiles, fault_server_cert, make_lab_ca
from harness.machines.sim import http as sim_http
from harness.machines.sim import trust
from harness.machines.sim.errors import BootFailed, TlsRefused
from harness.machines.sim.machine import EmulatorSpec, Lease, SimMachine
from harness.machines.sim.profiles import profile
from harness.machines.sim.script import BootScript

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _entry(name: str, data: bytes = b"", mode: int = 0o100644, magic: bytes = b"070701") -> bytes:
    """One newc entry written field by field from the format (not bootproxy's writer)."""
    encoded = name.encode() + b"\0"
    fields = [1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    head = magic + b"".join(b"%08x" % f for f in fields) + encoded
    return head + b"\0" * (-len(head) % 4) + data + b"\0" * (-len(data) % 4)


def _archive(*entries: bytes) -> bytes:
    return b"".join(entries) + _entry("TRAILER!!!", mode=0)


# -- the newc reader ------------------------------------------------------------------------

def test_the_proxys_ca_initrd_yields_the_pem_at_the_agents_path() -> None:
    files = trust.read_newc(ca_initrd(PEM))
    assert files == {CA_PATH: PEM}  # the directory entry is not a file
    assert CA_PATH == "flexlab/cp-ca.pem"  # what nodeimage/files/agent.sh reads


def test_concatenated_archives_unpack_in_order_and_the_later_file_wins() -> None:
    first = _archive(_entry("./flexlab/cp-ca.pem", b"old"), _entry("etc/x", b"1"))
    second = _archive(_entry("/flexlab/cp-ca.pem", b"new"))
    data = first + b"\0" * 12 + second  # NUL padding between archives, as initrd_with_ca
    assert trust.read_newc(data) == {"flexlab/cp-ca.pem": b"new", "etc/x": b"1"}


def test_odd_name_and_body_lengths_are_padded_to_four() -> None:
    data = _archive(_entry("a", b"x"), _entry("bcdefgh", b"yz123"),
                    _entry("c", b"", mode=0o120777), _entry("d", b"w", magic=b"070702"))
    assert trust.read_newc(data) == {"a": b"x", "bcdefgh": b"yz123", "d": b"w"}


@pytest.mark.parametrize(("mangle", "words"), [
    (lambda a: a[:50], "cut short"),
    (lambda a: a[:-134], "bytes announced"),  # the trailer (124) and 10 bytes of the PEM
    (lambda a: a[:6] + b"zzzzzzzz" + a[14:], "not hex"),
    (lambda a: a + b"garbage!", "no newc magic"),
    (lambda a: a[:94] + b"%08x" % 4000 + a[102:], "runs past the end"),
], ids=["header", "body", "hex", "trailing", "name"])
def test_a_damaged_archive_is_an_error_naming_what(mangle: Callable[[bytes], bytes],
                                                    words: str) -> None:
    with pytest.raises(trust.CpioError, match=words):
        trust.read_newc(mangle(ca_initrd(PEM)))


def test_cp_ca_passes_over_initrds_that_are_not_newc() -> None:
    image = b"\x1f\x8b\x08" + b"\0" * 100  # a gzip-compressed node image: not readable here
    assert trust.cp_ca([b"I" * 4096, image]) is None
    assert trust.cp_ca([b"I" * 4096, ca_initrd(PEM)]) == PEM
    other = _archive(_entry("etc/motd", b"hi"))
    assert trust.cp_ca([ca_initrd(PEM), other]) == PEM  # a later archive without it keeps it


# -- verify codes ---------------------------------------------------------------------------

def test_reasons_are_the_boot_proxys() -> None:
    """One mapping in three places (proxy, node https.sh, sim): the sim's copy must agree."""
    assert trust._REASONS == PROXY_REASONS
    assert trust.verify_reason(20) == "unknown-ca"
    assert trust.verify_reason(64) == "hostname-mismatch"
    assert trust.verify_reason(10) == "expired"
    assert trust.verify_reason(9) == "not-yet-valid"
    assert trust.verify_reason(24) == "verify-failed"  # invalid CA certificate: unlisted


def test_an_unloadable_ca_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a PEM CA"):
        trust.client_context(PEM)  # the right shape, not a certificate


# -- TLS for real on loopback ---------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TlsFiles]:
    folder = tmp_path_factory.mktemp("pki")
    made = {"good": make_lab_ca(folder, ["localhost"], ["127.0.0.1"])}
    for fault in ("wrong-ca", "wrong-name", "expired"):
        made[fault] = fault_server_cert(folder, fault, ["localhost"], ["127.0.0.1"])
    return made


class FakeCp:
    """A TLS server answering like the Control Plane's agent API; counts request bytes."""

    def __init__(self, files: TlsFiles) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(files.server_cert, files.server_key)
        self.received = 0
        self.requests: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        self.received += len(head)
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        path = head.split(b" ")[1].decode()
        self.requests.append(path)
        reply: dict[str, Any] = {}
        if path.endswith("/register"):
            reply = {"state": "Registered", "node_token": "n1", "reasons": []}
        elif path == "/api/v1/time":  # the agent's clock measurement without NTP
            reply = {"unix": time.time()}
        body = json.dumps(reply).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(body) + body)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> FakeCp:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def _loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.parametrize(("case", "reason"), [
    ("good", None), ("wrong-ca", "unknown-ca"), ("wrong-name", "hostname-mismatch"),
    ("expired", "expired"),
])
def test_https_verifies_against_the_delivered_ca_only(certs: dict[str, TlsFiles], case: str,
                                                       reason: str | None) -> None:
    context, info = trust.client_context(certs["good"].ca_cert.read_bytes())
    assert len(info.sha256) == 64 and "flexlab lab CA" in info.subject

    async def body() -> tuple[object, int]:
        async with FakeCp(certs[case]) as cp:
            url = f"https://127.0.0.1:{cp.port}/api/v1/time"  # an IP: checked against the SAN
            try:
                result: object = await sim_http.request(_loopback(), url, tls=context,
                                                        timeout=5)
            except BootFailed as exc:
                result = exc
            await asyncio.sleep(0.05)  # let the server's handler see what it was sent
            return result, cp.received

    result, received = asyncio.run(body())
    if reason is None:
        assert isinstance(result, sim_http.HttpResponse) and result.status == 200, result
        assert received > 0
    else:
        assert isinstance(result, TlsRefused), result
        assert (result.code, result.reason, result.host) == ("TLS", reason, "127.0.0.1")
        assert result.verify_code in {c for c, r in PROXY_REASONS.items() if r == reason}
        assert received == 0  # refused in the handshake: not one byte of the request


def test_the_context_holds_the_delivered_ca_and_nothing_else(
        certs: dict[str, TlsFiles]) -> None:
    context, _ = trust.client_context(certs["good"].ca_cert.read_bytes())
    assert context.cert_store_stats()["x509_ca"] == 1  # no system store beside it
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_https_without_a_context_is_refused_before_connecting() -> None:
    with pytest.raises(BootFailed, match="https without a TLS context"):
        asyncio.run(sim_http.request(_loopback(), "https://127.0.0.1:1/x"))


# -- the agent ------------------------------------------------------------------------------

MAC = "52:54:00:0f:7e:01"


def _machine(monkeypatch: pytest.MonkeyPatch, ca: bytes | None) -> SimMachine:
    spec = EmulatorSpec(MAC, profile("ipxe-bios"))
    m = SimMachine(spec, None, None, "lo", scale=0.1)  # type: ignore[arg-type]
    m.lease = Lease("127.0.0.1", 8, "127.0.0.1")
    m.cp_ca = ca
    monkeypatch.setattr(m, "_socket", lambda kind, port=0: _loopback())
    return m


def _agent_run(m: SimMachine, certs: dict[str, TlsFiles],
               case: str = "good") -> tuple[BaseException | None, FakeCp]:
    async def body() -> tuple[BaseException | None, FakeCp]:
        async with FakeCp(certs[case]) as server:
            script = BootScript(kernel="http://x/k", cmdline=(
                f"flexlab.cp=https://127.0.0.1:{server.port} flexlab.token=t1"))
            m._t0 = 1.0
            try:
                await m._agent(script)
            except BootFailed as exc:
                return exc, server
            return None, server

    return asyncio.run(body())


def _events(m: SimMachine, summary: str) -> list[dict[str, Any]]:
    return [e.detail for e in m.timeline.events if e.summary == summary]


def test_agent_registers_over_https_with_the_boots_ca(monkeypatch: pytest.MonkeyPatch,
                                                      certs: dict[str, TlsFiles]) -> None:
    ca = certs["good"].ca_cert.read_bytes()
    m = _machine(monkeypatch, ca)
    error, server = _agent_run(m, certs)
    assert error is None, error
    # with no NTP in the lease the agent first measures its clock against the Control
    # Plane's time (1 to 3 two-way exchanges), over the same verified TLS
    *clock, register, ready = server.requests
    assert [register, ready] == ["/api/v1/nodes/register", f"/api/v1/nodes/{MAC}/ready"]
    assert 1 <= len(clock) <= 3 and set(clock) == {"/api/v1/time"}, server.requests
    assert m.timeline.states()[-1] == "ready"
    tls = _events(m, "tls")
    assert tls and tls[0]["ca"] == "/flexlab/cp-ca.pem" and len(tls[0]["sha256"]) == 64


@pytest.mark.parametrize(("case", "ca", "reason"), [
    ("wrong-ca", True, "unknown-ca"), ("good", False, "no-ca"),
])
def test_agent_refuses_and_never_sends_its_token(monkeypatch: pytest.MonkeyPatch,
                                                 certs: dict[str, TlsFiles], case: str,
                                                 ca: bool, reason: str) -> None:
    m = _machine(monkeypatch, certs["good"].ca_cert.read_bytes() if ca else None)
    error, server = _agent_run(m, certs, case)
    assert isinstance(error, TlsRefused) and error.reason == reason, error
    assert server.received == 0 and server.requests == []
    refused = _events(m, "tls-refused")
    assert m.timeline.states()[-1] == "tls-refused"
    assert refused[0]["reason"] == reason and refused[0]["host"] == "127.0.0.1"
    if not ca:
        assert _events(m, "tls") == [{"ca": None, "reason": "no-ca-initrd"}]


def test_http_control_plane_needs_no_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _machine(monkeypatch, None)
    assert m._cp_trust("http://10.0.0.2:8080") == (None, None)
    assert _events(m, "tls") == []



class _Port:
    """Enough of a segment port for run(): nothing is sent before the stubbed boot fails."""

    def register(self, mac: str, handler: object) -> None:
        pass

    def unregister(self, mac: str) -> None:
        pass


def test_a_refusal_ends_the_machine_failed_with_its_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    m = SimMachine(EmulatorSpec(MAC, profile("ipxe-bios")), _Port(), None,  # type: ignore[arg-type]
                   "lo", scale=0.1)

    async def refused() -> None:
        raise TlsRefused("expired", 10, "10.0.0.2", "certificate has expired")

    monkeypatch.setattr(m, "_boot", refused)
    asyncio.run(m.run())
    assert m.state == "failed"
    failed = _events(m, "failed")[0]
    assert failed == {"code": "TLS", "reason": "expired", "verify_code": 10, "host": "10.0.0.2",
                      "detail": "certificate has expired"}
    assert "reason=expired" in str(m.result()["error"])


def test_the_script_round_keeps_the_ca_and_notes_a_damaged_archive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What _script does with the initrds: placeholder passed over, the CA kept, a damaged
    archive after it recorded as an INITRD error without losing the CA."""
    bodies = {
        "http://bp/boot.ipxe": b"#!ipxe\nkernel http://bp/k flexlab.cp=https://cp\n"
                               b"initrd --name initrd http://bp/i\n"
                               b"initrd --name cpca http://bp/trust/cp-ca.cpio\n"
                               b"initrd http://bp/broken\nboot\n",
        "http://bp/k": b"K" * 64, "http://bp/i": b"I" * 64,
        "http://bp/trust/cp-ca.cpio": ca_initrd(PEM), "http://bp/broken": ca_initrd(PEM)[:60],
    }

    async def fetch(url: str, kind: str, user_agent: str = "") -> sim_http.HttpResponse:
        return sim_http.HttpResponse(200, size=len(bodies[url]), body=bodies[url])

    m = _machine(monkeypatch, None)
    monkeypatch.setattr(m, "_http_file", fetch)
    script = asyncio.run(m._script("http://bp/boot.ipxe"))
    assert len(script.initrds) == 3 and m.cp_ca == PEM
    errors = [e for e in m.timeline.events if e.kind == "error"]
    assert [(e.summary, e.detail["url"]) for e in errors] == [("INITRD", "http://bp/broken")]
