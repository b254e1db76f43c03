"""site-check's DNS, time, outbound and layer-2 verdicts on small lab sites (real packets).

Each test builds one LAN with three hosts: ``checker`` (where the site engineer plugs in),
``dhcp`` (the site DHCP server, offering DNS and NTP servers in options 6 and 42) and
``inet`` (the site's DNS server, an NTP server, web listeners on 80/443/8888 and, in the
good site, a Control Plane). The real CLI (``python -m harness.sitecheck``) runs in the
checker's namespace, so the DNS and NTP servers it checks are the ones the DHCP offer
named, found by the DHCP probe, exactly as on a real site.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.components.base import Component
from harness.components.controlplane import ControlPlane
from harness.components.dns_server import BindDns, DnsmasqDns
from harness.components.dnsmasq import SiteDhcp
from harness.components.fake_ntp import FakeNtp
from harness.components.web_listeners import (
    WebListeners,
    block_tcp_port,
    dropped_packets,
    unblock,
)
from harness.lab import Host, HostLink, Lab, Segment, Topology

pytestmark = [pytest.mark.sim, pytest.mark.timeout(120)]

PUBLIC = ("registry-1.docker.io", "archive.ubuntu.com", "pypi.org")


def _topology(ipv6_ra: bool) -> Topology:
    return Topology(
        segments=(Segment("lan", ipv6_ra=ipv6_ra),),
        hosts=(Host("checker", (HostLink("lan"),)), Host("dhcp", (HostLink("lan"),)),
               Host("inet", (HostLink("lan"),))))


@contextlib.contextmanager
def running(*components: Component) -> Iterator[None]:
    """Start components in order (each waited on); stop all, in reverse, on every path."""
    started: list[Component] = []
    try:
        for comp in components:
            comp.start()
            started.append(comp)
            comp.wait_ready()
        yield
    finally:
        for comp in reversed(started):
            if isinstance(comp, ControlPlane):
                comp.close()
            else:
                comp.stop()


def _site_dhcp(lab: Lab) -> SiteDhcp:
    inet = lab.address("inet", "lan")
    return SiteDhcp(lab, "dhcp", "lan", force_options=(f"6,{inet}", f"42,{inet}"))


def run_sitecheck(lab: Lab, args: list[str], env: dict[str, str] | None = None
                  ) -> tuple[int, dict[str, Any], str]:
    """The real CLI on the checker host; (exit status, JSON report, stderr).

    ``ip netns exec`` (not nsenter) so the checker sees its own /sys, as a real host does.
    Each run writes its reports to a new directory under the lab's reports.
    """
    out = lab.reports_dir / f"sitecheck-{len(list(lab.reports_dir.glob('sitecheck-*'))) + 1}"
    json_path = out / "result.json"
    argv = ["ip", "netns", "exec", lab.ns("checker"), sys.executable, "-m", "harness.sitecheck",
            "--iface", lab.link("checker", "lan").host_iface, "--out", str(out), "--json",
            str(json_path), "--listen", "2", *args]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=100, check=False,
                         env={**os.environ, **(env or {})})
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    print(res.stdout)  # the one-screen verdict, shown by pytest when a test fails
    assert report.get("iface_mac") == lab.link("checker", "lan").mac, res.stderr
    return res.returncode, report, res.stderr


def _results(report: dict[str, Any], stderr: str) -> Callable[[str], dict[str, Any]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in report.get("results", []):
        by_name.setdefault(r["name"], []).append(r)

    def get(name: str) -> dict[str, Any]:
        found = by_name.get(name, [])
        assert len(found) == 1, f"want one {name!r} result; the run said:\n{stderr}\n" + \
            "\n".join(f"{r['verdict']:5} {r['name']}: {r['summary']}"
                      for r in report.get("results", []))
        return found[0]

    return get


def _seed_control_plane(cp: ControlPlane, lab: Lab) -> None:
    api = cp.api
    api.create_cluster("alpha", 2, mode="standalone", environment="test")
    api.upload_artifact("vmlinuz", b"kernel-bytes")
    api.upload_artifact("initrd.img", b"initrd-bytes")
    api.create_profile("default", "vmlinuz", "initrd.img", "console=ttyS0")
    api.create_machine("52:54:00:00:00:01", "alpha", "node1", "default")
    api.create_machine("52:54:00:00:00:02", "alpha", "node2", "default")


def test_good_site_passes_dns_rfc2136_time_ports_and_ra(make_lab) -> None:
    lab = make_lab(_topology(ipv6_ra=True))
    inet = lab.address("inet", "lan")
    named = BindDns(lab, "inet", "lan", {name: inet for name in PUBLIC},
                    update_zone="site.test", allow_update=True)
    cp = ControlPlane(lab, "inet")
    with running(named, FakeNtp(lab, "inet", 0.0), WebListeners(lab, "inet"), cp,
                 _site_dhcp(lab)):
        _seed_control_plane(cp, lab)
        rc, report, stderr = run_sitecheck(
            lab, ["--control-plane", cp.url("lan"), "--dns-update-zone", "site.test",
                  "--hostname", "NODE1", "--hostname", "node3"],
            env={"FLEXLAB_CP_ADMIN_TOKEN": cp.admin_token})
        named_log = named.logs()
    get = _results(report, stderr)

    public = get("dns.public")
    assert public["verdict"] == "pass", public
    assert "option 6" in public["evidence"][0] and inet in public["evidence"][0]
    # the Control Plane's host is an address here, so only the default names are asked
    assert sorted(public["data"]["names"]) == sorted(PUBLIC)
    update = get("dns.rfc2136")
    assert update["verdict"] == "pass", update
    record = update["data"]["record"].rstrip(".")
    assert f"adding an RR at '{record}' TXT" in named_log
    assert f"delete all rrsets from name '{record}'" in named_log, "the test record must be removed"
    hostnames = get("dns.hostnames")
    assert hostnames["verdict"] == "fail", hostnames          # NODE1 = the CP's node1
    assert hostnames["data"]["duplicates"] == ["node1"]
    assert any("2 hostnames from the Control Plane" in e for e in hostnames["evidence"])

    ntp = get("time.ntp")
    assert ntp["verdict"] == "pass", ntp
    assert "option 42" in ntp["evidence"][0]
    assert abs(ntp["data"]["offsets"][inet]) < 0.5
    assert get("time.controlplane")["verdict"] == "pass"

    for port in (80, 443, 8888):
        assert get(f"outbound.tcp{port}")["verdict"] == "pass", get(f"outbound.tcp{port}")
    assert get("outbound.healthz")["verdict"] == "pass"

    assert get("l2.link")["verdict"] == "pass"
    assert "10000 Mb/s, full duplex" in get("l2.link")["summary"]  # what a veth reports
    assert get("l2.mtu")["verdict"] == "pass"
    ra = get("l2.ipv6_ra")
    assert ra["verdict"] == "pass", ra
    assert ra["data"]["solicited"] is True
    assert str(lab.subnets6["lan"].network_address) in " ".join(ra["data"]["prefixes"])
    assert rc == 1, "the duplicate hostname fails the run"


def test_bad_site_refuses_updates_clock_off_443_blocked_no_ra(make_lab) -> None:
    lab = make_lab(_topology(ipv6_ra=False))
    inet = lab.address("inet", "lan")
    table = block_tcp_port(lab, "inet", "lan", 443)
    try:
        with running(DnsmasqDns(lab, "inet", "lan", {name: inet for name in PUBLIC}),
                     FakeNtp(lab, "inet", 3.0), WebListeners(lab, "inet"), _site_dhcp(lab)):
            rc, report, stderr = run_sitecheck(
                lab, ["--port-target", inet, "--dns-update-zone", "site.test"])
        dropped = dropped_packets(lab, table)
    finally:
        unblock(lab, table)
    get = _results(report, stderr)

    assert get("dns.public")["verdict"] == "pass", get("dns.public")
    update = get("dns.rfc2136")
    assert update["verdict"] == "warn", update
    assert update["data"]["rcode"] in ("REFUSED", "NOTIMP")
    assert f"({update['data']['rcode']})" in update["summary"]

    ntp = get("time.ntp")
    assert ntp["verdict"] == "fail", ntp
    # 3 s, read to within half the round trip of the answer used (a loaded host's wait
    # for the CPU shifts one answer's offset by up to that much: time_check.measure_ntp)
    offset, delay = ntp["data"]["offsets"][inet], ntp["data"]["delays"][inet]
    assert abs(offset - 3.0) <= delay / 2 + 0.002, ntp
    assert ntp["summary"].startswith(f"local clock {offset:.2f} s behind {inet}"), ntp

    blocked = get("outbound.tcp443")
    assert blocked["verdict"] == "fail"
    assert blocked["summary"] == f"port 443 to {inet}: timed out (filtered?)"
    assert dropped >= 1, "the SYN was dropped by the lab's nftables rule, not lost elsewhere"
    assert get("outbound.tcp80")["verdict"] == "pass"
    assert get("outbound.tcp8888")["verdict"] == "pass"

    ra = get("l2.ipv6_ra")
    assert ra["verdict"] == "warn", ra
    assert "iPXE waits" in ra["summary"]
    assert rc == 1


def test_rfc2136_with_tsig_needs_the_key(make_lab) -> None:
    """A careful site accepts only signed updates: unsigned is REFUSED (WARN), signed with
    $FLEXLAB_DNS_TSIG passes, and the record is deleted with the same key."""
    lab = make_lab(_topology(ipv6_ra=True))
    inet = lab.address("inet", "lan")
    key = ("flexlab-key", base64.b64encode(b"0123456789abcdef0123456789abcdef").decode())
    named = BindDns(lab, "inet", "lan", {name: inet for name in PUBLIC}, tsig_key=key)
    args = ["--dns-update-zone", "site.test", "--ntp", inet, "--port-target", inet,
            "--ports", "80"]
    with running(named, FakeNtp(lab, "inet"), WebListeners(lab, "inet", [80]),
                 _site_dhcp(lab)):
        _, unsigned, err1 = run_sitecheck(lab, args)
        _, signed, err2 = run_sitecheck(lab, args, env={"FLEXLAB_DNS_TSIG": ":".join(key)})
        named_log = named.logs()
    refused = _results(unsigned, err1)("dns.rfc2136")
    assert refused["verdict"] == "warn" and refused["data"]["rcode"] == "REFUSED", refused
    accepted = _results(signed, err2)("dns.rfc2136")
    assert accepted["verdict"] == "pass", accepted
    assert "(TSIG key flexlab-key)" in accepted["evidence"][0]
    record = accepted["data"]["record"]
    assert f"delete all rrsets from name '{record}'" in named_log


def test_passive_run_sends_no_dns_ntp_or_tcp(make_lab) -> None:
    from scapy.all import IP, TCP, UDP, rdpcap

    lab = make_lab(_topology(ipv6_ra=True))
    inet = lab.address("inet", "lan")
    checker = lab.address("checker", "lan")
    with running(DnsmasqDns(lab, "inet", "lan", {"pypi.org": inet}), FakeNtp(lab, "inet", 0.0),
                 WebListeners(lab, "inet"), _site_dhcp(lab)):
        _, report, stderr = run_sitecheck(
            lab, ["--passive", "--port-target", inet, "--ntp", inet, "--dns-server", inet])
    get = _results(report, stderr)
    for name in ("dns.public", "dns.rfc2136", "time.ntp", "outbound.ports"):
        assert get(name)["verdict"] == "skip", get(name)
    assert get("l2.ipv6_ra")["data"]["solicited"] is False
    pcap = lab.pcaps["lan"]
    lab.teardown()  # flushes the capture; the fixture's second teardown is a no-op
    sent = [p for p in rdpcap(str(pcap)) if IP in p and p[IP].src == checker]
    assert not [p for p in sent if (TCP in p) or (UDP in p and p[UDP].dport in (53, 123))], \
        [p.summary() for p in sent]
