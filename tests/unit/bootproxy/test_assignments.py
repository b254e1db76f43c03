"""MAC filter sync: ETag long-poll, atomic disk cache, fail closed, garbage never replaces state."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from bp_cp_standin import TOKEN, StandInCP

from bootproxy.assignments import (
    AssignmentStore,
    AssignmentSync,
    ControlPlaneClient,
    parse_assignments,
)
from bootproxy.errors import AssignmentError
from bootproxy.metrics import Registry

pytestmark = pytest.mark.unit

KNOWN = "52:54:00:00:00:01"
OTHER = "52:54:00:00:00:02"
UNKNOWN = "52:54:00:00:00:99"


def make(cp: StandInCP, cache: Path, wait: float = 0.0):
    registry = Registry()
    store = AssignmentStore(registry, cache)
    client = ControlPlaneClient(cp.url, cp.proxy, TOKEN, timeout=5)
    sync = AssignmentSync(store, client, registry, wait=wait, heartbeat_interval=0.05)
    return registry, store, client, sync


def test_sync_caches_and_serves_only_assigned(tmp_path: Path) -> None:
    cache = tmp_path / "state" / "assignments.json"

    async def body() -> None:
        with StandInCP() as cp:
            cp.set_assignments([KNOWN.upper().replace(":", "-")])
            _registry, store, client, sync = make(cp, cache)
            try:
                assert not store.served(KNOWN)  # fail closed before any state
                assert await sync.sync_once()
                assert store.served(KNOWN) and not store.served(UNKNOWN)
                assert store.etag == cp.etag
                assert store.sync_age() is not None and store.sync_age() < 5
                # Unchanged: 304, state kept, If-None-Match sent.
                assert await sync.sync_once()
                assert cp.calls[-1][2].get("If-None-Match") == cp.etag
                assert store.served(KNOWN)
            finally:
                await client.close()

    asyncio.run(body())
    saved = json.loads(cache.read_text())
    assert saved["document"]["assignments"][0]["mac"] == "52-54-00-00-00-01".upper()
    assert not list(cache.parent.glob(".assignments-*"))  # temp file renamed away


def test_long_poll_returns_promptly_on_change(tmp_path: Path) -> None:
    async def body() -> None:
        with StandInCP() as cp:
            cp.set_assignments([KNOWN])
            _, store, client, sync = make(cp, tmp_path / "a.json", wait=20)
            try:
                await sync.sync_once()
                loop = asyncio.get_running_loop()
                seen = len(cp.calls)
                started = time.monotonic()
                poll = loop.create_task(sync.sync_once())
                # Let the poll reach the server (it records the call, then waits), then change.
                while len(cp.calls) == seen:
                    assert time.monotonic() - started < 5
                    await asyncio.sleep(0.01)
                assert not poll.done()
                cp.set_assignments([KNOWN, OTHER])
                assert await asyncio.wait_for(poll, 10)
                assert time.monotonic() - started < 5
                assert store.served(OTHER)
            finally:
                await client.close()

    asyncio.run(body())


def test_garbage_and_errors_never_replace_good_state(tmp_path: Path) -> None:
    async def body() -> None:
        with StandInCP() as cp:
            cp.set_assignments([KNOWN])
            registry, store, client, sync = make(cp, tmp_path / "a.json")
            try:
                assert await sync.sync_once()
                cp.set_assignments([OTHER])
                cp.mode = "garbage"
                assert not await sync.sync_once()
                assert store.served(KNOWN) and not store.served(OTHER)
                assert registry.value("bootproxy_cp_sync_errors_total", kind="garbage") == 1
                cp.mode = "error"
                assert not await sync.sync_once()
                assert registry.value("bootproxy_cp_sync_errors_total", kind="http_error") == 1
                assert store.served(KNOWN)
            finally:
                await client.close()

    asyncio.run(body())


def test_restart_during_outage_uses_cache_and_fails_closed(tmp_path: Path) -> None:
    cache = tmp_path / "a.json"

    async def first_run() -> str:
        with StandInCP() as cp:
            cp.set_assignments([KNOWN])
            _, _, client, sync = make(cp, cache)
            try:
                assert await sync.sync_once()
            finally:
                await client.close()
            return cp.url

    url = asyncio.run(first_run())  # the CP is gone after this

    async def second_run() -> None:
        registry = Registry()
        store = AssignmentStore(registry, cache)
        assert store.load_cache()
        client = ControlPlaneClient(url, "bp1", TOKEN, timeout=2)
        sync = AssignmentSync(store, client, registry, wait=0)
        try:
            assert not await sync.sync_once()  # CP unreachable
            assert registry.value("bootproxy_cp_sync_errors_total", kind="unreachable") == 1
            assert store.served(KNOWN) and not store.served(UNKNOWN)
            assert store.sync_age() is None  # no CP contact in this run
        finally:
            await client.close()

    asyncio.run(second_run())


def test_corrupt_cache_serves_nobody(tmp_path: Path) -> None:
    cache = tmp_path / "a.json"
    cache.write_text('{"document": {"revision": "1", "assignments": [{"mac": "zz"}]}}')
    registry = Registry()
    store = AssignmentStore(registry, cache)
    assert not store.load_cache()
    assert not store.served(KNOWN)
    assert registry.value("bootproxy_cp_sync_errors_total", kind="bad_cache") == 1


def test_heartbeat_and_auth(tmp_path: Path) -> None:
    async def body() -> None:
        with StandInCP() as cp:
            registry, _, client, sync = make(cp, tmp_path / "a.json")
            task = asyncio.get_running_loop().create_task(sync.heartbeats())
            try:
                deadline = time.monotonic() + 5
                while registry.value("bootproxy_heartbeats_total", result="ok") < 2:
                    assert time.monotonic() < deadline, cp.calls
                    await asyncio.sleep(0.02)
            finally:
                task.cancel()
                await client.close()
            beats = cp.posts("/api/v1/proxies/bp1/heartbeat")
            assert beats[0]["segments"] == [] and "version" in beats[0]

    asyncio.run(body())


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        {"assignments": []},
        {"revision": "1"},
        {"revision": "1", "assignments": [{"mac": KNOWN}]},
        {"revision": "1", "assignments": ["x"]},
        {"revision": True, "assignments": []},
        {
            "revision": "1",
            "assignments": [
                {"mac": KNOWN, "cluster": "c", "hostname": "h", "role": "w", "profile": "p"},
                {"mac": KNOWN.upper(), "cluster": "c", "hostname": "h", "role": "w",
                 "profile": "p"},
            ],
        },
    ],
)
def test_parse_rejects_garbage(doc: object) -> None:
    with pytest.raises(AssignmentError):
        parse_assignments(doc)
