"""harness/lab/netlink.py: a netlink handle opened from a thread that entered a namespace
acts in that namespace only, leaves every other thread where it was, and a namespace that
is not there is a clear error."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from harness.lab.netlink import NETNS_DIR, create_netns, ns_route
from harness.lab.nsthread import NamespaceWorker

pytestmark = pytest.mark.sim


def _links(ns: str) -> set[str]:
    out = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"fltest-{secrets.token_hex(4)}"
    create_netns(name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_a_link_added_through_the_handle_is_in_the_namespace_not_the_host(
        namespace: str) -> None:
    dummy = f"flbr{secrets.token_hex(3)}"
    here = os.readlink("/proc/thread-self/ns/net")
    with ns_route(namespace) as ns:
        assert {link.get("IFLA_IFNAME") for link in ns.get_links()} == {"lo"}
        ns.link("add", ifname=dummy, kind="bridge")
    assert dummy in _links(namespace)
    host = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          check=True).stdout
    assert dummy not in host
    assert os.readlink("/proc/thread-self/ns/net") == here  # this thread never moved


def test_a_namespace_given_by_path_is_entered_too(namespace: str) -> None:
    holder = subprocess.Popen(["ip", "netns", "exec", namespace, "sleep", "30"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 10
        while os.readlink(path) == os.readlink("/proc/self/ns/net"):  # until it entered
            assert time.monotonic() < deadline, "ip netns exec never entered the namespace"
            time.sleep(0.01)
        with ns_route(path) as ns:
            assert {link.get("IFLA_IFNAME") for link in ns.get_links()} == {"lo"}
    finally:
        holder.kill()
        holder.wait()


def test_a_missing_namespace_is_a_clear_error_and_leaks_nothing() -> None:
    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    with pytest.raises(OSError, match="fltest-absent"), ns_route("fltest-absent"):
        pass
    assert len(os.listdir("/proc/self/fd")) == fds
    assert threading.active_count() == threads


def test_making_a_namespace_that_exists_says_so(namespace: str) -> None:
    with pytest.raises(OSError, match=f"ip netns add {namespace} failed.*exists"):
        create_netns(namespace)


def test_a_namespace_worker_runs_its_calls_in_the_namespace(namespace: str) -> None:
    inside = os.stat(f"{NETNS_DIR}/{namespace}").st_ino
    with NamespaceWorker(namespace) as worker:
        first = worker.call(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        again = worker.call(lambda: os.stat("/proc/thread-self/ns/net").st_ino)
    assert first == again == inside
    assert os.stat("/proc/thread-self/ns/net").st_ino != inside  # the caller stayed out


def test_a_namespace_worker_for_a_missing_namespace_fails_and_creates_none() -> None:
    name = f"fltest-missing-{secrets.token_hex(4)}"
    threads = set(threading.enumerate())
    with pytest.raises(OSError, match=name):
        NamespaceWorker(name)
    assert not os.path.exists(f"{NETNS_DIR}/{name}")  # pyroute2's setns made one here
    assert set(threading.enumerate()) <= threads
