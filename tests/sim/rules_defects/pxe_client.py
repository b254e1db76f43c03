"""A minimal PXE ROM run inside a client namespace: DISCOVER, lease, 4011, TFTP.

Usage: python pxe_client.py MAC ARCH [--discover-only] [--from-4011]
Prints one JSON line saying what it got. Not a test by itself; the sim tests
run it under ``ip netns exec`` while tcpdump records the segment.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])

from harness.capture.dhcp_codec import decode_pxe, parse_dhcp
from harness.capture.synth import dhcp_payload, ip4, pxe43, pxe_vendor_class

IFACE = "eth0"
UUID = bytes(range(16))


def udp_frame(mac: str, payload: bytes, sport: int = 68, dport: int = 67) -> bytes:
    """Broadcast Ethernet/IPv4/UDP frame from 0.0.0.0 (checksum 0 is allowed for UDP)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\0" * 4, b"\xff" * 4
    )
    csum = 0
    for i in range(0, 20, 2):
        csum += (ip[i] << 8) + ip[i + 1]
    csum = (csum & 0xFFFF) + (csum >> 16)
    ip = ip[:10] + struct.pack("!H", ~csum & 0xFFFF) + ip[12:]
    eth = b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) + b"\x08\x00"
    return eth + ip + udp


def client_opts(arch: int, msg: int, extra: list) -> list:
    """Options in a PXE ROM's order."""
    return [
        (53, bytes([msg])),
        (57, b"\x05\xc0"),
        *extra,
        (55, bytes([1, 3, 43, 60, 66, 67, 97])),
        (93, arch.to_bytes(2, "big")),
        (94, b"\x01\x02\x01"),
        (97, b"\x00" + UUID),
        (60, pxe_vendor_class(arch)),
    ]


def collect(sock: socket.socket, xid: int, seconds: float) -> list:
    """DHCP replies with ``xid`` seen on the raw socket for ``seconds``."""
    out = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            frame = sock.recv(4096)
        except TimeoutError:
            break
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", frame[14 + ihl : 18 + ihl])
        if sport != 67 or dport != 68:
            continue
        try:
            f = parse_dhcp(frame[22 + ihl :])
        except ValueError:
            continue
        if f.xid == xid and f.op == 2:
            out.append(f)
    return out


def main() -> int:
    mac, arch = sys.argv[1], int(sys.argv[2])
    only_discover = "--discover-only" in sys.argv
    result: dict = {"mac": mac}
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    raw.bind((IFACE, 0))
    xid = int.from_bytes(bytes.fromhex(mac.replace(":", ""))[-4:], "big")
    raw.send(udp_frame(mac, dhcp_payload(1, xid, mac, client_opts(arch, 1, []))))
    replies = collect(raw, xid, 1.5)
    site = [r for r in replies if r.yiaddr != "0.0.0.0"]
    proxy = [r for r in replies if r.yiaddr == "0.0.0.0"]
    result["site_offers"], result["proxy_offers"] = len(site), len(proxy)
    if only_discover or not site:
        print(json.dumps(result))
        return 0
    lease = site[0].yiaddr
    server = dict(site[0].options)[54]
    req = client_opts(arch, 3, [(50, ip4(lease)), (54, server)])
    raw.send(udp_frame(mac, dhcp_payload(1, xid, mac, req)))
    acks = [r for r in collect(raw, xid, 1.0) if dict(r.options).get(53) == b"\x05"]
    result["lease"] = lease if acks else None
    if not acks or not proxy:
        print(json.dumps(result))
        return 0
    subprocess.run(["ip", "addr", "add", f"{lease}/24", "dev", IFACE], check=True)
    offer = dict(proxy[0].options)
    boot_server = offer[54]
    extra = []
    menu = decode_pxe(offer[43]).get(9) if 43 in offer else None
    if menu:
        extra.append((43, pxe43([(71, menu[:2] + b"\x00\x00")])))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((lease, 4011 if "--from-4011" in sys.argv else 68))
    s.settimeout(2.0)
    q = dhcp_payload(1, xid + 1, mac, client_opts(arch, 3, extra), ciaddr=lease)
    s.sendto(q, (socket.inet_ntoa(boot_server), 4011))
    try:
        ack = parse_dhcp(s.recv(4096))
        result["bootfile"] = ack.file_raw.split(b"\0", 1)[0].decode()
        result["siaddr"] = ack.siaddr
    except TimeoutError:
        result["bootfile"] = None
    s.close()
    if result.get("bootfile"):
        result["tftp_bytes"] = tftp_get(lease, result["siaddr"], result["bootfile"])
    print(json.dumps(result))
    return 0


def tftp_get(local: str, server: str, name: str) -> int:
    """RRQ with tsize and blksize, then ACK every block; returns the bytes received."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((local, 0))
    s.settimeout(2.0)
    s.sendto(b"\0\1" + name.encode() + b"\0octet\0tsize\x000\0blksize\x001432\0", (server, 69))
    total, blksize = 0, 512
    while True:
        data, peer = s.recvfrom(70000)
        op = struct.unpack("!H", data[:2])[0]
        if op == 6:
            opts = data[2:].split(b"\0")
            d = dict(zip(opts[0::2], opts[1::2], strict=False))
            blksize = int(d.get(b"blksize", b"512"))
            s.sendto(b"\0\4\0\0", peer)
        elif op == 3:
            total += len(data) - 4
            s.sendto(b"\0\4" + data[2:4], peer)
            if len(data) - 4 < blksize:
                return total
        else:
            return -1


if __name__ == "__main__":
    sys.exit(main())
