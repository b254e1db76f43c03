"""The assembled proxy on loopback: config precedence, ready facts, 4011 ACK, TFTP behind the
MAC filter, /metrics and /healthz."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from bootproxy.app import BootProxy, responder_config
from bootproxy.config import load_config
from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.errors import ConfigError, ListenerError
from bootproxy.metrics import Registry
from bootproxy.tftp import TransferError, fetch

pytestmark = pytest.mark.unit

MAC = "52:54:00:aa:bb:cc"


def test_config_precedence_cli_env_file(tmp_path: Path) -> None:
    conf = tmp_path / "bp.yaml"
    conf.write_text("name: from-file\nhttp_port: 81\nreply_delay_ms: 5\ninterfaces: [eth9]\n")
    env = {"FLEXLAB_BP_CONFIG": str(conf), "FLEXLAB_BP_HTTP_PORT": "82",
           "FLEXLAB_BP_CONFLICT_WATCH": "false", "FLEXLAB_BP_INTERFACES": "eth1,eth2"}
    cfg = load_config(["--http-port", "83", "--pxe-equivalents", "HW-Client"], env)
    assert cfg.name == "from-file" and cfg.reply_delay_ms == 5
    assert cfg.http_port == 83
    assert cfg.conflict_watch is False
    assert cfg.interfaces == ["eth1", "eth2"]
    assert cfg.pxe_equivalents == ["HW-Client"]


@pytest.mark.parametrize(
    ("text", "env"),
    [
        ("bogus_key: 1\n", {}),
        ("", {"FLEXLAB_BP_HTTP_PORT": "eighty"}),
        ("", {"FLEXLAB_BP_LONGPOLL_WAIT": "120"}),
        ("arch_files: ['11:ipxe-arm64.efi']\n", {}),
    ],
)
def test_config_errors_name_the_setting(tmp_path: Path, text: str, env: dict[str, str]) -> None:
    conf = tmp_path / "bp.yaml"
    conf.write_text(text)
    with pytest.raises(ConfigError):
        load_config(["--config", str(conf)], env)


def test_arch_files_extend_the_responder_table() -> None:
    cfg = load_config(["--arch-files", "11=ipxe-arm64.efi", "--http-arch-files", "19=a.efi"], {})
    rcfg = responder_config(cfg)
    assert rcfg.tftp_files[11] == "ipxe-arm64.efi" and rcfg.tftp_files[0] == "undionly.kpxe"
    assert rcfg.http_files == {16: "ipxe.efi", 19: "a.efi"}


def test_metrics_render_has_every_family() -> None:
    registry = Registry()
    registry.inc("bootproxy_dhcp_drops_total", reason='we"ird', interface="lo")
    registry.gauge("bootproxy_last_sync_timestamp_seconds", lambda: 1.5)
    text = registry.render()
    for family in ("offers", "acks", "drops"):
        assert f"# TYPE bootproxy_dhcp_{family}_total counter" in text
    assert 'bootproxy_dhcp_drops_total{interface="lo",reason="we\\"ird"} 1.0' in text
    assert "bootproxy_last_sync_timestamp_seconds 1.5" in text


def _pxe_request(xid: int, *, ipxe: bool) -> DhcpPacket:
    """A UEFI x64 PXE REQUEST to port 4011 from 127.0.0.1; ``ipxe`` adds user class iPXE."""
    options = [
        (Opt.MESSAGE_TYPE, bytes((MessageType.REQUEST,))),
        (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003016"),
        (Opt.CLIENT_ARCH, b"\x00\x07"),
    ]
    if ipxe:
        options.append((Opt.USER_CLASS, b"iPXE"))
    return DhcpPacket(xid=xid, ciaddr="127.0.0.1", chaddr=bytes.fromhex(MAC.replace(":", "")),
                      options=options)


def test_whole_proxy_on_loopback(tmp_path: Path) -> None:
    assignments = tmp_path / "assignments.yaml"
    assignments.write_text(
        f"revision: '1'\nassignments:\n- {{mac: '{MAC}', cluster: c1, hostname: n1, "
        "role: worker, profile: p}\n"
    )
    root = tmp_path / "root"
    root.mkdir()
    (root / "ipxe.efi").write_bytes(b"E" * 1500)
    cfg = load_config(
        [
            "--interfaces", "lo", "--dhcp-port", "0", "--pxe-port", "0", "--tftp-port", "0",
            "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--conflict-watch", "no",
            "--assignments-file", str(assignments), "--boot-root", str(root),
            "--cache-path", str(tmp_path / "cache.json"), "--http-port", "0",
        ],
        {},
    )

    async def body() -> None:
        proxy = BootProxy(cfg)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            ready = await proxy.start()
            json.dumps(ready)
            assert ready["event"] == "ready" and ready["assignments"] == 1
            lo = ready["interfaces"][0]
            assert lo["addr"] == "127.0.0.1"
            tftp_port = ready["tftp_port"]
            # Before any DHCP from this IP the MAC filter cannot map 127.0.0.1: refused.
            with pytest.raises(TransferError):
                await fetch("127.0.0.1", tftp_port, "ipxe.efi", timeout=0.3, retries=1)
            req = _pxe_request(7, ipxe=True)
            client.bind(("127.0.0.1", 0))
            client.setblocking(False)
            loop = asyncio.get_running_loop()
            client.sendto(encode(req), ("127.0.0.1", lo["pxe_port"]))
            ack = parse(await asyncio.wait_for(loop.sock_recv(client, 2048), 5))
            http_port = ready["http_port"]
            assert ack.file == f"http://127.0.0.1:{http_port}/boot/{MAC}.ipxe".encode()
            req = _pxe_request(8, ipxe=False)
            client.sendto(encode(req), ("127.0.0.1", lo["pxe_port"]))
            ack = parse(await asyncio.wait_for(loop.sock_recv(client, 2048), 5))
            assert ack.message_type == MessageType.ACK and ack.file == b"ipxe.efi"
            got = await fetch("127.0.0.1", tftp_port, ack.file.decode(), timeout=1)
            assert got.data == b"E" * 1500
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ready['metrics_port']}") as h:
                efi = await h.get(f"http://127.0.0.1:{http_port}/ipxe.efi")
                foreign = await h.get(f"http://127.0.0.1:{http_port}/boot/52:54:00:00:00:09.ipxe")
                metrics = (await h.get("/metrics")).text
                health = await h.get("/healthz")
            assert 'bootproxy_dhcp_acks_total{interface="lo"} 2.0' in metrics
            assert "bootproxy_tftp_bytes_total 1500.0" in metrics
            assert "bootproxy_assignments 1.0" in metrics
            assert efi.status_code == 200 and efi.content == b"E" * 1500
            assert foreign.status_code == 404  # SILENT-5
            http_bytes = [ln for ln in metrics.splitlines() if ln.startswith("bootproxy_http_b")]
            assert len(http_bytes) == 1 and float(http_bytes[0].split()[1]) >= 1500
            assert health.status_code == 200 and health.json()["assignments"] == 1
        finally:
            client.close()
            await proxy.stop()

    asyncio.run(body())


@pytest.mark.parametrize(
    ("kind", "hint"),
    [("tftp", "is another TFTP server running?"), ("http", "pick another --http-port")],
)
def test_a_busy_file_server_port_is_a_listener_error_with_its_hint(
    tmp_path: Path, kind: str, hint: str
) -> None:
    """TFTP and HTTP boot start through one path: a taken port names the server and a hint."""
    root = tmp_path / "root"
    root.mkdir()
    sock_type = socket.SOCK_DGRAM if kind == "tftp" else socket.SOCK_STREAM
    busy = socket.socket(socket.AF_INET, sock_type)
    busy.bind(("0.0.0.0", 0))
    if kind == "http":
        busy.listen()
    port = busy.getsockname()[1]
    ports = {"tftp": "0", "http": "0", kind: str(port)}
    cfg = load_config(
        [
            "--interfaces", "lo", "--dhcp-port", "0", "--pxe-port", "0",
            "--tftp-port", ports["tftp"], "--http-port", ports["http"],
            "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--conflict-watch", "no",
            "--boot-root", str(root), "--cache-path", str(tmp_path / "cache.json"),
        ],
        {},
    )

    async def body() -> None:
        proxy = BootProxy(cfg)
        try:
            with pytest.raises(ListenerError) as err:
                await proxy.start()
        finally:
            await proxy.stop()
        name = "TFTP" if kind == "tftp" else "HTTP boot"
        assert str(err.value).startswith(f"cannot listen for {name} on port {port}: ")
        assert str(err.value).endswith(hint)

    try:
        asyncio.run(body())
    finally:
        busy.close()
