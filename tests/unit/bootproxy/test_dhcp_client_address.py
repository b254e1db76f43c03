"""Which address a request shows its client holds: what TFTP/HTTP's MAC filter learns from.

A relayed UEFI HTTP-boot or BIOS PXE client sends nothing to the proxy but broadcasts the
relay forwards (no 4011 request, no ARP the proxy can see): the REQUEST's option 50 is the
only place its address appears. Not learning it gave relayed HTTP boot a 404 for ipxe.efi.
"""

from __future__ import annotations

import pytest

from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.dhcp.responder import ResponderConfig, client_address
from bootproxy.dhcp.server import DhcpListener
from bootproxy.metrics import Registry

pytestmark = pytest.mark.unit

MAC = "52:54:00:aa:bb:cc"
RELAY = "10.9.0.1"


def request(msg: int, *, requested: str | None = None, **fields: str) -> DhcpPacket:
    options = [(Opt.MESSAGE_TYPE, bytes((msg,))), (Opt.VENDOR_CLASS,
                                                   b"HTTPClient:Arch:00016:UNDI:003000")]
    if requested is not None:
        options.append((Opt.REQUESTED_ADDRESS, bytes(int(p) for p in requested.split("."))))
    pkt = DhcpPacket(xid=1, chaddr=bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10,
                     options=options)
    for key, value in fields.items():
        setattr(pkt, key, value)
    return parse(encode(pkt))


def test_relayed_request_teaches_its_requested_address() -> None:
    pkt = request(MessageType.REQUEST, requested="10.9.0.57", giaddr=RELAY)
    assert client_address(pkt, RELAY) == "10.9.0.57"


def test_relayed_packet_never_teaches_the_relays_address() -> None:
    assert client_address(request(MessageType.DISCOVER, giaddr=RELAY), RELAY) is None
    # a DISCOVER's option 50 is only a wish: nobody granted it yet
    assert client_address(request(MessageType.DISCOVER, requested="10.9.0.57",
                                  giaddr=RELAY), RELAY) is None


def test_ciaddr_wins_relayed_or_not() -> None:
    renew = request(MessageType.REQUEST, ciaddr="10.9.0.60", giaddr=RELAY)
    assert client_address(renew, RELAY) == "10.9.0.60"
    assert client_address(request(MessageType.REQUEST, ciaddr="10.1.0.5"), "10.1.0.5") \
        == "10.1.0.5"


def test_direct_unicast_teaches_its_source_and_a_broadcast_request_its_option_50() -> None:
    assert client_address(request(MessageType.DISCOVER), "10.1.0.9") == "10.1.0.9"
    assert client_address(request(MessageType.DISCOVER), "0.0.0.0") is None
    selecting = request(MessageType.REQUEST, requested="10.1.0.77")
    assert client_address(selecting, "0.0.0.0") == "10.1.0.77"


def test_listener_learns_a_relayed_clients_address() -> None:
    """The listener feeds the IP->MAC book from relayed REQUESTs (was: skipped when giaddr≠0)."""
    learned: list[tuple[str, str]] = []
    listener = DhcpListener(
        iface="lo", port=0, role=67, server_addr="127.0.0.1", config=ResponderConfig(),
        served=lambda mac: True, registry=Registry(), bind_host="127.0.0.1",
        bind_device=False, learn=lambda ip, mac: learned.append((ip, mac)))
    raw = encode(request(MessageType.REQUEST, requested="10.9.0.57", giaddr=RELAY))
    listener.datagram_received(raw, (RELAY, 67))
    raw = encode(request(MessageType.DISCOVER, giaddr=RELAY))
    listener.datagram_received(raw, (RELAY, 67))
    assert learned == [("10.9.0.57", MAC)]
