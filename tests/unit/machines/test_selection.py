"""Offer selection and the DISCOVER retransmission schedule, driven by a fake clock."""

from __future__ import annotations

import pytest

from harness.machines.sim.dhcp import OFFER, Offer
from harness.machines.sim.errors import BootFailed
from harness.machines.sim.profiles import profile
from harness.machines.sim.selection import DiscoverySession, Retransmit, Selection

pytestmark = pytest.mark.unit


def offer(server: str, yiaddr: str = "0.0.0.0", vc: str | None = None, file: str = "") -> Offer:
    return Offer(msg_type=OFFER, xid=1, chaddr="52:54:00:00:00:01", src_ip=server, sport=67,
                 server_id=server, yiaddr=yiaddr, siaddr="0.0.0.0", file=file,
                 vendor_class=vc, boot_menu=(), discovery_control=None, boot_item=None,
                 netmask="255.255.255.0")


SITE = offer("10.0.0.1", yiaddr="10.0.0.50")
PROXY = offer("10.0.0.2", vc="PXEClient")


def run_silence(name: str) -> tuple[list[float], BootFailed]:
    """Drive a session that never gets an answer; return retransmission times and the failure."""
    s = DiscoverySession(profile(name))
    s.start(0.0)
    sends = [0.0]
    while True:
        now = s.next_deadline()
        try:
            step = s.on_timer(now)
        except BootFailed as exc:
            return sends, exc
        if isinstance(step, Retransmit):
            sends.append(now)


def test_pxe_rom_backs_off_4_8_16_32_then_gives_up() -> None:
    sends, failure = run_silence("pxe-bios")
    assert sends == [0.0, 4.0, 12.0, 28.0]
    assert failure.code == "PXE-E51"


def test_ipxe_retries_faster() -> None:
    sends, _ = run_silence("ipxe-bios")
    assert sends == [0.0, 1.0, 3.0, 7.0, 15.0]


def test_edk2_collects_offers_for_the_window_then_takes_address_plus_proxy() -> None:
    s = DiscoverySession(profile("edk2-x64"))
    s.start(0.0)
    assert s.on_offer(SITE, 0.01) is None
    assert s.on_offer(PROXY, 0.5) is None
    assert s.next_deadline() == pytest.approx(3.5)
    choice = s.on_timer(3.5)
    assert choice == Selection(SITE, PROXY)


def test_edk2_prefers_an_address_offer_that_carries_pxe_itself() -> None:
    both = offer("10.0.0.3", yiaddr="10.0.0.60", vc="PXEClient")
    s = DiscoverySession(profile("edk2-x64"))
    s.start(0.0)
    for o, t in ((SITE, 0.1), (PROXY, 0.2), (both, 0.3)):
        s.on_offer(o, t)
    assert s.on_timer(3.5) == Selection(both, both)


def test_late_proxy_offer_after_window_is_taken_at_once() -> None:
    s = DiscoverySession(profile("pxe-bios"))
    s.start(0.0)
    s.on_offer(SITE, 0.1)
    assert s.on_timer(3.5) is None  # window over, but no boot info: keep waiting
    assert s.on_offer(PROXY, 3.9) == Selection(SITE, PROXY)


def test_pxe_rom_without_proxy_fails_with_e53() -> None:
    s = DiscoverySession(profile("pxe-bios"))
    s.start(0.0)
    s.on_offer(SITE, 0.1)
    with pytest.raises(BootFailed) as exc:
        while True:
            s.on_timer(s.next_deadline())
    assert exc.value.code == "PXE-E53"


def test_ipxe_waits_for_proxy_then_goes_on_without() -> None:
    s = DiscoverySession(profile("ipxe-bios"))
    s.start(0.0)
    assert s.on_offer(SITE, 0.2) is None
    assert s.next_deadline() == pytest.approx(1.0)  # retransmit before the proxy wait ends
    assert isinstance(s.on_timer(1.0), Retransmit)
    assert s.next_deadline() == pytest.approx(2.2)
    assert s.on_timer(2.2) == Selection(SITE, None)


def test_ipxe_takes_address_and_proxy_as_soon_as_both_are_in() -> None:
    s = DiscoverySession(profile("ipxe-bios"))
    s.start(0.0)
    assert s.on_offer(PROXY, 0.1) is None
    assert s.on_offer(SITE, 0.2) == Selection(SITE, PROXY)


def test_offers_without_pxeclient_or_for_another_boot_kind_are_ignored() -> None:
    s = DiscoverySession(profile("edk2-x64"))
    s.start(0.0)
    s.on_offer(offer("10.0.0.9"), 0.1)  # yiaddr 0 without option 60: not a proxy (OFFER-3)
    s.on_offer(offer("10.0.0.8", vc="HTTPClient", file="http://x/y.efi"), 0.2)
    assert s.offers == []
    http = DiscoverySession(profile("edk2-http"))
    http.start(0.0)
    http.on_offer(SITE, 0.1)
    http.on_offer(PROXY, 0.2)
    url = offer("10.0.0.8", vc="HTTPClient", file="http://10.0.0.8/boot.efi")
    http.on_offer(url, 0.3)
    assert http.on_timer(3.5) == Selection(SITE, url)
