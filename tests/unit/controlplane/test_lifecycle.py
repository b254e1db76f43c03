"""The node life cycle against a real server: Pending → Booting → Registered → Ready."""

from __future__ import annotations

import httpx
import pytest
from cp_helpers import facts, join_token, new_mac, site

from controlplane.client import ApiError, ControlPlaneClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit


def test_full_life_cycle_to_cluster_ready(cp: ControlPlaneProcess,
                                          admin: ControlPlaneClient) -> None:
    s = site(admin, nodes=2)
    status = admin.get_cluster(s["cluster"]).status
    assert status.phase == "NotReady" and status.ready == 0 and status.expected == 2
    assert {m.state for m in status.missing} == {"Pending"}
    with admin.with_token(s["proxy_token"]) as proxy:
        for mac in s["macs"]:
            boot = proxy.boot(mac)
            assert boot.cmdline.count(boot.join_token) == 1
            assert f"flexlab.cp={cp.url}" in boot.cmdline
            assert f"flexlab.mac={mac}" in boot.cmdline
            assert boot.kernel_url == f"{cp.url}/api/v1/artifacts/vmlinuz"
            assert proxy.download_artifact(boot.kernel) == b"kernel-bytes"
            assert admin.get_machine(mac).state == "Booting"
            with admin.with_token(boot.join_token) as node:
                answer = node.register_node(mac, facts(mac, node.time()))
            assert answer.state == "Registered", answer
            assert admin.get_machine(mac).state == "Registered"
            with admin.with_token(answer.node_token) as node:
                assert node.node_ready(mac).state == "Ready"
    cluster = admin.get_cluster(s["cluster"])
    assert cluster.status.model_dump() == {"phase": "Ready", "ready": 2, "expected": 2,
                                           "missing": []}
    kinds = [e.kind for e in admin.events() if e.subject in (*s["macs"], s["cluster"])]
    assert kinds.count("node.ready") == 2 and kinds[-1] == "cluster.ready"


def test_requirements_reject_small_machine_with_reasons(admin: ControlPlaneClient) -> None:
    s = site(admin)
    mac = s["macs"][0]
    token = join_token(admin, s, mac)
    small = facts(mac, 0.0, cpu_cores=1, memory_bytes=2 * 10**9,
                  disks=[{"name": "sda", "size_bytes": 8 * 10**9}])
    with admin.with_token(token) as node:
        small["clock_unix"] = node.time() - 3.0
        answer = node.register_node(mac, small)
    assert answer.state == "Rejected"
    reasons = " | ".join(answer.reasons)
    for needle in ("cpu_cores 1 < 2", "memory_bytes 2000000000 < 3000000000",
                   "largest 8000000000", "clock skew -3."):
        assert needle in reasons
    machine = admin.get_machine(mac)
    assert machine.state == "Rejected" and machine.reasons == answer.reasons
    missing = admin.get_cluster(s["cluster"]).status.missing
    assert missing[0].state == "Rejected" and missing[0].reasons == answer.reasons


def test_join_token_works_once_and_only_for_its_mac(admin: ControlPlaneClient) -> None:
    s = site(admin, nodes=2)
    first, second = s["macs"]
    token = join_token(admin, s, first)
    with admin.with_token(token) as node:
        with pytest.raises(ApiError) as other:
            node.register_node(second, facts(second, node.time()))
        assert other.value.status == 403 and "another machine" in other.value.body["detail"]
        assert node.register_node(first, facts(first, node.time())).state == "Registered"
        with pytest.raises(ApiError) as reuse:
            node.register_node(first, facts(first, node.time()))
    assert reuse.value.status == 403 and "already used" in reuse.value.body["detail"]


def test_new_boot_supersedes_unused_join_token(admin: ControlPlaneClient) -> None:
    s = site(admin)
    mac = s["macs"][0]
    old, new = join_token(admin, s, mac), join_token(admin, s, mac)
    assert old != new
    with admin.with_token(old) as node, pytest.raises(ApiError) as info:
        node.register_node(mac, facts(mac, node.time()))
    assert info.value.status == 403 and "superseded" in info.value.body["detail"]
    with admin.with_token(new) as node:
        assert node.register_node(mac, facts(mac, node.time())).state == "Registered"


def test_proxy_cannot_fetch_other_clusters_boot_data(admin: ControlPlaneClient) -> None:
    ours, theirs = site(admin), site(admin)
    with admin.with_token(ours["proxy_token"]) as proxy:
        with pytest.raises(ApiError) as info:
            proxy.boot(theirs["macs"][0])
        assert info.value.status == 403
        assert "join_token" not in str(info.value.body)
        _, doc, _ = proxy.assignments(ours["proxy"])
        assert doc is not None
        assert [a["mac"] for a in doc["assignments"]] == ours["macs"]
        with pytest.raises(ApiError) as other_feed:
            proxy.assignments(theirs["proxy"])
        assert other_feed.value.status == 403
    for machine in admin.request("GET", "/api/v1/machines").json():  # the wire, not the model
        assert not any("token" in key for key in machine)


def test_ready_needs_registration_and_own_node_token(admin: ControlPlaneClient) -> None:
    s = site(admin, nodes=2)
    a, b = s["macs"]
    token = join_token(admin, s, a)
    with admin.with_token(token) as node:
        node_token = node.register_node(a, facts(a, node.time())).node_token
    with admin.with_token(node_token) as node:
        with pytest.raises(ApiError) as info:
            node.node_ready(b)
        assert info.value.status == 403
    with pytest.raises(ApiError) as pending:
        admin.node_ready(b)
    assert pending.value.status == 409 and "Pending" in pending.value.body["detail"]


def test_machine_input_rules(admin: ControlPlaneClient) -> None:
    s = site(admin)
    with pytest.raises(ApiError) as dup_host:
        admin.create_machine(new_mac(), s["cluster"], f"{s['cluster']}-n0", s["profile"])
    assert dup_host.value.status == 409 and "unique per site" in dup_host.value.body["detail"]
    with pytest.raises(ApiError) as bad_label:
        admin.create_machine(new_mac(), s["cluster"], "-bad_name", s["profile"])
    assert bad_label.value.status == 422
    assert bad_label.value.body["fields"][0]["loc"] == ["body", "hostname"]
    with pytest.raises(ApiError) as no_profile:
        admin.create_machine(new_mac(), s["cluster"], "fresh-host", "no-such-profile")
    assert no_profile.value.status == 422 and "profile" in no_profile.value.body["detail"]
    upper = new_mac().upper().replace(":", "-")
    made = admin.create_machine(upper, s["cluster"], "Mixed-Case", s["profile"])
    assert made.mac == upper.lower().replace("-", ":") and made.hostname == "mixed-case"
    undefined = admin.get_cluster(s["cluster"]).status.missing
    assert all(m.state == "Pending" for m in undefined)


def test_conflict_reports_are_recorded(admin: ControlPlaneClient) -> None:
    s = site(admin)
    with admin.with_token(s["proxy_token"]) as proxy:
        proxy.report_conflict(s["macs"][0], "10.9.0.5", "seg0", 1764100000.5)
    reports = [c for c in admin.conflicts() if c.proxy == s["proxy"]]
    assert len(reports) == 1 and reports[0].other_server == "10.9.0.5"


def test_artifact_etag_head_and_access(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    s = site(admin)
    meta = admin.upload_artifact("etag-test.img", b"0123456789")
    headers = {"Authorization": f"Bearer {s['proxy_token']}"}
    url = f"{cp.url}/api/v1/artifacts/etag-test.img"
    got = httpx.get(url, headers=headers)
    assert got.content == b"0123456789" and got.headers["etag"] == f'"{meta.sha256}"'
    assert httpx.get(url, headers={**headers, "If-None-Match": got.headers["etag"]}
                     ).status_code == 304
    head = httpx.head(url, headers=headers)
    assert head.status_code == 200 and head.headers["content-length"] == "10"
    assert head.content == b""
    join = join_token(admin, s, s["macs"][0])
    assert httpx.get(url, headers={"Authorization": f"Bearer {join}"}).status_code == 403
    assert httpx.get(f"{cp.url}/api/v1/artifacts/nope", headers=headers).status_code == 404


def test_heartbeat_is_recorded_and_scoped(admin: ControlPlaneClient) -> None:
    ours, theirs = site(admin), site(admin)
    with admin.with_token(ours["proxy_token"]) as proxy:
        proxy.heartbeat(ours["proxy"], "bp-1.2.3", ["seg0", "seg1"])
        with pytest.raises(ApiError) as info:
            proxy.heartbeat(theirs["proxy"], "bp-1.2.3", [])
        assert info.value.status == 403
    listed = {p["name"]: p for p in admin.state()["proxies"]}
    assert listed[ours["proxy"]]["version"] == "bp-1.2.3"
    assert listed[ours["proxy"]]["segments"] == ["seg0", "seg1"]
    assert listed[ours["proxy"]]["last_heartbeat"] is not None
    assert listed[theirs["proxy"]]["last_heartbeat"] is None


def test_an_admin_token_beginning_with_a_dash_starts_the_service(tmp_path) -> None:
    # secrets.token_urlsafe() begins with "-" one time in 64; as a separate argv word
    # argparse took it for an option and the service exited (seen in CI via certify)
    token = "-starts-with-a-dash"
    with ControlPlaneProcess(tmp_path / "cp.sqlite3", token) as proc, \
            ControlPlaneClient(proc.url, token) as client:
        assert client.clusters() == []
