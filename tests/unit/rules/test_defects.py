"""Each defective responder is flagged by exactly the rule it breaks, and by no other.

Every case starts from a conformant synthetic exchange and changes one thing
on the wire through a per-packet tweak. A conformant exchange of every client
type gives no failure at all, with and without context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from failing import shows_failing

from harness.capture.synth import BROADCAST, Host, dhcp_payload, ip4, pxe43
from harness.capture.synth_flows import (
    ALL_FLOWS,
    BIOS,
    HTTPBOOT,
    IPXE,
    UEFI,
    Client,
    Flow,
    Spec,
    UdpSpec,
    bios_flow,
    http_flow,
    ipxe_flow,
    relayed_flow,
    uefi_flow,
)
from harness.rules import Level, Report, RuleContext

pytestmark = pytest.mark.unit

PROXY_IP = "10.0.0.2"
Judge = Callable[..., Report]
ROGUE = Host("02:00:00:00:00:66", "10.0.0.66")
FOREIGN = Client(mac="52:54:00:00:00:99", ip="10.0.0.99", xid=0x99999999)


def _set(**kw: Any) -> Callable[[Spec], None]:
    return lambda s: s.kw.update(kw)


def _opt(code: int, value: bytes | None) -> Callable[[Spec], None]:
    return lambda s: s.set_option(code, value)


def _attr(**kw: Any) -> Callable[[Any], None]:
    def edit(s: Any) -> None:
        for k, v in kw.items():
            setattr(s, k, v)

    return edit


def _drop(_: Any) -> bool:
    return False


def _move_82_first(s: Spec) -> None:
    s.options.sort(key=lambda o: o[0] != 82)


def _tftp_from_69(s: UdpSpec) -> None:
    if s.sport == 40001:
        s.sport = 69
    if s.dport == 40001:
        s.dport = 69


def proxy_acks_address_request(f: Flow) -> None:
    """BIOS flow, plus the proxy ACKing the client's address REQUEST on port 67."""
    bios_flow(f)
    p = f.site.proxy
    opts = [(53, b"\x05"), (54, ip4(p.ip)), (60, b"PXEClient")]
    f.emit("bad_ack", Spec(p, BROADCAST, 67, 68, 2, BIOS.xid, BIOS.mac, opts, {"flags": 0x8000}))


def proxy_acks_renewal(f: Flow) -> None:
    """BIOS flow, then a renewing REQUEST (ciaddr set, no option 54: it names no server)
    that the proxy ACKs on port 67."""
    bios_flow(f)
    me, p = Host(BIOS.mac, BIOS.ip), f.site.proxy
    renew = Spec(me, f.site.dhcp, 68, 67, 1, 0x888, BIOS.mac,
                 [(53, b"\x03"), (60, b"PXEClient:Arch:00000:UNDI:002001")],
                 {"ciaddr": BIOS.ip})
    f.emit("renew", renew)
    ack = Spec(p, me, 67, 68, 2, 0x888, BIOS.mac, [(53, b"\x05"), (54, ip4(p.ip))],
               {"ciaddr": BIOS.ip})
    f.emit("renew_ack", ack)


def proxy_answers_inform(f: Flow) -> None:
    """BIOS flow, then an INFORM the proxy answers with an ACK."""
    bios_flow(f)
    me, p = Host(BIOS.mac, BIOS.ip), f.site.proxy
    inform = Spec(me, BROADCAST, 68, 67, 1, 0x777, BIOS.mac, [(53, b"\x08")], {"ciaddr": BIOS.ip})
    f.emit("inform", inform)
    ack = Spec(p, me, 67, 68, 2, 0x777, BIOS.mac, [(53, b"\x05"), (54, ip4(p.ip))])
    f.emit("inform_ack", ack)


def proxy_answers_non_pxe(f: Flow) -> None:
    """A Windows-style DHCP client gets a ProxyDHCP offer."""
    bios_flow(f)
    mac = "52:54:00:00:00:77"
    src = Host(mac, "0.0.0.0")
    q = Spec(src, BROADCAST, 68, 67, 1, 0x7777, mac, [(53, b"\x01"), (60, b"MSFT 5.0")])
    f.emit("plain_discover", q)
    p = f.site.proxy
    opts = [(53, b"\x02"), (54, ip4(p.ip)), (60, b"PXEClient"), (43, pxe43([(6, b"\x08")]))]
    kw = {"flags": 0x8000, "siaddr": p.ip, "file": b"undionly.kpxe"}
    f.emit("plain_offer", Spec(p, BROADCAST, 67, 68, 2, 0x7777, mac, opts, kw))


def plain_client_ignored(f: Flow) -> None:
    """A non-PXE DHCP client on the segment, which the proxy leaves alone."""
    bios_flow(f)
    mac = "52:54:00:00:00:77"
    q = Spec(Host(mac, "0.0.0.0"), BROADCAST, 68, 67, 1, 7, mac, [(53, b"\x01"), (60, b"MSFT 5.0")])
    f.emit("plain_discover", q)


def retransmission_unanswered(f: Flow) -> None:
    """The ROM retransmits DISCOVER (same xid) after 4 s; the proxy answers only the first."""
    f.discover(BIOS)
    f.site_offer(BIOS)
    f.proxy_offer(BIOS, "a", "undionly.kpxe")
    f.tweaks["discover_again"] = lambda s: s.kw.update(secs=4)
    f.discover(BIOS, role="discover_again", dt=4.0)
    f.site_offer(BIOS, role="site_offer_again")
    f.b.t += 2.0  # the ROM collects offers for a while before it requests
    f.site_request_ack(BIOS)
    f.tftp(BIOS, "undionly.kpxe")


def retransmission_answered(f: Flow) -> None:
    """Same, but the proxy answers the retransmission too."""
    f.discover(BIOS)
    f.site_offer(BIOS)
    f.proxy_offer(BIOS, "a", "undionly.kpxe")
    f.discover(BIOS, role="discover_again", dt=4.0)
    f.site_offer(BIOS, role="site_offer_again")
    f.proxy_offer(BIOS, "a", "undionly.kpxe", role="proxy_offer_again")
    f.site_request_ack(BIOS)
    f.tftp(BIOS, "undionly.kpxe")


def rogue_proxy_too(f: Flow) -> None:
    """A second ProxyDHCP on the segment also answers the BIOS client."""
    bios_flow(f)
    opts = [(53, b"\x02"), (54, ip4(ROGUE.ip)), (60, b"PXEClient"), (43, pxe43([(6, b"\x08")]))]
    kw = {"flags": 0x8000, "siaddr": ROGUE.ip, "file": b"other.kpxe"}
    f.emit("rogue", Spec(ROGUE, BROADCAST, 67, 68, 2, BIOS.xid, BIOS.mac, opts, kw))


def served_and_foreign(f: Flow) -> None:
    """A served BIOS client and a foreign one; the proxy answers both (defect)."""
    bios_flow(f)
    bios_flow(f, FOREIGN)


def served_and_foreign_ignored(f: Flow) -> None:
    """A served BIOS client and a foreign one that the proxy correctly ignores."""
    bios_flow(f)
    f.discover(FOREIGN)
    f.site_offer(FOREIGN)
    f.site_request_ack(FOREIGN)


def http_head_404(f: Flow) -> None:
    """HTTP boot where HEAD gets 404 while GET works."""
    f.proxied_lease(HTTPBOOT, "a", f"http://{f.site.proxy.ip}/ipxe.efi")
    f.http_get(HTTPBOOT, "/ipxe.efi", "HEAD", status=404)
    f.http_get(HTTPBOOT, "/ipxe.efi")


def bios_menu_on_67(f: Flow) -> None:
    """A PXE menu offer whose boot-server request is broadcast to port 67 (discovery
    control allows it): the proxy's ACK then comes from port 67 too."""
    f.tweaks.setdefault("request4011", _attr(dport=67, dst=BROADCAST))
    bios_menu_offer(f)


def rrq(name: str, mode: str = "octet", *options: str, opcode: int = 1) -> bytes:
    """A TFTP request packet (RFC 1350 §5, options as in RFC 2347)."""
    fields = [name, mode, *options]
    return opcode.to_bytes(2, "big") + b"".join(x.encode() + b"\x00" for x in fields)


def error(code: int, text: str = "no") -> bytes:
    """A TFTP ERROR packet."""
    return b"\x00\x05" + code.to_bytes(2, "big") + text.encode() + b"\x00"


def tftp_exchange(request: bytes, *answers: bytes) -> Callable[[Flow], None]:
    """A BIOS client (offered undionly.kpxe) sends ``request`` to port 69; the server
    answers each of ``answers`` from its transfer port, one second apart."""

    def flow(f: Flow) -> None:
        f.proxied_lease(BIOS, "a", "undionly.kpxe")
        me, p = Host(BIOS.mac, BIOS.ip), f.site.proxy
        f.b.udp(me, p, 2070, 69, request, 0.01)
        for i, answer in enumerate(answers):
            f.b.udp(p, me, 40001, 2070, answer, 0.001 if i == 0 else 1.0)

    return flow


def tftp_refused(name: str, code: int) -> Callable[[Flow], None]:
    """A read of ``name`` refused with ERROR ``code``."""
    return tftp_exchange(rrq(name), error(code))


def ipxe_relative_name(answer: str) -> Callable[[Flow], None]:
    """iPXE is given a relative script name with siaddr set and reads it by TFTP from
    siaddr, which ``answer``s: "served"; "error" (ERROR 1); "error-then-served" (a
    second read works); "silent" (three tries, then the capture goes on 4 s)."""

    def flow(f: Flow) -> None:
        f.proxied_lease(IPXE, "a", "boot.ipxe")
        me, p = Host(IPXE.mac, IPXE.ip), f.site.proxy
        if answer in ("error", "error-then-served"):
            f.b.udp(me, p, 2071, 69, rrq("boot.ipxe"), 0.01)
            f.b.udp(p, me, 40002, 2071, error(1, "File not found"), 0.001)
        if answer == "silent":
            for _ in range(3):
                f.b.udp(me, p, 2071, 69, rrq("boot.ipxe"), 1.0)
            f.b.t += 4.0
            other = Host("02:00:00:00:00:09", "10.0.0.9")
            f.b.tcp(other, Host("02:00:00:00:00:08", "10.0.0.8"), 5000, 80,
                    b"GET / HTTP/1.1\r\n\r\n")
        if answer in ("served", "error-then-served"):
            f.tftp(IPXE, "boot.ipxe", size=200)

    return flow


def small_offer(s: Spec) -> None:
    s.kw["pad_to"] = 0


SERVES_BIOS = RuleContext(proxies=frozenset({PROXY_IP}), serves={PROXY_IP: frozenset({BIOS.mac})})

# (id, flows, tweaks, context or None, the rule expected to fail — or the rules, where
# CONFORMANCE.md judges one reply by several rules on their own)
DEFECTS: list[tuple[str, tuple, dict, RuleContext | None, str | frozenset[str]]] = [
    ("nonzero-yiaddr", (bios_flow,), {"proxy_offer": _set(yiaddr="10.0.0.77")}, None, "OFFER-2"),
    ("no-option-60", (bios_flow,), {"proxy_offer": _opt(60, None)}, None, "OFFER-3"),
    ("4011-ack-wrong-port", (uefi_flow,), {"ack4011": _attr(dport=68)}, None, "ACK4011-1"),
    ("4011-ack-from-67", (uefi_flow,), {"ack4011": _attr(sport=67)}, None, "ACK4011-1"),
    ("4011-ack-to-ephemeral", (uefi_flow,), {"ack4011": _attr(dport=50000)}, None, "ACK4011-1"),
    # an ACK on 67 to the client's REQUEST for the site server's address: the proxy
    # answered an address request (SILENT-2) meant for another server (SILENT-3)
    ("ack-address-request", (proxy_acks_address_request,), {}, None,
     frozenset({"SILENT-2", "SILENT-3"})),
    ("4011-request-for-another-server", (uefi_flow,),
     {"request4011": _opt(54, ip4("10.0.0.9"))}, None, "SILENT-3"),
    ("boot-ack-on-67-gives-address", (bios_menu_on_67,),
     {"ack4011": lambda s: (_attr(sport=67, dport=68, dst=BROADCAST)(s),
                            _set(yiaddr="10.0.0.88")(s))}, None, "SILENT-4"),
    ("discover-no-option-97", (bios_flow,), {"discover": _opt(97, None)}, None, "CLI-1"),
    ("discover-option-94-short", (bios_flow,), {"discover": _opt(94, b"\x01")}, None, "CLI-2"),
    ("discover-arch-unregistered", (bios_flow,), {"discover": _opt(93, b"\x00\x63")}, None,
     "CLI-3"),
    ("tftp-missing-file-error-0", (tftp_refused("undionly.kpxe", 0),), {}, None, "TFTP-6"),
    ("tftp-escape-error-1", (tftp_refused("../../etc/shadow", 1),), {}, None, "TFTP-6"),
    ("tftp-bad-mode-error-1", (tftp_exchange(rrq("undionly.kpxe", "bogus"), error(1)),), {},
     None, "TFTP-6"),
    ("tftp-bad-mode-served", (tftp_exchange(rrq("undionly.kpxe", "bogus"),
                                            b"\x00\x03\x00\x01" + bytes(100)),), {},
     None, "TFTP-6"),
    ("tftp-bad-opcode-error-1", (tftp_exchange(rrq("undionly.kpxe", opcode=9), error(1)),), {},
     None, "TFTP-6"),
    ("tftp-error-resent", (tftp_exchange(rrq("missing.kpxe"), error(1), error(1)),), {}, None,
     "TFTP-6"),
    ("tftp-option-refusal-without-options", (tftp_refused("undionly.kpxe", 8),), {}, None,
     "TFTP-6"),
    ("relay-82-dropped-though-it-fits", (relayed_flow,), {"proxy_offer": _opt(82, None)}, None,
     "RELAY-3"),
    # the same ACK to a REQUEST that names no server: SILENT-2 alone
    ("ack-renewal-request", (proxy_acks_renewal,), {}, None, "SILENT-2"),
    ("answers-inform", (proxy_answers_inform,), {}, None, "SILENT-2"),
    ("answers-foreign-mac", (served_and_foreign,), {}, SERVES_BIOS, "SILENT-5"),
    ("broken-option-43", (bios_flow,), {"proxy_offer": _opt(43, b"\x06\x05\x08")}, None, "OFFER-7"),
    (
        "43.6-reserved-bits",
        (bios_flow,),
        {"proxy_offer": _opt(43, pxe43([(6, b"\x18")]))},
        None,
        "OFFER-7",
    ),
    (
        "giaddr-ignored",
        (relayed_flow,),
        {"proxy_offer": lambda s: (_attr(dst=BROADCAST, dport=68)(s), _set(giaddr="0.0.0.0")(s))},
        None,
        "RELAY-1",
    ),
    (
        "relay-54-is-giaddr",
        (relayed_flow,),
        {"proxy_offer": _opt(54, ip4("10.1.0.1"))},
        None,
        "RELAY-2",
    ),
    ("relay-82-not-last", (relayed_flow,), {"proxy_offer": _move_82_first}, None, "RELAY-3"),
    (
        "tftp-oack-unasked",
        (bios_flow,),
        {
            "tftp_oack": _attr(
                payload=b"\x00\x06tsize\x003000\x00blksize\x001432\x00windowsize\x004\x00"
            )
        },
        None,
        "TFTP-3",
    ),
    (
        "tftp-from-port-69",
        (bios_flow,),
        {
            k: _tftp_from_69
            for k in ["tftp_oack", "tftp_ack0"]
            + [f"tftp_{t}{n}" for t in ("data", "ack") for n in (1, 2, 3)]
        },
        None,
        "TFTP-1",
    ),
    ("tftp-no-wait-for-ack0", (bios_flow,), {"tftp_ack0": _drop}, None, "TFTP-4"),
    (
        "tftp-wrong-tsize",
        (bios_flow,),
        {"tftp_oack": _attr(payload=b"\x00\x06tsize\x004000\x00blksize\x001432\x00")},
        None,
        "TFTP-5",
    ),
    (
        "tftp-dotdot",
        (bios_flow,),
        {
            "tftp_rrq": _attr(
                payload=b"\x00\x01../../etc/shadow\x00octet\x00tsize\x000\x00blksize\x001432\x00"
            )
        },
        None,
        "TFTP-9",
    ),
    ("offer-client-options", (bios_flow,), {"proxy_offer": _opt(55, b"\x01\x03")}, None, "OFFER-9"),
    ("offer-97-not-echoed", (bios_flow,), {"proxy_offer": _opt(97, None)}, None, "OFFER-5"),
    ("offer-54-wrong", (bios_flow,), {"proxy_offer": _opt(54, ip4("10.0.0.9"))}, None, "OFFER-4"),
    ("offer-no-end", (bios_flow,), {"proxy_offer": _set(end=False)}, None, "OFFER-1"),
    (
        "offer-unicast-to-nobody",
        (bios_flow,),
        {"proxy_offer": _attr(dst=Host(BIOS.mac, BIOS.ip))},
        None,
        "OFFER-10",
    ),
    ("offer-too-small", (bios_flow,), {"proxy_offer": small_offer}, None, "OFFER-11"),
    (
        "offer-file-no-nul",
        (bios_flow,),
        {"proxy_offer": _set(file=b"a" * 123 + b".kpxe")},
        None,
        "OFFER-8",
    ),
    ("offer-bit3-without-file", (bios_flow,), {"proxy_offer": _set(file=b"")}, None, "OFFER-6"),
    (
        "4011-ack-no-bootfile",
        (uefi_flow,),
        {"ack4011": _set(file=b"", siaddr="0.0.0.0")},
        None,
        "ACK4011-2",
    ),
    (
        "4011-ack-gives-address",
        (uefi_flow,),
        {"ack4011": _set(yiaddr="10.0.0.88")},
        None,
        "ACK4011-3",
    ),
    ("4011-ack-no-boot-item", (uefi_flow,), {"ack4011": _opt(43, None)}, None, "ACK4011-4"),
    ("answers-non-pxe", (proxy_answers_non_pxe,), {}, None, "SILENT-1"),
    ("retransmission-ignored", (retransmission_unanswered,), {}, None, "TIME-1"),
    ("two-proxies", (rogue_proxy_too,), {}, None, "SITE-1"),
    (
        "site-dhcp-sends-pxeclient",
        (bios_flow,),
        {"site_offer": _opt(60, b"PXEClient")},
        None,
        "SITE-2",
    ),
    (
        "ipxe-gets-binary-again",
        (ipxe_flow,),
        {"proxy_offer": _set(file=b"http://10.0.0.2/undionly.kpxe")},
        None,
        "IPXE-1",
    ),
    ("bios-gets-efi", (bios_flow,), {"proxy_offer": _set(file=b"ipxe.efi")}, None, "IPXE-1"),
    # IPXE-2 as corrected: a relative name is wrong only with no siaddr, or when the
    # TFTP read of it fails
    # no siaddr: the offer's shape (a) has no server either (OFFER-6)
    ("ipxe-relative-name-no-siaddr", (ipxe_flow,),
     {"proxy_offer": _set(file=b"boot.ipxe", siaddr="0.0.0.0")}, None,
     frozenset({"IPXE-2", "OFFER-6"})),
    ("ipxe-relative-name-not-served", (ipxe_relative_name("error"),), {}, None, "IPXE-2"),
    ("ipxe-relative-name-unanswered", (ipxe_relative_name("silent"),), {}, None, "IPXE-2"),
    (
        "http-boot-hostname-no-dns",
        (http_flow,),
        {"proxy_offer": _set(file=b"http://boot.example/ipxe.efi")},
        None,
        "IPXE-4",
    ),
    ("http-head-404", (http_head_404,), {}, None, "IPXE-5"),
]


class _Applied(dict):
    """Tweaks that remember which of them a flow looked up (and so applied)."""

    def __init__(self, tweaks: dict) -> None:
        super().__init__(tweaks)
        self.used: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        if key in self:
            self.used.add(key)
        return super().get(key, default)


@pytest.mark.parametrize(
    ("flows", "tweaks", "context", "rule_id"),
    [pytest.param(d[1], d[2], d[3], d[4], id=d[0]) for d in DEFECTS],
)
def test_defect_flagged_by_exactly_its_rule(
    judge: Judge, flows: tuple, tweaks: dict, context: RuleContext | None,
    rule_id: str | frozenset[str]
) -> None:
    expected = {rule_id} if isinstance(rule_id, str) else set(rule_id)
    applied = _Applied(tweaks)
    report = judge(*flows, tweaks=applied, context=context)
    # a tweak for a packet the flow never sends would leave a dead case behind
    assert set(tweaks) <= applied.used, f"tweaks never applied: {set(tweaks) - applied.used}"
    failed = report.failed_rules()
    details = [f"{f.rule_id}: {f.message}" for f in report.failures()]
    assert failed == expected, details
    must = any(report.for_rule(r)[0].level is Level.MUST for r in expected)
    assert report.ok is not must


@shows_failing("TIME-2")
def test_late_offer_is_a_should_failure(judge: Judge) -> None:
    def late_flow(f: Flow) -> None:
        f.discover(BIOS)
        f.site_offer(BIOS)
        f.b.t += 1.5
        f.proxy_offer(BIOS, "a", "undionly.kpxe")
        f.site_request_ack(BIOS)

    report = judge(late_flow)
    assert report.failed_rules() == {"TIME-2"}
    assert report.ok  # SHOULD only


@shows_failing("ACK4011-1", "ACK4011-4")
def test_unanswered_menu_item_breaks_ack4011_1(judge: Judge) -> None:
    def menu_item_ignored(f: Flow) -> None:
        f.tweaks["request4011"] = _opt(43, pxe43([(71, b"\x80\x00\x00\x00")]))
        bios_menu_offer(f)
        f.b.t += 2  # the capture goes on; the client would be retrying by now
        other = Host("02:00:00:00:00:09", "10.0.0.9")
        f.b.tcp(other, Host("02:00:00:00:00:08", "10.0.0.8"), 5000, 80, b"GET / HTTP/1.1\r\n\r\n")

    answered = judge(menu_item_ignored)
    assert answered.failed_rules() == {"ACK4011-4"}  # answered, but with item 0:0
    silent = judge(menu_item_ignored, tweaks={"ack4011": _drop})
    assert silent.failed_rules() == {"ACK4011-1"}


@shows_failing("TIME-3")
def test_late_4011_ack_breaks_time3(judge: Judge) -> None:
    def late(f: Flow) -> None:
        f.proxied_lease(UEFI, "c")
        f.tweaks["ack4011"] = lambda s: setattr(f.b, "t", f.b.t + 1.5)
        f.pxe_4011(UEFI, "ipxe.efi", sport=4011)

    assert judge(late).failed_rules() == {"TIME-3"}


@pytest.mark.parametrize("name", sorted(ALL_FLOWS))
@pytest.mark.parametrize("with_context", [True, False], ids=["context", "inferred"])
def test_conformant_flows_have_no_failure(judge: Judge, name: str, with_context: bool) -> None:
    ctx = None if with_context else RuleContext()
    report = judge(ALL_FLOWS[name], context=ctx)
    assert report.failures() == []
    assert report.summary()["pass"] > 10


def ipxe_asks_4011_from_68(f: Flow) -> None:
    """iPXE sends its boot-server request from port 68 and gets the answer there."""
    c = replace(IPXE, mac="52:54:00:00:00:46", xid=0x46)
    f.proxied_lease(c, "c")
    f.pxe_4011(c, f"http://10.0.0.2/boot/{c.mac}.ipxe", sport=68, boot_item=False)


def bios_menu_offer(f: Flow) -> None:
    """A PXE menu offer (shape b: 43.6, 43.8, 43.9, 43.10), then 4011 with 43.71."""
    menu = pxe43(
        [
            (6, b"\x03"),
            (8, b"\x80\x00\x01" + ip4("10.0.0.2")),
            (9, b"\x80\x00\x04boot"),
            (10, b"\x00PXE"),
        ]
    )
    f.tweaks["proxy_offer"] = _opt(43, menu)
    f.proxied_lease(BIOS, "a", "")
    f.pxe_4011(BIOS, "undionly.kpxe", sport=68)


@pytest.mark.parametrize(
    "flow",
    [
        ipxe_asks_4011_from_68,
        bios_menu_offer,
        plain_client_ignored,
        retransmission_answered,
        served_and_foreign_ignored,
        lambda f: uefi_flow(f, replace(UEFI, uuid=b"\x01" * 16)),
        lambda f: ipxe_flow(f, replace(IPXE, mac="52:54:00:00:00:45")),
        ipxe_relative_name("served"),
        ipxe_relative_name("error-then-served"),
    ],
    ids=[
        "ipxe-4011-from-68",
        "bios-menu",
        "plain-client-ignored",
        "retransmission-answered",
        "foreign-ignored",
        "uefi-uuid",
        "ipxe-other-mac",
        "ipxe-relative-name-served",
        "ipxe-relative-name-served-on-retry",
    ],
)
def test_conformant_variants_have_no_failure(judge: Judge, flow: Callable[[Flow], None]) -> None:
    report = judge(flow, context=SERVES_BIOS if flow is served_and_foreign_ignored else None)
    assert report.failures() == [], [f.message for f in report.failures()]


def silent_proxy(f: Flow) -> None:
    """A BIOS client discovers twice; only the site server answers."""
    f.discover(BIOS)
    f.site_offer(BIOS)
    f.discover(BIOS, role="discover_again", dt=4.0)
    f.site_offer(BIOS, role="site_offer_again")


def test_silent5_and_site3_need_context(judge: Judge) -> None:
    """Without the MAC filter (--serves) neither rule can blame a proxy for whom it
    answered or left alone: SILENT-5 says why it was not applied, and SITE-3 judges
    only the address half, so a silent proxy is not a SITE-3 failure."""
    report = judge(served_and_foreign)
    (f,) = report.for_rule("SILENT-5")
    assert f.verdict.value == "not-applicable" and "--serves" in f.message
    report = judge(silent_proxy, context=RuleContext(proxies=frozenset({PROXY_IP})))
    assert [f.verdict.value for f in report.for_rule("SITE-3")] == ["pass"]
    assert report.failures() == []


@shows_failing("SITE-3")
def test_served_client_left_unanswered_fails_site3(judge: Judge) -> None:
    report = judge(silent_proxy, context=SERVES_BIOS)
    assert report.failed_rules() == {"SITE-3"}
    assert "no ProxyDHCP offer" in report.for_rule("SITE-3")[0].message


@shows_failing("TFTP-7")
def test_sorcerers_apprentice_is_flagged(judge: Judge) -> None:
    def apprentice(f: Flow) -> None:
        bios_flow(f)
        me, p = Host(BIOS.mac, BIOS.ip), f.site.proxy
        # duplicate ACK 1 arrives; the server answers it with DATA 2 again at once
        f.b.udp(me, p, 2070, 40001, b"\x00\x04\x00\x01", 0.001)
        f.b.udp(p, me, 40001, 2070, b"\x00\x03\x00\x02" + bytes(1432), 0.001)

    assert judge(apprentice).failed_rules() == {"TFTP-7"}


def test_unused_payload_helper_is_exercised() -> None:
    assert len(dhcp_payload(1, 1, BIOS.mac, [(53, b"\x01")])) == 300


@pytest.mark.parametrize(
    "flow",
    [
        tftp_refused("missing.kpxe", 1),
        tftp_refused("../../etc/shadow", 2),
        tftp_refused("/etc/passwd", 1),  # read under the root, where it is not found
        tftp_refused("locked.kpxe", 2),  # a symlink out, or no permission
        tftp_exchange(rrq("undionly.kpxe", "octet", "tsize", "0"), error(8)),
        tftp_exchange(rrq("undionly.kpxe", "bogus"), error(4)),
        tftp_exchange(rrq("undionly.kpxe", opcode=9), error(4)),
        tftp_exchange(rrq("upload.bin", opcode=2), error(4)),
    ],
    ids=["missing-1", "dotdot-2", "absolute-1", "denied-2", "options-8", "bad-mode-4",
         "bad-opcode-4", "write-4"],
)
def test_right_tftp_errors_pass_tftp6(judge: Judge, flow: Callable[[Flow], None]) -> None:
    """The codes real dnsmasq 2.90 sends (1 missing, 2 for `..`, 1 for an absolute path
    read under its root, 4 for a bad mode, opcode or a write) and RFC 2347's 8."""
    report = judge(flow)
    assert report.failures() == [], [f.message for f in report.failures()]
    assert {f.verdict.value for f in report.for_rule("TFTP-6")} == {"pass"}


BIG_82 = b"\x01\x78" + bytes(range(120))  # circuit id, 122 bytes: a verbose switch


def relay3_at_the_boundary(judge: Judge, tmp_path: Path, spare: int) -> Report:
    """RFC 3046 §2.0 at the boundary: the proxy drops a long option 82 from an offer it
    has filled with other options; with 82 the offer would need exactly the room the
    client allows (``spare`` 0: it fits) or one byte more (``spare`` 1: it does not)."""
    from harness.capture import decode_pcap
    from harness.rules.checks_relay import room_for_reply, size_with

    def offer_filled(filler: int) -> dict:
        # no option 57 in the request: the client takes 576-byte datagrams only
        return {"discover": lambda s: (s.set_option(82, BIG_82), s.set_option(57, None)),
                "proxy_offer": lambda s: (s.set_option(82, None),
                                          s.set_option(224, bytes(filler)))}

    # measure the offer without filler, then fill it to the boundary
    f = Flow(tweaks=offer_filled(0))
    relayed_flow(f)
    events = decode_pcap(f.b.write(str(tmp_path / "measure.pcap"))).dhcp
    offer = next(e for e in events if e.msg_type == "OFFER")
    request = next(e for e in events if e.msg_type == "DISCOVER")
    filler = room_for_reply(request) - size_with(offer, BIG_82) + spare
    assert 0 < filler <= 255
    return judge(relayed_flow, tweaks=offer_filled(filler))


@shows_failing("RELAY-3")
def test_relay3_fails_an_omitted_82_that_would_just_fit(judge: Judge, tmp_path: Path) -> None:
    report = relay3_at_the_boundary(judge, tmp_path, spare=0)
    assert report.failed_rules() == {"RELAY-3"}
    assert "548 bytes with it, room for 548" in report.for_rule("RELAY-3")[0].message


def test_relay3_passes_an_omitted_82_one_byte_too_long(judge: Judge, tmp_path: Path) -> None:
    report = relay3_at_the_boundary(judge, tmp_path, spare=1)
    assert report.failures() == []
    [finding] = report.for_rule("RELAY-3")
    assert finding.verdict.value == "pass" and "would not fit" in finding.message
