"""The SQLite store without HTTP: two writers on one file lose nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from controlplane.models import ClusterIn
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
