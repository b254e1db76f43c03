"""A node reporting Ready is placed in DNS when the Control Plane is told to; every
attempt, failed ones included, is a `dns.update` event (never silently dropped)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from controlplane.app import create_app
from controlplane.dns_update import DnsOutcome, DnsUpdateConfig
from controlplane.errors import ControlPlaneError
from controlplane.routes.nodes import node_address
from controlplane.store import Store

pytestmark = pytest.mark.unit
ADMIN = "admin-token-dns"


class RecordingDns:
    """Stands in for the RFC 2136 sender (the real one is tested against BIND in sim)."""

    def __init__(self, ok: bool) -> None:
        self.ok = ok
        self.calls: list[tuple[str, str, str | None]] = []

    def add(self, hostname: str, address: str, previous: str | None = None) -> DnsOutcome:
        self.calls.append((hostname, address, previous))
        return DnsOutcome(self.ok, f"{hostname}.site.test.", address,
                          "A added" if self.ok else "refused by 10.0.0.2: REFUSED")


def _ready_node(tmp_path: Path, dns: Any, nic_ip: str | None) -> tuple[TestClient, str]:
    store = Store(tmp_path / "cp.sqlite3")
    client = TestClient(create_app(store, ADMIN, dns=dns))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    mac = "02:fe:00:00:00:01"
    r = client.post("/api/v1/clusters", json={"name": "c1", "expected_nodes": 1,
                                              "mode": "standalone", "environment": "test"},
                    headers=auth)
    assert r.status_code in (200, 201), r.text
    client.post("/api/v1/artifacts/vmlinuz", content=b"k", headers=auth)
    client.post("/api/v1/artifacts/initrd.img", content=b"i", headers=auth)
    client.post("/api/v1/profiles", json={"name": "p", "kernel": "vmlinuz",
                                          "initrd": "initrd.img", "cmdline": "x={join_token}"},
                headers=auth)
    r = client.post("/api/v1/machines", json={"mac": mac, "cluster": "c1", "role": "worker",
                                              "hostname": "worker1", "profile": "p"},
                    headers=auth)
    assert r.status_code in (200, 201), r.text
    token = client.post("/api/v1/proxies", json={"name": "px", "clusters": ["c1"],
                                                 "segments": ["lan"]}, headers=auth).json()
    boot = client.get(f"/api/v1/machines/{mac}/boot",
                      headers={"Authorization": f"Bearer {token['token']}"})
    assert boot.status_code == 200, boot.text
    nic: dict[str, Any] = {"name": "eth0", "mac": mac}
    if nic_ip:
        nic["ipv4"] = nic_ip
    facts = {"arch": "x86_64", "cpu_cores": 4, "memory_bytes": 8 * 10**9,
             "disks": [{"name": "vda", "size_bytes": 20 * 10**9}], "nics": [nic],
             "firmware": "efi", "vendor": "QEMU",
             "clock_unix": client.get("/api/v1/time").json()["unix"]}
    reg = client.post("/api/v1/nodes/register", json={"mac": mac, "facts": facts},
                      headers={"Authorization": f"Bearer {boot.json()['join_token']}"}).json()
    assert reg["state"] == "Registered", reg
    ready = client.post(f"/api/v1/nodes/{mac}/ready",
                        headers={"Authorization": f"Bearer {reg['node_token']}"})
    assert ready.status_code == 200 and ready.json()["state"] == "Ready", ready.text
    return client, mac


def _dns_events(client: TestClient) -> list[dict[str, Any]]:
    events = client.get("/api/v1/events", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    return [e for e in events if e["kind"] == "dns.update"]


def test_ready_places_the_reported_address(tmp_path: Path) -> None:
    dns = RecordingDns(ok=True)
    client, mac = _ready_node(tmp_path, dns, "10.0.0.50")
    assert dns.calls == [("worker1", "10.0.0.50", None)]
    [event] = _dns_events(client)
    assert event["subject"] == mac and event["data"]["ok"] is True


def test_a_refused_update_is_an_event_and_the_node_stays_ready(tmp_path: Path) -> None:
    client, _ = _ready_node(tmp_path, RecordingDns(ok=False), "10.0.0.50")
    [event] = _dns_events(client)
    assert event["data"]["ok"] is False and "REFUSED" in event["data"]["detail"]


def test_no_address_in_the_facts_is_said_not_guessed(tmp_path: Path) -> None:
    dns = RecordingDns(ok=True)
    client, _ = _ready_node(tmp_path, dns, None)
    assert dns.calls == []
    [event] = _dns_events(client)
    assert event["data"]["ok"] is False and "no IPv4 address" in event["data"]["detail"]


def test_without_dns_nothing_is_sent_or_recorded(tmp_path: Path) -> None:
    client, _ = _ready_node(tmp_path, None, "10.0.0.50")
    assert _dns_events(client) == []


def test_node_address_prefers_the_booting_nic() -> None:
    m = {"mac": "aa:aa:aa:aa:aa:02", "facts": {"nics": [
        {"name": "eth0", "mac": "aa:aa:aa:aa:aa:01", "ipv4": "10.0.0.1"},
        {"name": "eth1", "mac": "aa:aa:aa:aa:aa:02", "ipv4": "10.0.1.1"}]}}
    assert node_address(m) == "10.0.1.1"
    assert node_address({"mac": "x", "facts": None}) is None


@pytest.mark.parametrize("text", ["", "name-only", ":secret", "name:"])
def test_a_malformed_key_is_a_clear_error(text: str) -> None:
    with pytest.raises(ControlPlaneError, match="NAME:BASE64SECRET"):
        DnsUpdateConfig.parse_key(text)
