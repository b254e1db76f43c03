"""The assignments feed: ETag, 304, and a long-poll that wakes within a second."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from cp_helpers import new_mac, site

from controlplane.client import ControlPlaneClient

pytestmark = pytest.mark.unit


def test_etag_and_304(admin: ControlPlaneClient) -> None:
    s = site(admin)
    with admin.with_token(s["proxy_token"]) as proxy:
        status, doc, etag = proxy.assignments(s["proxy"])
        assert status == 200 and doc is not None and etag
        assert doc["assignments"][0]["mac"] == s["macs"][0]
        status, doc, again = proxy.assignments(s["proxy"], etag=etag)
        assert status == 304 and doc is None and again == etag
        started = time.monotonic()
        status, _, _ = proxy.assignments(s["proxy"], etag=etag, wait=0.5)
        assert status == 304 and time.monotonic() - started >= 0.45


def test_long_poll_sees_a_change_within_one_second(admin: ControlPlaneClient) -> None:
    s = site(admin)
    mac = new_mac()
    result: dict[str, Any] = {}
    with admin.with_token(s["proxy_token"]) as proxy:
        _, _, etag = proxy.assignments(s["proxy"])

        def poll() -> None:
            result["answer"] = proxy.assignments(s["proxy"], etag=etag, wait=20)
            result["at"] = time.monotonic()

        waiter = threading.Thread(target=poll)
        waiter.start()
        try:
            # Give the poll a head start so the change lands while it is parked on
            # the server (otherwise it would measure nothing); it must still be pending.
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline and waiter.is_alive():
                time.sleep(0.02)
            assert waiter.is_alive(), "long-poll returned before any change"
            changed_at = time.monotonic()
            admin.create_machine(mac, s["cluster"], f"{s['cluster']}-late", s["profile"])
        finally:
            waiter.join(25)
    status, doc, new_etag = result["answer"]
    assert status == 200 and new_etag != etag
    assert mac in [a["mac"] for a in doc["assignments"]]
    latency = float(result["at"]) - changed_at
    assert latency < 1.0, f"change seen after {latency:.3f} s"


def test_other_clusters_changes_do_not_wake_a_proxy(admin: ControlPlaneClient) -> None:
    ours, theirs = site(admin), site(admin)
    with admin.with_token(ours["proxy_token"]) as proxy:
        _, _, etag = proxy.assignments(ours["proxy"])
        done: dict[str, Any] = {}
        waiter = threading.Thread(
            target=lambda: done.update(a=proxy.assignments(ours["proxy"], etag=etag, wait=1.0)))
        waiter.start()
        try:
            admin.create_machine(new_mac(), theirs["cluster"], f"{theirs['cluster']}-x",
                                 theirs["profile"])
        finally:
            waiter.join(10)
    assert done["a"][0] == 304


def test_keep_alive_answers_are_not_held_back_by_nagle(admin: ControlPlaneClient) -> None:
    # A listener without TCP_NODELAY makes every reused-connection answer wait
    # ~40 ms for the peer's delayed ACK; a proxy polling many MACs would feel it.
    admin.healthz()
    samples = []
    for _ in range(21):
        started = time.monotonic()
        admin.healthz()
        samples.append(time.monotonic() - started)
    median = sorted(samples)[len(samples) // 2]
    assert median < 0.025, f"median keep-alive round trip {median * 1000:.1f} ms"
