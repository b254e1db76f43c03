"""The capture filter for one machine's boot traffic on the certification interface.

The pcap (taken by the harness's one tcpdump runner, :mod:`harness.lab.tcpdump`) goes into
a bundle that leaves the site, so it carries only what certifies the machine: frames to
or from its MAC, DHCP packets whose ``chaddr`` is its MAC (the site server's and the Boot
Proxy's broadcast replies, relayed copies), and this host's own boot services (TFTP
transfers, the HTTP boot server, the Control Plane) for the case where the machine is
behind a router.
"""

from __future__ import annotations

from harness.macs import mac_bytes, normalize_mac

DHCP_PORTS = "(udp port 67 or udp port 68 or udp port 4011)"


def chaddr_filter(mac: str) -> str:
    """BPF matching a BOOTP packet whose client hardware address is ``mac``.

    chaddr starts 28 bytes into the BOOTP payload, i.e. at byte 36 of the UDP header.
    MacError (a FlexlabError) when ``mac`` is not a MAC.
    """
    raw = mac_bytes(mac)
    return f"(udp[36:4] = 0x{raw[:4].hex()} and udp[40:2] = 0x{raw[4:].hex()})"


def boot_filter(macs: list[str], own_ip: str, tcp_ports: list[int]) -> str:
    """The capture filter for ``macs`` booting from this host at ``own_ip``."""
    parts = []
    for mac in macs:
        parts.append(f"ether host {normalize_mac(mac)}")
        parts.append(f"({DHCP_PORTS} and {chaddr_filter(mac)})")
    services = " or ".join(f"tcp port {p}" for p in tcp_ports)
    # TFTP answers from an ephemeral port: any UDP of ours except DHCP/DNS/NTP/mDNS
    udp = "(udp and not port 53 and not port 123 and not port 5353 and not " \
          f"{DHCP_PORTS})"
    parts.append(f"(host {own_ip} and ({services + ' or ' if services else ''}{udp}))")
    return " or ".join(parts)
