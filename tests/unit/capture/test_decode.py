"""decode_pcap on committed synthetic captures and on broken files."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.utils import wrpcap, wrpcapng

from harness.capture import CaptureError, decode_pcap
from harness.capture.synth import BROADCAST, Host, PcapBuilder, dhcp_payload
from harness.capture.synth_flows import UEFI, Flow, uefi_flow
from harness.macs import mac_bytes

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"
CLIENT = Host("52:54:00:aa:bb:cc", "0.0.0.0")


def test_bios_fixture_decodes_every_protocol() -> None:
    cap = decode_pcap(str(PCAPS / "synthetic_bios.pcap"))
    assert cap.frames == 14
    kinds = [e.msg_type for e in cap.dhcp]
    assert kinds == ["DISCOVER", "OFFER", "OFFER", "REQUEST", "ACK"]
    disc, _site, proxy = cap.dhcp[:3]
    assert disc.frame == 1 and disc.sport == 68 and disc.dport == 67
    assert disc.vendor_class == "PXEClient:Arch:00000:UNDI:002001"
    assert disc.client_arch == (0,)
    assert disc.nii == b"\x01\x02\x01"
    assert disc.uuid is not None and len(disc.uuid) == 17
    assert disc.chaddr == "52:54:00:00:00:11"
    assert disc.max_msg_size == 1472
    assert proxy.yiaddr == "0.0.0.0" and proxy.broadcast
    assert proxy.server_id == "10.0.0.2"
    assert proxy.pxe is not None and proxy.pxe.discovery_control == 8
    assert proxy.file == "undionly.kpxe"
    assert proxy.end_present and proxy.options_error is None
    assert [c for c, _ in proxy.options] == [53, 54, 60, 97, 43]
    ops = [t.op_name for t in cap.tftp]
    assert ops[:3] == ["RRQ", "OACK", "ACK"]
    assert cap.tftp[0].options == (("tsize", "0"), ("blksize", "1432"))
    assert [t.data_len for t in cap.tftp if t.op_name == "DATA"] == [1432, 1432, 136]


def test_uefi_4011_exchange_is_dhcp() -> None:
    cap = decode_pcap(str(PCAPS / "synthetic_uefi.pcap"))
    req = [e for e in cap.dhcp if e.dport == 4011 and e.op == 1]
    ack = [e for e in cap.dhcp if e.sport == 4011 and e.op == 2]
    assert len(req) == 1 and len(ack) == 1
    assert req[0].ciaddr == UEFI.ip and req[0].pxe is not None
    assert req[0].pxe.boot_item == (0, 0)
    assert ack[0].dport == 4011 and ack[0].file == "ipxe.efi"


def test_http_requests_and_responses() -> None:
    cap = decode_pcap(str(PCAPS / "synthetic_http.pcap"))
    assert [(h.kind, h.method, h.status) for h in cap.http] == [
        ("request", "HEAD", None),
        ("response", None, 200),
        ("request", "GET", None),
        ("response", None, 200),
    ]
    assert cap.http[0].path == "/ipxe.efi" and cap.http[0].host == "10.0.0.2"


def test_malformed_option_43_is_reported_not_repaired(tmp_path: Path) -> None:
    b = PcapBuilder()
    bad43 = b"\x06\x05\x08"  # claims 5 bytes, has 1, no END
    pay = dhcp_payload(2, 7, "52:54:00:aa:bb:cc", [(53, b"\x02"), (43, bad43)])
    b.udp(Host("02:00:00:00:00:02", "10.0.0.2"), BROADCAST, 67, 68, pay)
    cap = decode_pcap(b.write(str(tmp_path / "bad43.pcap")))
    pxe = cap.dhcp[0].pxe
    assert pxe is not None and pxe.error is not None and "claims 5" in pxe.error


def test_missing_end_and_overrun_are_visible(tmp_path: Path) -> None:
    b = PcapBuilder()
    b.udp(
        CLIENT,
        BROADCAST,
        68,
        67,
        dhcp_payload(1, 1, CLIENT.mac, [(53, b"\x01")], end=False, pad_to=0),
    )
    b.udp(
        CLIENT,
        BROADCAST,
        68,
        67,
        dhcp_payload(1, 2, CLIENT.mac, [], raw_options=b"\x35\x01\x01\x3c\x20PXE", pad_to=0),
    )
    cap = decode_pcap(b.write(str(tmp_path / "x.pcap")))
    assert not cap.dhcp[0].end_present and cap.dhcp[0].options_error is None
    assert cap.dhcp[1].options_error is not None and "option 60" in cap.dhcp[1].options_error


def test_option_overload_reads_file_field(tmp_path: Path) -> None:
    b = PcapBuilder()
    file_opts = b"\x43\x04boot\xff"
    pay = dhcp_payload(2, 3, CLIENT.mac, [(53, b"\x02"), (52, b"\x01")], file=file_opts)
    b.udp(Host("02:00:00:00:00:02", "10.0.0.2"), BROADCAST, 67, 68, pay)
    ev = decode_pcap(b.write(str(tmp_path / "ov.pcap"))).dhcp[0]
    assert ev.overload == 1 and ev.bootfile_opt == "boot"


def test_pcapng_is_read(tmp_path: Path) -> None:
    f = Flow()
    uefi_flow(f)
    path = str(tmp_path / "u.pcapng")
    wrpcapng(path, f.b.frames)
    cap = decode_pcap(path)
    assert cap.frames == len(f.b.frames) and len(cap.dhcp) == 7
    for e in cap.dhcp:
        assert abs(e.time - float(f.b.frames[e.frame - 1].time)) < 1e-5


def test_linux_cooked_capture_is_read(tmp_path: Path) -> None:
    from scapy.layers.l2 import CookedLinux

    f = Flow()
    uefi_flow(f)
    frames = []
    for pkt in f.b.frames:
        cooked = (
            CookedLinux(
                pkttype=0,
                lladdrtype=1,
                lladdrlen=6,
                src=mac_bytes(pkt.src).ljust(8, b"\0"),
                proto=0x0800,
            )
            / pkt.payload
        )
        cooked.time = pkt.time
        frames.append(cooked)
        twin = cooked.copy()  # -i any: seen again on the bridge port
        twin.time = pkt.time + 0.00005
        frames.append(twin)
    path = str(tmp_path / "any.pcap")
    wrpcap(path, frames)
    cap = decode_pcap(path)
    assert len(cap.dhcp) == 7 and cap.dhcp[0].src_mac == UEFI.mac
    assert cap.duplicates == len(frames) // 2 and len(cap.tftp) == 9


def test_truncated_pcap_raises_with_frame_number(tmp_path: Path) -> None:
    data = (PCAPS / "synthetic_bios.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-20])
    with pytest.raises(CaptureError, match="truncated after frame 13"):
        decode_pcap(str(cut))
    cut.write_bytes(data + b"\x00" * 7)
    with pytest.raises(CaptureError, match="truncated after frame 14"):
        decode_pcap(str(cut))


def test_truncated_pcapng_raises(tmp_path: Path) -> None:
    f = Flow()
    uefi_flow(f)
    path = tmp_path / "u.pcapng"
    wrpcapng(str(path), f.b.frames)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CaptureError, match="truncated"):
        decode_pcap(str(path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"hello world, not a pcap at all", "not a pcap"),
        (b"\xd4\xc3\xb2\xa1\x02", "cut short"),
    ],
)
def test_corrupt_files_raise(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.pcap"
    p.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        decode_pcap(str(p))


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        decode_pcap(str(tmp_path / "nope.pcap"))


def test_capture_without_dhcp_raises(tmp_path: Path) -> None:
    b = PcapBuilder()
    b.tcp(
        Host("02:00:00:00:00:09", "10.0.0.9"),
        Host("02:00:00:00:00:02", "10.0.0.2"),
        1234,
        80,
        b"GET / HTTP/1.1\r\n\r\n",
    )
    path = b.write(str(tmp_path / "nodhcp.pcap"))
    with pytest.raises(CaptureError, match="no DHCP"):
        decode_pcap(path)
    assert len(decode_pcap(path, require_dhcp=False).http) == 1


def test_tcp_retransmission_is_not_a_second_request(tmp_path: Path) -> None:
    b = PcapBuilder()
    c, s = Host("02:00:00:00:00:09", "10.0.0.9"), Host("02:00:00:00:00:02", "10.0.0.2")
    b.udp(c, BROADCAST, 68, 67, dhcp_payload(1, 1, c.mac, [(53, b"\x01")]))
    for _ in range(2):  # same seq: a retransmission
        b.seqs.pop((c.ip, 1234, s.ip, 80), None)
        b.tcp(c, s, 1234, 80, b"HEAD /ipxe.efi HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n")
    cap = decode_pcap(b.write(str(tmp_path / "rtx.pcap")))
    assert len(cap.http) == 1 and cap.http[0].range == "bytes=0-1"
