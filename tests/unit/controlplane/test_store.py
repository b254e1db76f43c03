"""The SQLite store without HTTP: two writers on one file lose nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from controlplane.models import ClusterIn, MachineIn, ProfileIn, ProxyIn
from controlplane.store import Store, render_cmdline

pytestmark = pytest.mark.unit


def test_two_store_instances_on_one_file_serialise_writes(tmp_path: Path) -> None:
    path = tmp_path / "cp.sqlite3"
    stores = [Store(path), Store(path)]
    errors: list[BaseException] = []

    def writer(store: Store, prefix: str) -> None:
        try:
            for i in range(50):
                store.create_cluster(ClusterIn(name=f"{prefix}{i}", mode="hybrid",
                                               expected_nodes=1, environment="test"))
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, p))
               for s, p in zip(stores, ("a", "b"), strict=True)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        names = {c["name"] for c in stores[0].list_clusters()}
        assert len(names) == 100
        assert [e["seq"] for e in stores[1].events()] == list(range(1, 101))
    finally:
        for s in stores:
            s.close()


def test_cmdline_template_fills_known_keys_only() -> None:
    out = render_cmdline("a={hostname} b={join_token} c={unknown} d={{x}}",
                         {"hostname": "n1", "join_token": "t"})
    assert out == "a=n1 b=t c={unknown} d={{x}}"


def _site(store: Store, macs: list[str]) -> None:
    """A cluster, a profile, a proxy serving the cluster, and ``macs`` in it."""
    store.create_cluster(ClusterIn(name="c1", mode="hybrid", expected_nodes=len(macs),
                                   environment="test"))
    store.create_cluster(ClusterIn(name="c2", mode="hybrid", expected_nodes=1,
                                   environment="test"))
    store.create_profile(ProfileIn(name="p1", kernel="k", initrd="i", cmdline=""))
    store.create_proxy(ProxyIn(name="bp1", clusters=["c1"]))
    for i, mac in enumerate(macs):
        store.create_machine(MachineIn(mac=mac, cluster="c1", role="worker",
                                       hostname=f"n{i}", profile="p1"))


def test_assignments_follow_every_change_that_alters_them(tmp_path: Path) -> None:
    """The assignments are cached between changes: each change must still show at once."""
    store = Store(tmp_path / "cp.sqlite3")
    try:
        _site(store, ["52:54:00:00:00:01"])
        first = store.assignments("bp1")
        assert [a["mac"] for a in first[1]] == ["52:54:00:00:00:01"]
        store.create_machine(MachineIn(mac="52:54:00:00:00:02", cluster="c1", role="worker",
                                       hostname="n2", profile="p1"))
        second = store.assignments("bp1")
        assert [a["mac"] for a in second[1]] == ["52:54:00:00:00:01", "52:54:00:00:00:02"]
        assert second[2] != first[2], "new content, same digest: the proxy would not see it"
        store.create_proxy(ProxyIn(name="bp1", clusters=["c2"]))  # re-registered elsewhere
        assert store.assignments("bp1")[1] == []
        # a second store on the same file (another process) writes: this one must see it
        other = Store(tmp_path / "cp.sqlite3")
        try:
            other.create_proxy(ProxyIn(name="bp1", clusters=["c1", "c2"]))
        finally:
            other.close()
        assert len(store.assignments("bp1")[1]) == 2
        assert store.assignments("bp1")[2] == second[2], "equal content, equal digest"
    finally:
        store.close()


def test_a_state_change_does_not_reread_the_assignments(tmp_path: Path) -> None:
    """A storm's every boot, register and ready wakes the proxy's long-poll; each wake
    re-reading and re-hashing every assignment made the Control Plane's work grow with
    the square of the fleet (1,000 machines: ~3,000 wakes x 1,000 rows)."""
    store = Store(tmp_path / "cp.sqlite3")
    try:
        macs = [f"52:54:00:00:01:{i:02x}" for i in range(20)]
        _site(store, macs)
        before = store.assignments("bp1")
        queries: list[str] = []
        store._db.set_trace_callback(queries.append)  # every statement the store runs
        try:
            store.boot(macs[0], "bp1", "http://cp")
            revision, items, digest = store.assignments("bp1")
        finally:
            store._db.set_trace_callback(None)
        assert revision > before[0], "the revision still follows every change"
        assert (items, digest) == (before[1], before[2])
        assert not [q for q in queries if "FROM machines WHERE cluster" in q], queries
    finally:
        store.close()
