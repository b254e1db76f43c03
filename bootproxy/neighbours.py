"""Map a client IP back to its MAC, so TFTP and HTTP can apply the MAC filter (SILENT-5).

TFTP and HTTP requests carry only an IP. The proxy learns IP->MAC pairs from
DHCP requests that carry an address (4011 requests, ciaddr) and falls back to
the kernel's neighbour table (/proc/net/arp of the proxy's network namespace),
which holds the client because it ARPed for the proxy before sending.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["AddressBook"]

_PROC_ARP = Path("/proc/net/arp")


class AddressBook:
    """IP -> MAC knowledge: learned from DHCP first, kernel ARP table second."""

    def __init__(self, arp_table: Path = _PROC_ARP, limit: int = 65536) -> None:
        self.arp_table = arp_table
        self.limit = limit
        self._learned: dict[str, str] = {}

    def learn(self, ip: str, mac: str) -> None:
        """Remember that `ip` belongs to `mac` (bounded: the oldest entry goes first)."""
        if ip in ("0.0.0.0", "255.255.255.255"):
            return
        self._learned.pop(ip, None)
        self._learned[ip] = mac.lower()
        if len(self._learned) > self.limit:
            self._learned.pop(next(iter(self._learned)))

    def mac_for(self, ip: str) -> str | None:
        """The MAC for `ip`, or None when neither DHCP nor the kernel knows it."""
        mac = self._learned.get(ip)
        if mac is not None:
            return mac
        try:
            lines = self.arp_table.read_text().splitlines()[1:]
        except OSError:
            return None
        for line in lines:
            cols = line.split()
            # IP address, HW type, Flags, HW address, Mask, Device; flags 0x0 = incomplete
            if len(cols) >= 4 and cols[0] == ip and cols[2] != "0x0":
                return cols[3].lower()
        return None

    def ip_filter(self, served: Callable[[str], bool]) -> Callable[[str], bool]:
        """An `allow(ip)` hook for TFTP/HTTP: True only for IPs whose MAC is served."""

        def allow(ip: str) -> bool:
            mac = self.mac_for(ip)
            return mac is not None and served(mac)

        return allow
