"""The proxy's Control Plane calls against the real mock (controlplane/, run as a loopback process).

Sync + ETag long-poll, an outage (the `down` fault) with the last good state kept,
restart from the cache while the CP is down, heartbeats and conflict reports.
Garbage bodies (which the real mock cannot produce: its `wrong_answer` fault keeps
the shape valid) are covered against the stand-in in test_assignments.py.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from bootproxy.assignments import AssignmentStore, AssignmentSync, ControlPlaneClient
from bootproxy.conflicts import ConflictWatch
from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode
from bootproxy.metrics import Registry
from controlplane.client import ControlPlaneClient as AdminClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]


def mac(n: int) -> str:
    base = secrets.randbelow(1 << 16)
    return f"02:fb:{base >> 8:02x}:{base & 255:02x}:00:{n:02x}"


def site(admin: AdminClient, macs: list[str]) -> dict[str, Any]:
    cluster = f"c-{secrets.token_hex(3)}"
    admin.create_cluster(cluster, max(1, len(macs)))
    admin.upload_artifact("vmlinuz", b"k")
    admin.upload_artifact("initrd.img", b"i")
    profile = f"p-{secrets.token_hex(3)}"
    admin.create_profile(profile, "vmlinuz", "initrd.img", "console=ttyS0 {join_token}")
    proxy = f"px-{secrets.token_hex(3)}"
    token = admin.register_proxy(proxy, [cluster], ["seg0"])
    for i, m in enumerate(macs):
        admin.create_machine(m, cluster, f"{cluster}-n{i}", profile)
    return {"cluster": cluster, "profile": profile, "proxy": proxy, "token": token}


def add_machine(admin: AdminClient, s: dict[str, Any], m: str) -> None:
    admin.create_machine(m, s["cluster"], f"{s['cluster']}-x{m[-2:]}", s["profile"])


def test_sync_long_poll_and_outage(cp: ControlPlaneProcess, admin: AdminClient,
                                   tmp_path: Path) -> None:
    first, second = mac(1), mac(2)
    s = site(admin, [first])
    cache = tmp_path / "assignments.json"

    async def body() -> None:
        registry = Registry()
        store = AssignmentStore(registry, cache)
        client = ControlPlaneClient(cp.url, s["proxy"], s["token"], timeout=5)
        sync = AssignmentSync(store, client, registry, wait=10)
        try:
            assert await sync.sync_once()
            assert store.served(first) and not store.served(second)
            assert store.etag
            # Long-poll: a change made while the poll waits comes back promptly.
            started = time.monotonic()
            poll = asyncio.get_running_loop().create_task(sync.sync_once())
            await asyncio.sleep(0)  # let the request go out
            await asyncio.to_thread(add_machine, admin, s, second)
            assert await asyncio.wait_for(poll, 15)
            assert store.served(second)
            assert time.monotonic() - started < 8
            # Outage: the last good state stays; unknown MACs stay refused.
            await asyncio.to_thread(admin.set_fault, "assignments", down=True)
            sync.wait = 0
            assert not await sync.sync_once()
            assert registry.value("bootproxy_cp_sync_errors_total", kind="http_error") == 1
            assert store.served(first) and store.served(second)
            assert not store.served(mac(3))
        finally:
            await client.close()

    asyncio.run(body())

    # Restart while the CP is still down: the cache brings the table back.
    async def restart() -> None:
        registry = Registry()
        store = AssignmentStore(registry, cache)
        assert store.load_cache()
        client = ControlPlaneClient(cp.url, s["proxy"], s["token"], timeout=5)
        sync = AssignmentSync(store, client, registry, wait=0)
        try:
            assert not await sync.sync_once()
            assert store.served(first) and store.served(second)
        finally:
            await client.close()

    asyncio.run(restart())


def test_heartbeat_and_conflict_report(cp: ControlPlaneProcess, admin: AdminClient) -> None:
    served = mac(4)
    s = site(admin, [served])

    async def body() -> None:
        registry = Registry()
        store = AssignmentStore(registry)
        client = ControlPlaneClient(cp.url, s["proxy"], s["token"], timeout=5)
        sync = AssignmentSync(store, client, registry, wait=0, heartbeat_interval=30,
                              segments=["seg0"])
        watch = ConflictWatch(iface="lo", own_addresses={"10.0.0.1"}, served=store.served,
                              registry=registry, report=client.report_conflict, port=0,
                              bind_device=False)
        beat = asyncio.get_running_loop().create_task(sync.heartbeats())
        await watch.start()
        try:
            assert await sync.sync_once()
            offer = DhcpPacket(
                op=2, xid=9, chaddr=bytes.fromhex(served.replace(":", "")),
                options=[(Opt.MESSAGE_TYPE, bytes((MessageType.OFFER,))),
                         (Opt.SERVER_ID, bytes([10, 0, 0, 7])), (Opt.VENDOR_CLASS, b"PXEClient")],
            )
            watch.datagram_received(encode(offer), ("10.0.0.7", 67))
            deadline = time.monotonic() + 10
            while True:
                reports = [c for c in await asyncio.to_thread(admin.conflicts)
                           if c.mac == served]
                if reports and registry.value("bootproxy_heartbeats_total", result="ok") >= 1:
                    break
                assert time.monotonic() < deadline, (reports, registry.render())
                await asyncio.sleep(0.05)
            assert reports[0].proxy == s["proxy"] and reports[0].other_server == "10.0.0.7"
            assert reports[0].segment == "lo"
        finally:
            beat.cancel()
            watch.close()
            await client.close()

    asyncio.run(body())
