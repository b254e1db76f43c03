"""The DNS check against a small in-process DNS server on loopback (real UDP, dnspython).

The fake answers A/AAAA/TXT from a dict and handles UPDATE as told: apply it (what BIND
with allow-update does), or answer REFUSED/NOTIMP, or stay silent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from harness.components.fake_ntp import UdpResponder
from harness.sitecheck import dns_check
from harness.sitecheck.dns_check import check_dns, is_hostname, resolv_conf_servers
from harness.sitecheck.model import CheckVerdict, SiteCheckOptions, SiteContext, SiteFacts

pytestmark = pytest.mark.unit


class FakeDns(UdpResponder):
    """A UDP DNS server on 127.0.0.1 with a random port, serving from the start."""

    def __init__(self, records: dict[str, str], update: str = "accept",
                 silent: bool = False) -> None:
        super().__init__("127.0.0.1", 0)
        self.records = {k.rstrip(".").lower(): v for k, v in records.items()}
        self.txt: dict[str, str] = {}
        self.update_mode = update
        self.silent = silent
        self.updates: list[str] = []
        self.server = f"127.0.0.1:{self.address[1]}"
        self.serve_in_thread()

    def answer(self, request: bytes) -> bytes | None:
        if self.silent:
            return None
        msg = dns.message.from_wire(request)
        reply = dns.message.make_response(msg)
        if msg.opcode() == dns.opcode.UPDATE:
            self._update(msg, reply)
        else:
            self._query(msg, reply)
        return reply.to_wire()

    def _update(self, msg: dns.message.Message, reply: dns.message.Message) -> None:
        ops = []
        for rrset in msg.update:  # type: ignore[attr-defined]
            name = rrset.name.to_text().rstrip(".").lower()
            if rrset.deleting is not None:  # class ANY or NONE: a delete (RFC 2136 §2.5)
                ops.append(f"delete {name}")
                if self.update_mode == "accept":
                    self.txt.pop(name, None)
            else:
                ops.append(f"add {name}")
                if self.update_mode == "accept":
                    self.txt[name] = rrset[0].to_text()
        self.updates += ops
        if self.update_mode != "accept":
            reply.set_rcode(dns.rcode.from_text(self.update_mode))

    def _query(self, msg: dns.message.Message, reply: dns.message.Message) -> None:
        q = msg.question[0]
        name = q.name.to_text().rstrip(".").lower()
        if q.rdtype == dns.rdatatype.TXT and name in self.txt:
            reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "TXT", self.txt[name]))
        elif name in self.records:
            value = self.records[name]
            kind = "AAAA" if ":" in value else "A"
            if q.rdtype == dns.rdatatype.from_text(kind):
                reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", kind, value))
        elif name not in self.txt:
            reply.set_rcode(dns.rcode.NXDOMAIN)


@pytest.fixture
def fake_dns() -> Iterator[type[FakeDns]]:
    made: list[FakeDns] = []

    def make(*args: object, **kw: object) -> FakeDns:
        srv = FakeDns(*args, **kw)  # type: ignore[arg-type]
        made.append(srv)
        return srv

    try:
        yield make  # type: ignore[misc]
    finally:
        for srv in made:
            srv.close()


PUBLIC = {"registry-1.docker.io": "10.0.0.10", "archive.ubuntu.com": "10.0.0.11",
          "pypi.org": "fd00::12"}


def _ctx(**kw: object) -> SiteContext:
    facts = kw.pop("facts", SiteFacts())
    opts = SiteCheckOptions(iface="lo", **kw)  # type: ignore[arg-type]
    return SiteContext(options=opts, iface_mac="00:00:00:00:00:00", iface_ipv4=None,
                       facts=facts)  # type: ignore[arg-type]


def _by_name(results: list) -> dict:  # type: ignore[type-arg]
    return {r.name: r for r in results}


def test_public_names_resolve_via_dhcp_offered_server(fake_dns) -> None:
    srv = fake_dns(PUBLIC)
    res = _by_name(check_dns(_ctx(facts=SiteFacts(dns_servers=[srv.server]))))
    assert res["dns.public"].verdict is CheckVerdict.PASS, res["dns.public"].evidence
    assert "option 6" in res["dns.public"].evidence[0]
    assert any("pypi.org: AAAA fd00::12" in line for line in res["dns.public"].evidence)
    assert res["dns.rfc2136"].verdict is CheckVerdict.SKIP
    assert res["dns.rfc2136"].summary == "no zone given (--dns-update-zone)"
    assert res["dns.hostnames"].verdict is CheckVerdict.SKIP


def test_missing_name_fails_and_names_the_rcode(fake_dns) -> None:
    srv = fake_dns({"pypi.org": "10.0.0.12"})
    res = _by_name(check_dns(_ctx(dns_servers=[srv.server],
                                  public_names=["pypi.org", "archive.ubuntu.com"])))
    public = res["dns.public"]
    assert public.verdict is CheckVerdict.FAIL
    assert public.summary == "1 of 2 names do not resolve: archive.ubuntu.com (NXDOMAIN)"
    assert "pypi.org" not in public.summary
    assert any("archive.ubuntu.com: NXDOMAIN" in line for line in public.evidence)


def test_dhcp_offer_is_not_replaced_by_resolv_conf(fake_dns, monkeypatch) -> None:
    srv = fake_dns(PUBLIC)
    monkeypatch.setattr(dns_check, "resolv_conf_servers", lambda: pytest.fail("read"))
    check_dns(_ctx(facts=SiteFacts(dns_servers=[srv.server]), public_names=["pypi.org"]))
    assert srv.received >= 1


def test_resolv_conf_fallback_is_said(fake_dns, monkeypatch) -> None:
    srv = fake_dns(PUBLIC)
    monkeypatch.setattr(dns_check, "resolv_conf_servers", lambda: [srv.server])
    res = _by_name(check_dns(_ctx(public_names=["pypi.org"])))
    assert res["dns.public"].verdict is CheckVerdict.PASS
    assert "/etc/resolv.conf" in res["dns.public"].evidence[0]
    assert "named no DNS server" in res["dns.public"].evidence[0]


def test_one_bad_server_of_two_warns(fake_dns) -> None:
    good, bad = fake_dns(PUBLIC), fake_dns({})
    res = _by_name(check_dns(_ctx(dns_servers=[good.server, bad.server],
                                  public_names=["pypi.org"])))
    public = res["dns.public"]
    assert public.verdict is CheckVerdict.WARN and bad.server in public.summary


def test_silent_server_times_out_boundedly(fake_dns) -> None:
    srv = fake_dns(PUBLIC, silent=True)
    res = _by_name(check_dns(_ctx(dns_servers=[srv.server],
                                  public_names=["a.example", "b.example", "c.example"])))
    public = res["dns.public"]
    assert public.verdict is CheckVerdict.FAIL
    assert any("timeout after 2 s" in line for line in public.evidence)
    assert any("not asked" in line for line in public.evidence)
    assert srv.received == 2, "a server that timed out twice is not asked again"


def test_rfc2136_accepted_passes_and_cleans_up(fake_dns) -> None:
    srv = fake_dns(PUBLIC)
    res = _by_name(check_dns(_ctx(dns_servers=[srv.server], public_names=["pypi.org"],
                                  dns_update_zone="site.test")))
    upd = res["dns.rfc2136"]
    assert upd.verdict is CheckVerdict.PASS, upd.evidence
    record = upd.data["record"].rstrip(".")
    assert record.startswith("flexlab-sitecheck-") and record.endswith(".site.test")
    assert srv.updates == [f"add {record}", f"delete {record}"]
    assert srv.txt == {}, "the test record was deleted again"


@pytest.mark.parametrize("rcode", ["REFUSED", "NOTIMP"])
def test_rfc2136_refused_is_a_warn_with_the_rcode(fake_dns, rcode: str) -> None:
    srv = fake_dns(PUBLIC, update=rcode)
    res = _by_name(check_dns(_ctx(dns_servers=[srv.server], public_names=["pypi.org"],
                                  dns_update_zone="site.test")))
    upd = res["dns.rfc2136"]
    assert upd.verdict is CheckVerdict.WARN and f"({rcode})" in upd.summary
    assert "delegate a subdomain" in upd.hint
    assert len(srv.updates) == 1, "nothing to delete after a refused add"


def test_rfc2136_goes_to_the_named_update_server(fake_dns) -> None:
    resolver, primary = fake_dns(PUBLIC, update="REFUSED"), fake_dns(PUBLIC)
    res = _by_name(check_dns(_ctx(dns_servers=[resolver.server], public_names=["pypi.org"],
                                  dns_update_zone="site.test",
                                  dns_update_server=primary.server)))
    assert res["dns.rfc2136"].verdict is CheckVerdict.PASS
    assert resolver.updates == [] and len(primary.updates) == 2


def test_hostnames_duplicates_fail_case_insensitively() -> None:
    res = _by_name(check_dns(_ctx(passive=True, hostnames=["node1", "Node1", "node2"])))
    hosts = res["dns.hostnames"]
    assert hosts.verdict is CheckVerdict.FAIL and "node1" in hosts.summary
    assert res["dns.public"].verdict is CheckVerdict.SKIP


def test_hostnames_invalid_warn() -> None:
    res = _by_name(check_dns(_ctx(passive=True, hostnames=["node_1", "-x", "ok-1"])))
    hosts = res["dns.hostnames"]
    assert hosts.verdict is CheckVerdict.WARN
    assert hosts.data["invalid"] == ["-x", "node_1"]


def test_hostname_validity_rules() -> None:
    assert is_hostname("node-1") and is_hostname("node-1.site.example.")
    assert not is_hostname("a" * 64) and not is_hostname("x-") and not is_hostname("")
    assert not is_hostname("under_score")


def test_resolv_conf_parsing(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# c\nsearch x\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n")
    assert resolv_conf_servers(conf) == ["10.0.0.2", "fe80::1"]
    assert resolv_conf_servers(tmp_path / "missing") == []


@pytest.fixture
def cp_machines(json_http: Callable[..., str]) -> Callable[..., str]:
    """A Control Plane's machine list (``hostnames``) for the bearer token admin-secret."""
    def start(*hostnames: str) -> str:
        def answer(path: str, headers: Mapping[str, str]) -> tuple[int, object]:
            if headers.get("Authorization") != "Bearer admin-secret":
                return 401, {"error": "unauthorized", "detail": "bad token"}
            if path != "/api/v1/machines":
                return 404, {"error": "not_found"}
            return 200, [{"mac": f"52:54:00:00:00:{i:02x}", "hostname": h}
                         for i, h in enumerate(hostnames)]

        return json_http(answer)

    return start


def test_control_plane_hostnames_join_the_uniqueness_check(cp_machines, fake_dns,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("FLEXLAB_CP_ADMIN_TOKEN", "admin-secret")
    url = cp_machines("node1", "node2")
    hosts = _by_name(check_dns(_ctx(control_plane=url, hostnames=["NODE2"],
                                    dns_servers=[fake_dns(PUBLIC).server],
                                    public_names=["pypi.org"])))
    hosts = hosts["dns.hostnames"]
    assert hosts.verdict is CheckVerdict.FAIL and hosts.data["duplicates"] == ["node2"]
    assert "NODE2 (--hostname)" in " ".join(hosts.evidence)
    assert "node2 (Control Plane)" in " ".join(hosts.evidence)


def test_control_plane_wrong_token_warns(cp_machines, fake_dns, monkeypatch) -> None:
    # the deprecated name (docs/ENV.md) is still read when the new one is unset
    monkeypatch.delenv("FLEXLAB_CP_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("FLEXLAB_CP_TOKEN", "wrong")
    url = cp_machines("node1")
    res = _by_name(check_dns(_ctx(control_plane=url, dns_servers=[fake_dns(PUBLIC).server],
                                  public_names=["pypi.org"])))
    assert res["dns.hostnames"].verdict is CheckVerdict.WARN
    assert "401" in " ".join(res["dns.hostnames"].evidence)


def test_control_plane_without_token_is_said(cp_machines, fake_dns, monkeypatch) -> None:
    monkeypatch.delenv("FLEXLAB_CP_TOKEN", raising=False)
    monkeypatch.delenv("FLEXLAB_CP_ADMIN_TOKEN", raising=False)
    res = _by_name(check_dns(_ctx(control_plane=cp_machines("n1"), hostnames=["a", "b"],
                                  dns_servers=[fake_dns(PUBLIC).server],
                                  public_names=["pypi.org"])))
    assert res["dns.hostnames"].verdict is CheckVerdict.PASS
    assert "no admin token" in " ".join(res["dns.hostnames"].evidence)


def test_malformed_tsig_setting_leaves_only_the_update_not_run(fake_dns, monkeypatch) -> None:
    """The update was asked for (a zone named) and could not be sent: INCOMPLETE, not a
    skip the user chose, so the site cannot read PASS (the other DNS checks still run)."""
    monkeypatch.setenv("FLEXLAB_DNS_TSIG", "just-a-name")
    srv = fake_dns(PUBLIC)
    res = _by_name(check_dns(_ctx(dns_servers=[srv.server], public_names=["pypi.org"],
                                  dns_update_zone="site.test")))
    assert res["dns.public"].verdict is CheckVerdict.PASS
    assert res["dns.rfc2136"].verdict is CheckVerdict.INCOMPLETE
    assert "FLEXLAB_DNS_TSIG must be keyname:base64secret" in res["dns.rfc2136"].summary
    assert srv.updates == []


def test_an_update_with_no_server_to_send_it_to_is_not_run(monkeypatch) -> None:
    monkeypatch.setattr(dns_check, "resolv_conf_servers", lambda: [])
    res = _by_name(check_dns(_ctx(dns_update_zone="site.test")))
    assert res["dns.rfc2136"].verdict is CheckVerdict.INCOMPLETE
    assert "no DNS server to send the update to" in res["dns.rfc2136"].summary
    assert "--dns-update-server" in res["dns.rfc2136"].hint
