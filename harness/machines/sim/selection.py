"""DHCP discovery as the firmware runs it: retransmissions and offer choice, without I/O.

The session is fed the time (firmware seconds) and the offers it receives, and
says what to do next, so the schedules and the choice are unit-tested with a
fake clock and the asyncio driver in :mod:`harness.machines.sim.machine` stays thin.

Two policies exist in real firmware:

- *collect* (PXE 2.1 ROMs, EDK2): gather offers for ``collect_window`` after
  the first DISCOVER, then prefer an address offer that itself carries PXE
  boot information, else the first address offer plus the first ProxyDHCP
  offer; without boot information keep retransmitting, and give up with
  PXE-E53 (offers, but no boot file) or PXE-E51 (no offers) at the end.
- *first offer* (iPXE): take the first address offer at once if a ProxyDHCP
  offer is in too, otherwise wait ``proxy_wait`` more for one, then go on
  with whatever it has.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.machines.sim.dhcp import OFFER, Offer
from harness.machines.sim.errors import BootFailed
from harness.machines.sim.profiles import FirmwareProfile


@dataclass(frozen=True)
class Selection:
    """The chosen offers: ``address`` gives the lease, ``boot`` the boot information (or None)."""

    address: Offer
    boot: Offer | None


@dataclass(frozen=True)
class Retransmit:
    """Send the DISCOVER again (same xid, ``secs`` grows)."""

    attempt: int


class DiscoverySession:
    """Retransmission schedule and offer selection for one DHCP discovery."""

    def __init__(self, profile: FirmwareProfile) -> None:
        self.profile = profile
        self.offers: list[Offer] = []
        self.started: float | None = None
        self.attempt = 0
        self.last_send = 0.0
        self.first_address_at: float | None = None
        self.window_over = False

    # -- what the driver calls ---------------------------------------------------
    def start(self, now: float) -> None:
        """The first DISCOVER went out at ``now``."""
        self.started = now
        self.last_send = now
        self.attempt = 0

    def next_deadline(self) -> float:
        """When :meth:`on_timer` must be called next (absolute firmware time)."""
        assert self.started is not None, "start() first"
        deadlines = [self.last_send + self.profile.discover_timeouts[self.attempt]]
        window = self.profile.collect_window
        if window is not None and not self.window_over:
            deadlines.append(self.started + window)
        if self.profile.proxy_wait is not None and self.first_address_at is not None:
            deadlines.append(self.first_address_at + self.profile.proxy_wait)
        return min(deadlines)

    def on_offer(self, offer: Offer, now: float) -> Selection | None:
        """Record an offer; return a selection if the firmware would decide now."""
        if offer.msg_type != OFFER or not self._acceptable(offer):
            return None
        self.offers.append(offer)
        if not offer.is_proxy and self.first_address_at is None:
            self.first_address_at = now
        if self.profile.proxy_wait is not None:
            choice = self._choose()
            if choice is not None and choice.boot is not None:
                return choice
            return None
        assert self.started is not None
        if self.profile.collect_window is not None and \
                now < self.started + self.profile.collect_window:
            return None
        choice = self._choose()
        return choice if choice is not None and choice.boot is not None else None

    def on_timer(self, now: float) -> Selection | Retransmit | None:
        """A deadline passed: choose, retransmit (or None: keep waiting), or raise BootFailed."""
        assert self.started is not None, "start() first"
        window = self.profile.collect_window
        if window is not None and now >= self.started + window - 1e-9:
            self.window_over = True
        choice = self._choose()
        if choice is not None:
            if choice.boot is not None:
                return choice
            wait = self.profile.proxy_wait
            if wait is not None and self.first_address_at is not None \
                    and now >= self.first_address_at + wait - 1e-9:
                return choice  # iPXE goes on without ProxyDHCP
        if now < self.last_send + self.profile.discover_timeouts[self.attempt] - 1e-9:
            return None  # only an intermediate deadline (collect window) passed
        self.attempt += 1
        if self.attempt >= len(self.profile.discover_timeouts):
            if any(not o.is_proxy for o in self.offers):
                raise BootFailed("PXE-E53", "no boot filename received")
            raise BootFailed("PXE-E51", "no DHCP or proxyDHCP offers were received")
        self.last_send = now
        return Retransmit(self.attempt)

    # -- the choice ----------------------------------------------------------------
    def _acceptable(self, offer: Offer) -> bool:
        if offer.is_proxy:
            # a ProxyDHCP offer without option 60 PXEClient/HTTPClient is ignored (OFFER-3)
            if self.profile.chain == "http":
                return (offer.vendor_class or "").startswith("HTTPClient")
            return offer.is_pxe and not (offer.vendor_class or "").startswith("HTTPClient")
        return True

    def _has_boot(self, offer: Offer) -> bool:
        if self.profile.chain == "http":
            return (offer.vendor_class or "").startswith("HTTPClient") and "://" in offer.file
        return offer.is_pxe

    def _choose(self) -> Selection | None:
        address = [o for o in self.offers if not o.is_proxy]
        if not address:
            return None
        for o in address:
            if self._has_boot(o):
                return Selection(o, o)
        proxies = [o for o in self.offers if o.is_proxy and self._has_boot(o)]
        return Selection(address[0], proxies[0] if proxies else None)
