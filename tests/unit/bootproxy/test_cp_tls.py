"""The Boot Proxy verifies the Control Plane's certificate (`--cp-ca`).

Real certificates made in the test (a lab CA, a second CA, a certificate for
another name, an expired one) served by a real TLS server on loopback. A
certificate that does not verify is an outage with a reason: the proxy keeps
serving the MACs it cached, refuses unknown ones, logs `cp_tls_failed` with
the reason and shows it in /healthz and /metrics.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bp_cp_standin import TOKEN, StandInCP
from cryptography.hazmat.primitives.asymmetric import ec

from bootproxy.app import BootProxy
from bootproxy.assignments import AssignmentStore, AssignmentSync, ControlPlaneClient
from bootproxy.cainitrd import ca_initrd
from bootproxy.config import load_config
from bootproxy.cptls import client_context
from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.errors import ConfigError
from bootproxy.httpboot import BootData, HttpBootConfig, HttpBootServer
from bootproxy.metrics import Registry
from controlplane.tls import (
    WRONG_NAME,
    Authority,
    issue_server_cert,
    new_authority,
    parse_ips,
    write_cert,
    write_key,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

KNOWN = "52:54:00:00:00:01"
NEW = "52:54:00:00:00:02"
NAMES, IPS = ["localhost"], ["127.0.0.1"]


@dataclass(frozen=True)
class Pki:
    """The lab CA file clients are given, and one server cert/key pair per case."""

    ca: Path
    servers: dict[str, tuple[Path, Path]]


def _server_files(folder: Path, case: str, ca: Authority, names: list[str],
                  ips: list[str], **window: datetime.datetime) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_server_cert(ca, key, names, parse_ips(ips), **window)
    cert_path, key_path = folder / f"{case}.pem", folder / f"{case}-key.pem"
    write_cert(cert_path, cert)
    write_key(key_path, key)
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    lab, impostor = new_authority("test lab CA"), new_authority("test impostor CA")
    write_cert(folder / "ca.pem", lab.cert)
    now = datetime.datetime.now(datetime.UTC)
    servers = {
        "good": _server_files(folder, "good", lab, NAMES, IPS),
        "wrong-ca": _server_files(folder, "wrong-ca", impostor, NAMES, IPS),
        "wrong-name": _server_files(folder, "wrong-name", lab, [WRONG_NAME], []),
        "expired": _server_files(folder, "expired", lab, NAMES, IPS,
                                 not_before=now - datetime.timedelta(days=3),
                                 not_after=now - datetime.timedelta(days=1)),
    }
    return Pki(folder / "ca.pem", servers)


class TlsStandIn(StandInCP):
    """The stand-in Control Plane behind TLS with the given certificate."""

    def __init__(self, cert: tuple[Path, Path]) -> None:
        super().__init__()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        # The handshake runs in the handler thread, not in accept(): a client that
        # stops mid-handshake must not block serve_forever (and so shutdown()).
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True,
                                                 do_handshake_on_connect=False)
        self.server.handle_error = lambda request, address: None  # refused handshakes

    def https(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.server.server_address[1]}"


@pytest.fixture()
def serve(pki: Pki) -> Iterator[object]:
    started: list[TlsStandIn] = []

    def start(case: str, macs: list[str]) -> TlsStandIn:
        cp = TlsStandIn(pki.servers[case]).__enter__()
        started.append(cp)
        cp.set_assignments(macs)
        return cp

    yield start
    for cp in started:
        cp.__exit__(None, None, None)


def _sync(url: str, cache: Path, ca: Path | None) -> tuple[Registry, AssignmentStore,
                                                           AssignmentSync]:
    registry = Registry()
    store = AssignmentStore(registry, cache)
    store.load_cache()
    client = ControlPlaneClient(url, "bp1", TOKEN, timeout=5, verify=client_context(ca))
    return registry, store, AssignmentSync(store, client, registry, wait=0)


async def _once(sync: AssignmentSync) -> bool:
    try:
        return await sync.sync_once()
    finally:
        await sync.client.close()


def test_the_right_ca_verifies_and_the_system_store_does_not(serve, pki: Pki,
                                                             tmp_path: Path) -> None:
    cp = serve("good", [KNOWN])
    _, store, sync = _sync(cp.https(), tmp_path / "a.json", pki.ca)
    assert asyncio.run(_once(sync)) and store.served(KNOWN)
    assert sync.tls.details() == {"cp_tls_error": None}
    # Without --cp-ca the system store is used, and it has never heard of a lab CA.
    registry, _, sync = _sync(cp.https(), tmp_path / "b.json", None)
    assert not asyncio.run(_once(sync))
    assert registry.value("bootproxy_cp_tls_failures_total", reason="unknown-ca") == 1


@pytest.mark.parametrize(("case", "host", "reason", "code"), [
    ("wrong-ca", "127.0.0.1", "unknown-ca", 20),
    ("wrong-name", "127.0.0.1", "hostname-mismatch", 64),
    ("wrong-name", "localhost", "hostname-mismatch", 62),
    ("expired", "127.0.0.1", "expired", 10),
])
def test_a_refused_certificate_keeps_the_cache_and_names_the_reason(
    serve, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    case: str, host: str, reason: str, code: int,
) -> None:
    cache = tmp_path / "assignments.json"
    good = serve("good", [KNOWN])
    _, _, sync = _sync(good.https(host), cache, pki.ca)
    assert asyncio.run(_once(sync))
    # A restart while the Control Plane serves a bad certificate that would add NEW.
    bad = serve(case, [KNOWN, NEW])
    registry, store, sync = _sync(bad.https(host), cache, pki.ca)
    with caplog.at_level(logging.INFO, logger="bootproxy"):
        assert not asyncio.run(_once(sync))
    assert store.served(KNOWN), "a known MAC must still be served from the cache"
    assert not store.served(NEW), "an unverified answer must never add a MAC"
    assert not bad.calls, "nothing (not even the token) may reach an unverified server"
    assert registry.value("bootproxy_cp_sync_errors_total", kind="tls") == 1
    assert registry.value("bootproxy_cp_tls_failures_total", reason=reason) == 1
    error = sync.tls.details()["cp_tls_error"]
    assert isinstance(error, dict) and error["reason"] == reason and error["verify_code"] == code
    events = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "cp_tls_failed"]
    assert len(events) == 1 and events[0].fields["reason"] == reason  # type: ignore[attr-defined]
    assert "bootproxy_cp_tls_ok 0" in registry.render()


def test_a_good_answer_clears_the_failure(serve, pki: Pki, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    bad, good = serve("expired", [KNOWN]), serve("good", [KNOWN])

    async def body() -> None:
        registry = Registry()
        store = AssignmentStore(registry, tmp_path / "a.json")
        context = client_context(pki.ca)
        sync = AssignmentSync(store, ControlPlaneClient(bad.https(), "bp1", TOKEN, verify=context),
                              registry, wait=0)
        assert not await _once(sync)
        assert sync.tls.last is not None and sync.tls.last.reason == "expired"
        sync.client = ControlPlaneClient(good.https(), "bp1", TOKEN, verify=context)
        assert await _once(sync)
        assert sync.tls.details() == {"cp_tls_error": None}
        assert "bootproxy_cp_tls_ok 1" in registry.render()

    with caplog.at_level(logging.INFO, logger="bootproxy"):
        asyncio.run(body())
    assert any(getattr(r, "fields", {}).get("event") == "cp_tls_recovered" for r in caplog.records)


def test_cp_ca_is_one_setting_in_flag_env_and_file(tmp_path: Path, pki: Pki) -> None:
    url = ["--cp-url", "https://cp.lab:8443"]
    assert load_config([*url, "--cp-ca", str(pki.ca)], {}).cp_ca == pki.ca
    assert load_config(url, {"FLEXLAB_BP_CP_CA": str(pki.ca)}).cp_ca == pki.ca
    conf = tmp_path / "bp.yaml"
    conf.write_text(f"cp_url: https://cp.lab:8443\ncp_ca: {pki.ca}\n")
    assert load_config(["--config", str(conf)], {}).cp_ca == pki.ca
    with pytest.raises(ConfigError, match="not https"):
        load_config(["--cp-url", "http://cp.lab:8000", "--cp-ca", str(pki.ca)], {})
    with pytest.raises(ConfigError, match="no such file"):
        client_context(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="PEM"):
        client_context(tmp_path / "junk.pem")


def _pxe_request(mac: str, xid: int) -> bytes:
    return encode(DhcpPacket(
        xid=xid, ciaddr="127.0.0.1", chaddr=bytes.fromhex(mac.replace(":", "")),
        options=[(Opt.MESSAGE_TYPE, bytes((MessageType.REQUEST,))),
                 (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003016"),
                 (Opt.CLIENT_ARCH, b"\x00\x07")],
    ))


def test_whole_proxy_serves_cached_macs_and_reports_the_reason(
    serve, pki: Pki, tmp_path: Path,
) -> None:
    cache = tmp_path / "cache.json"
    good = serve("good", [KNOWN])
    _, _, sync = _sync(good.https(), cache, pki.ca)
    assert asyncio.run(_once(sync))
    bad = serve("wrong-ca", [KNOWN, NEW])
    cfg = load_config([
        "--interfaces", "lo", "--dhcp-port", "0", "--pxe-port", "0",
        "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--conflict-watch", "no",
        "--cache-path", str(cache), "--cp-url", bad.https(), "--cp-ca", str(pki.ca),
        "--longpoll-wait", "0", "--heartbeat-interval", "30",
    ], {"FLEXLAB_BP_CP_TOKEN": TOKEN})

    async def body() -> None:
        proxy = BootProxy(cfg)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ready = await proxy.start()
            deadline = time.monotonic() + 10
            while proxy.registry.total("bootproxy_cp_tls_failures_total") < 1:
                assert time.monotonic() < deadline, "the proxy never tried the Control Plane"
                await asyncio.sleep(0.02)
            async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{ready['metrics_port']}") as h:
                health = (await h.get("/healthz")).json()
                metrics = (await h.get("/metrics")).text
            assert health["cp_tls_error"]["reason"] == "unknown-ca", health
            assert 'bootproxy_cp_tls_failures_total{reason="unknown-ca"}' in metrics
            assert "bootproxy_cp_tls_ok 0" in metrics
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            loop = asyncio.get_running_loop()
            pxe = ("127.0.0.1", ready["interfaces"][0]["pxe_port"])
            client.sendto(_pxe_request(NEW, 21), pxe)
            client.sendto(_pxe_request(KNOWN, 22), pxe)
            ack = parse(await asyncio.wait_for(loop.sock_recv(client, 2048), 5))
            # The first (and only) answer is the known MAC's: NEW got silence (SILENT-5).
            assert ack.xid == 22 and ack.message_type == MessageType.ACK
            assert proxy.registry.total("bootproxy_dhcp_drops_total") >= 1
            json.dumps(health)
        finally:
            client.close()
            await proxy.stop()

    asyncio.run(body())


class _OneMachine:
    """A BootSource serving KNOWN only (the HTTP boot server's view of the Control Plane)."""

    async def boot_data(self, mac: str) -> BootData | None:
        return BootData(mac=mac, hostname="n1", kernel="vmlinuz", initrd="initrd.img",
                        cmdline="console=ttyS0") if mac == KNOWN else None

    async def fetch_artifact(self, name: str, dest: Path, etag: str | None) -> str | None:
        raise AssertionError("no artifact is fetched in these tests")


@pytest.mark.parametrize("with_ca", [True, False])
def test_ipxe_script_hands_the_node_the_ca_initrd(tmp_path: Path, pki: Pki,
                                                  with_ca: bool) -> None:
    cpio = tmp_path / "cp-ca.cpio"
    cpio.write_bytes(ca_initrd(pki.ca.read_bytes()))
    root = tmp_path / "root"
    root.mkdir()
    config = HttpBootConfig(root=root, cache_dir=tmp_path / "cache", host="127.0.0.1", port=0,
                            ca_initrd=cpio if with_ca else None)

    async def body() -> None:
        async with HttpBootServer(config, _OneMachine()) as server:
            base = f"http://127.0.0.1:{server.address[1]}"
            async with httpx.AsyncClient(base_url=base) as h:
                script = (await h.get(f"/boot/{KNOWN}.ipxe")).text
                ca = await h.get("/trust/cp-ca.cpio")
        if with_ca:
            assert f"initrd --name cpca {base}/trust/cp-ca.cpio\n" in script
            assert " initrd=initrd initrd=cpca console=ttyS0\n" in script
            assert ca.status_code == 200 and ca.content == cpio.read_bytes()
        else:
            assert "cpca" not in script and ca.status_code == 404

    asyncio.run(body())


def test_whole_proxy_serves_its_cp_ca_as_the_nodes_ca_initrd(serve, pki: Pki,
                                                              tmp_path: Path) -> None:
    good = serve("good", [KNOWN])
    root = tmp_path / "root"
    root.mkdir()
    cfg = load_config([
        "--interfaces", "lo", "--dhcp-port", "0", "--pxe-port", "0", "--tftp-port", "0",
        "--http-port", "0", "--boot-root", str(root), "--file-filter", "off",
        "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--conflict-watch", "no",
        "--cache-path", str(tmp_path / "cache.json"), "--cp-url", good.https(),
        "--cp-ca", str(pki.ca), "--longpoll-wait", "0",
    ], {"FLEXLAB_BP_CP_TOKEN": TOKEN})

    async def body() -> None:
        proxy = BootProxy(cfg)
        try:
            ready = await proxy.start()
            async with httpx.AsyncClient() as h:
                got = await h.get(f"http://127.0.0.1:{ready['http_port']}/trust/cp-ca.cpio")
            assert got.status_code == 200 and got.content == ca_initrd(pki.ca.read_bytes())
        finally:
            await proxy.stop()

    asyncio.run(body())


def _bare_handshake_error(cp: TlsStandIn, ca: Path) -> ssl.SSLCertVerificationError:
    """The error a real handshake with ``cp`` raises, straight from the ssl module."""
    ctx = client_context(ca)
    assert isinstance(ctx, ssl.SSLContext)
    port = cp.server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        except ssl.SSLCertVerificationError as exc:
            return exc
    raise AssertionError("the wrong-CA server's certificate verified")


def test_a_bare_ssl_error_is_a_tls_outage_not_a_crash(serve, pki: Pki, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Debian's httpx/httpcore (the image's) let the handshake's ssl error through
    unwrapped; the sync must count and log it like the wrapped one, not die of it."""
    cache = tmp_path / "assignments.json"
    good = serve("good", [KNOWN])
    _, _, sync = _sync(good.https(), cache, pki.ca)
    assert asyncio.run(_once(sync))
    bad = serve("wrong-ca", [KNOWN, NEW])
    error = _bare_handshake_error(bad, pki.ca)
    registry, store, sync = _sync(bad.https(), cache, pki.ca)

    async def unwrapped(*_: object) -> object:
        raise error

    sync.client.fetch_assignments = unwrapped  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="bootproxy"):
        assert not asyncio.run(_once(sync))
    assert store.served(KNOWN) and not store.served(NEW)
    assert registry.value("bootproxy_cp_sync_errors_total", kind="tls") == 1
    assert registry.value("bootproxy_cp_tls_failures_total", reason="unknown-ca") == 1
