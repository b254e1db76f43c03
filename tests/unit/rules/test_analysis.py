"""Grouping of a capture into per-client exchanges, and robustness on random traffic."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.capture import decode_pcap
from harness.capture.synth import BROADCAST, Host, PcapBuilder, dhcp_payload
from harness.capture.synth_flows import BIOS, UEFI, Flow, bios_flow, uefi_flow
from harness.rules import RuleContext, check_capture
from harness.rules.analysis import Analysis

pytestmark = pytest.mark.unit


def test_clients_group_dhcp_4011_and_tftp(tmp_path: Path) -> None:
    f = Flow()
    bios_flow(f)
    uefi_flow(f)
    cap = decode_pcap(f.b.write(str(tmp_path / "two.pcap")))
    an = Analysis(cap, RuleContext())
    assert an.proxies == {"10.0.0.2"} and an.address_servers == {"10.0.0.1"}
    clients = an.clients()
    assert list(clients) == [BIOS.mac, UEFI.mac]
    uefi = clients[UEFI.mac]
    assert [ex.request.msg_type for ex in uefi.exchanges] == ["DISCOVER", "REQUEST", "REQUEST"]
    assert uefi.exchanges[-1].to_4011 and len(uefi.exchanges[-1].replies) == 1
    assert [t.request.filename for t in uefi.transfers] == ["ipxe.efi"]
    assert UEFI.ip in uefi.addresses
    assert [t.request.filename for t in clients[BIOS.mac].transfers] == ["undionly.kpxe"]


def test_per_client_indexes_hold_exactly_what_a_scan_finds(tmp_path: Path) -> None:
    """TIME-1 and SITE-3 read each client's DISCOVERs and replies from indexes built once
    (a scan per client was O(clients x packets): minutes for a 5,000-machine storm). The
    indexes must hold what the scan held, in capture order, and nothing for a stranger."""
    f = Flow()
    bios_flow(f)
    uefi_flow(f)
    bios_flow(f)  # the BIOS client boots again: its second DISCOVER comes after UEFI's
    an = Analysis(decode_pcap(f.b.write(str(tmp_path / "three.pcap"))), RuleContext())
    for mac in (BIOS.mac, UEFI.mac):
        assert an.discovers_of(mac) == [q for q in an.discovers() if q.chaddr == mac]
        assert an.replies_of(mac) == [r for r in an.replies if r.chaddr == mac]
    assert len(an.discovers_of(BIOS.mac)) == 2 and an.replies_of(UEFI.mac)
    assert an.discovers_of("52:54:00:ff:ff:ff") == [] == an.replies_of("52:54:00:ff:ff:ff")
    an.discovers_of(BIOS.mac).clear()  # a caller's copy: the index is not changed
    assert len(an.discovers_of(BIOS.mac)) == 2


OPTION = st.tuples(st.integers(1, 254), st.binary(max_size=40))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    packets=st.lists(
        st.tuples(
            st.sampled_from([1, 2]),
            st.sampled_from([(68, 67), (67, 68), (68, 4011), (4011, 68), (67, 67), (69, 2070)]),
            st.lists(OPTION, max_size=8),
            st.sampled_from(["0.0.0.0", "10.0.0.9"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_rules_never_crash_on_random_dhcp(tmp_path: Path, packets: list) -> None:
    b = PcapBuilder()
    a, s = Host("52:54:00:00:00:01", "0.0.0.0"), Host("02:00:00:00:00:02", "10.0.0.2")
    for op, (sport, dport), opts, yiaddr, end in packets:
        pay = dhcp_payload(op, 7, a.mac, opts, yiaddr=yiaddr, end=end, giaddr=yiaddr)
        src, dst = (a, BROADCAST) if op == 1 else (s, BROADCAST)
        b.udp(src, dst, sport, dport, pay)
    path = b.write(str(tmp_path / "fuzz.pcap"))
    try:
        cap = decode_pcap(path)
    except Exception as e:  # only "no DHCP" is acceptable, and only for TFTP-only input
        assert "no DHCP" in str(e)
        return
    ctx = RuleContext(serves={"10.0.0.2": frozenset({"52:54:00:00:00:99"})})
    report = check_capture(cap, ctx)
    assert report.findings
