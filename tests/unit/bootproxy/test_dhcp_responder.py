"""The ProxyDHCP decision table: per architecture, iPXE, HTTP boot, relay, 4011 and SILENT cases.

Each reply is encoded and parsed back, so the assertions read what goes on the wire.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.dhcp.options import (
    BootItem,
    decode_boot_item,
    decode_suboptions,
    encode_arch,
    encode_boot_item,
    encode_suboptions,
    encode_user_class,
)
from bootproxy.dhcp.responder import (
    Drop,
    DropReason,
    ReceiveContext,
    Reply,
    ResponderConfig,
    decide,
)

pytestmark = pytest.mark.unit

SERVER = "10.20.0.2"
MAC = bytes.fromhex("525400aabbcc")
UUID97 = b"\x00" + bytes(range(1, 17))
CFG = ResponderConfig(http_port=8080)


def request(
    arch: int | None = 0,
    msg: int = MessageType.DISCOVER,
    vendor: bytes | None = None,
    extra: list[tuple[int, bytes]] | None = None,
    **fields: object,
) -> DhcpPacket:
    if vendor is None:
        vendor = f"PXEClient:Arch:{arch or 0:05d}:UNDI:003016".encode()
    options = [(Opt.MESSAGE_TYPE, bytes((msg,))), (Opt.VENDOR_CLASS, vendor)]
    if arch is not None:
        options.append((Opt.CLIENT_ARCH, encode_arch([arch])))
    options += [(Opt.CLIENT_NDI, b"\x01\x03\x10"), (Opt.CLIENT_UUID, UUID97)]
    options += extra or []
    pkt = DhcpPacket(xid=0x1234ABCD, chaddr=MAC + bytes(10), options=options)
    for key, value in fields.items():
        setattr(pkt, key, value)
    return pkt


def ctx(port: int = 67, served: bool = True, source: tuple[str, int] = ("0.0.0.0", 68)):
    return ReceiveContext(server_addr=SERVER, port=port, source=source, served=served)


def reply_of(result: Reply | Drop) -> tuple[DhcpPacket, Reply]:
    assert isinstance(result, Reply), result
    wire = encode(result.packet)
    assert len(wire) >= 300  # OFFER-11
    return parse(wire), result


def pxe_sub(pkt: DhcpPacket) -> dict[int, bytes]:
    raw = pkt.get(Opt.VENDOR_SPECIFIC)
    assert raw is not None
    assert raw[-1] == 255 and len(raw) <= 255  # OFFER-7
    return dict(decode_suboptions(raw, end_required=True))


def assert_offer_basics(pkt: DhcpPacket) -> None:
    assert pkt.op == 2 and pkt.xid == 0x1234ABCD and pkt.chaddr[:6] == MAC  # OFFER-1
    assert pkt.yiaddr == "0.0.0.0" and pkt.ciaddr == "0.0.0.0"  # OFFER-2
    assert pkt.get(Opt.SERVER_ID) == bytes([10, 20, 0, 2])  # OFFER-4
    assert pkt.get(Opt.CLIENT_UUID) == UUID97  # OFFER-5
    for banned in (50, 55, 57):  # OFFER-9
        assert not pkt.has(banned)


def test_bios_offer_gets_undionly_over_tftp() -> None:
    pkt, rep = reply_of(decide(request(0), ctx(), CFG))
    assert_offer_basics(pkt)
    assert pkt.message_type == MessageType.OFFER
    assert pkt.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert pkt.file == b"undionly.kpxe" and pkt.siaddr == SERVER
    assert pxe_sub(pkt)[6] == b"\x08"  # OFFER-6 (a)
    assert rep.dest == ("255.255.255.255", 68)  # OFFER-10
    assert rep.kind == "offer"


@pytest.mark.parametrize("arch", [7, 9])
def test_uefi_offer_has_no_43_and_no_file(arch: int) -> None:
    pkt, _ = reply_of(decide(request(arch), ctx(), CFG))
    assert_offer_basics(pkt)
    assert pkt.get(Opt.VENDOR_CLASS) == b"PXEClient"
    assert not pkt.has(Opt.VENDOR_SPECIFIC)  # shape (c), old EDK2
    assert pkt.file == b"" and pkt.siaddr == SERVER


@pytest.mark.parametrize("src_port", [4011, 68])
def test_uefi_4011_request_gets_ack_with_file_to_source(src_port: int) -> None:
    item = encode_suboptions([(71, encode_boot_item(BootItem(0, 0)))])
    req = request(7, MessageType.REQUEST, extra=[(Opt.VENDOR_SPECIFIC, item)], ciaddr="10.20.0.50")
    pkt, rep = reply_of(decide(req, ctx(4011, source=("10.20.0.50", src_port)), CFG))
    assert pkt.message_type == MessageType.ACK
    assert rep.dest == ("10.20.0.50", src_port)  # ACK4011-1
    assert rep.kind == "ack"
    assert pkt.file == b"ipxe.efi" and pkt.siaddr == SERVER  # ACK4011-2
    assert pkt.yiaddr == "0.0.0.0"  # ACK4011-3
    assert pkt.get(Opt.CLIENT_UUID) == UUID97
    assert decode_boot_item(pxe_sub(pkt)[71]) == BootItem(0, 0)  # ACK4011-4


def test_4011_unknown_boot_item_type_is_silent() -> None:
    item = encode_suboptions([(71, encode_boot_item(BootItem(0x8001, 0)))])
    req = request(7, MessageType.REQUEST, extra=[(Opt.VENDOR_SPECIFIC, item)])
    result = decide(req, ctx(4011, source=("10.20.0.50", 4011)), CFG)
    assert result == Drop(DropReason.UNKNOWN_BOOT_ITEM, "type 32769")


def test_ipxe_4011_request_without_boot_item_is_answered() -> None:
    req = request(0, MessageType.REQUEST, ciaddr="10.20.0.50")
    pkt, rep = reply_of(decide(req, ctx(4011, source=("10.20.0.50", 68)), CFG))
    assert rep.dest == ("10.20.0.50", 68)
    assert pkt.file == b"undionly.kpxe"


def test_http_client_gets_absolute_url_and_httpclient_class() -> None:
    req = request(16, vendor=b"HTTPClient:Arch:00016:UNDI:003001")
    pkt, _ = reply_of(decide(req, ctx(), CFG))
    assert_offer_basics(pkt)
    assert pkt.get(Opt.VENDOR_CLASS) == b"HTTPClient"  # IPXE-4
    assert pkt.file == f"http://{SERVER}:8080/ipxe.efi".encode()
    assert not pkt.has(Opt.VENDOR_SPECIFIC)


@pytest.mark.parametrize("rfc3004", [False, True])
@pytest.mark.parametrize("arch", [0, 7])
def test_ipxe_gets_script_url_never_binary(arch: int, rfc3004: bool) -> None:
    uc = encode_user_class([b"iPXE"], rfc3004=rfc3004)
    req = request(arch, extra=[(Opt.USER_CLASS, uc), (175, b"\x13\x01\x01")])
    pkt, _ = reply_of(decide(req, ctx(), CFG))
    assert pkt.file == f"http://{SERVER}:8080/boot/52:54:00:aa:bb:cc.ipxe".encode()  # IPXE-1/2
    assert pkt.get(Opt.VENDOR_CLASS) == b"PXEClient"


def test_relayed_discover_goes_to_giaddr_with_82_last() -> None:
    relay = b"\x01\x04eth7\x02\x03sw1"
    req = request(0, extra=[(Opt.RELAY_AGENT, relay)], giaddr="10.30.0.1", hops=1)
    pkt, rep = reply_of(decide(req, ctx(), CFG))
    assert rep.dest == ("10.30.0.1", 67)  # RELAY-1
    assert pkt.giaddr == "10.30.0.1" and pkt.broadcast
    assert pkt.options[-1] == (Opt.RELAY_AGENT, relay)  # RELAY-3


def test_configured_equivalent_vendor_class_is_served() -> None:
    req = request(0, vendor=b"HW-Client")
    assert isinstance(decide(req, ctx(), CFG), Drop)
    cfg = ResponderConfig(pxe_equivalents=("HW-Client",))
    pkt, _ = reply_of(decide(req, ctx(), cfg))
    assert pkt.get(Opt.VENDOR_CLASS) == b"PXEClient"


def test_reply_delay_is_carried() -> None:
    result = decide(request(0), ctx(), ResponderConfig(reply_delay=0.25))
    assert isinstance(result, Reply) and result.delay == 0.25


def test_arch_falls_back_to_option_60() -> None:
    req = request(None, vendor=b"PXEClient:Arch:00007:UNDI:003016")
    pkt, _ = reply_of(decide(req, ctx(), CFG))
    assert not pkt.has(Opt.VENDOR_SPECIFIC)  # treated as UEFI


@pytest.mark.parametrize(
    ("req", "port", "served", "reason"),
    [
        (request(0, vendor=b"MSFT 5.0"), 67, True, DropReason.NOT_PXE),  # SILENT-1
        (request(0, msg=MessageType.REQUEST), 67, True, DropReason.ADDRESS_REQUEST),  # SILENT-2
        (request(0, msg=MessageType.INFORM), 67, True, DropReason.SILENT_MSGTYPE),
        (request(0, msg=MessageType.RELEASE), 67, True, DropReason.SILENT_MSGTYPE),
        (request(0, msg=MessageType.DECLINE), 67, True, DropReason.SILENT_MSGTYPE),
        (request(0, msg=MessageType.DISCOVER), 4011, True, DropReason.SILENT_MSGTYPE),
        (
            request(0, MessageType.REQUEST, extra=[(Opt.SERVER_ID, bytes([10, 20, 0, 9]))]),
            4011,
            True,
            DropReason.OTHER_SERVER,
        ),  # SILENT-3
        (request(0), 67, False, DropReason.UNKNOWN_MAC),  # SILENT-5
        (request(11), 67, True, DropReason.UNSUPPORTED_ARCH),
        (request(0, op=2), 67, True, DropReason.NOT_REQUEST),
        (request(0, hlen=8), 67, True, DropReason.BAD_HARDWARE),
        (request(0, extra=[(Opt.CLIENT_ARCH, b"\x00")]), 67, True, DropReason.MALFORMED_OPTION),
        (DhcpPacket(chaddr=MAC), 67, True, DropReason.NO_MSGTYPE),
    ],
)
def test_silent_cases(req: DhcpPacket, port: int, served: bool, reason: str) -> None:
    result = decide(req, ctx(port, served, ("10.20.0.50", 68)), CFG)
    assert isinstance(result, Drop)
    assert result.reason == reason


def test_unknown_mac_gets_no_4011_ack() -> None:
    req = request(7, MessageType.REQUEST)
    assert decide(req, ctx(4011, False, ("10.20.0.50", 4011)), CFG) == Drop(
        DropReason.UNKNOWN_MAC, "52:54:00:aa:bb:cc"
    )


def test_same_xid_retransmission_answered_each_time() -> None:
    req = request(0)
    first = decide(req, ctx(), CFG)
    second = decide(req, ctx(), CFG)
    assert isinstance(first, Reply) and isinstance(second, Reply)
    assert encode(first.packet) == encode(second.packet)  # TIME-1


def test_relay_82_omitted_when_it_does_not_fit() -> None:
    big = bytes([1, 255]) + bytes(255) + bytes([2, 150]) + bytes(150)  # 409 bytes, 2 instances
    req = request(0, extra=[(Opt.RELAY_AGENT, big)], giaddr="10.30.0.1")
    pkt, rep = reply_of(decide(req, ctx(), CFG))
    assert rep.dest == ("10.30.0.1", 67)
    assert not pkt.has(Opt.RELAY_AGENT)  # RELAY-3: omit rather than exceed 576 (OFFER-11)
    assert len(encode(rep.packet)) <= 576


_interesting = st.sampled_from([43, 52, 53, 54, 60, 77, 82, 93, 94, 97, 175, 12, 61])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_interesting, st.binary(max_size=40)), max_size=10),
    st.sampled_from([67, 4011]),
    st.booleans(),
    st.sampled_from(["0.0.0.0", "10.30.0.1"]),
)
def test_fuzz_decide_never_raises(
    options: list[tuple[int, bytes]], port: int, served: bool, giaddr: str
) -> None:
    base = [(Opt.MESSAGE_TYPE, b"\x01"), (Opt.VENDOR_CLASS, b"PXEClient:Arch:00000:UNDI:002001")]
    pkt = DhcpPacket(xid=1, chaddr=MAC + bytes(10), giaddr=giaddr, options=base + options)
    result = decide(pkt, ctx(port, served, ("10.20.0.50", 68)), CFG)
    assert isinstance(result, Reply | Drop)
    if isinstance(result, Reply):
        wire = encode(result.packet)
        assert 300 <= len(wire) <= 576
        back = parse(wire)
        assert back.yiaddr == "0.0.0.0"
        assert not any(back.has(code) for code in (50, 55, 57))


def test_malformed_97_is_not_echoed() -> None:
    req = request(0)
    req.options = [(c, v) for c, v in req.options if c != Opt.CLIENT_UUID]
    req.options += [(Opt.CLIENT_UUID, bytes(200)), (Opt.CLIENT_UUID, bytes(200))]
    pkt, rep = reply_of(decide(req, ctx(), CFG))
    assert not pkt.has(Opt.CLIENT_UUID)
    assert len(encode(rep.packet)) <= 576


def test_boot_server_request_on_67_answered_to_its_source_port() -> None:
    item = encode_suboptions([(71, encode_boot_item(BootItem(0, 0)))])
    req = request(7, MessageType.REQUEST, extra=[(Opt.VENDOR_SPECIFIC, item)], ciaddr="10.20.0.50")
    pkt, rep = reply_of(decide(req, ctx(67, source=("10.20.0.50", 4011)), CFG))
    assert pkt.message_type == MessageType.ACK and rep.kind == "ack"
    assert rep.dest == ("10.20.0.50", 4011)
    assert decode_boot_item(pxe_sub(pkt)[71]) == BootItem(0, 0)
