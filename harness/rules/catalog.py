"""The rule catalogue: ids, levels, one-line statements and sources.

Ids and levels follow the project's CONFORMANCE.md; keep them stable, because
reports, scenario expectations and certification bundles cite them. Rules that
only describe clients or allow a behaviour (CLI-4, CLI-5, TIME-4, IPXE-3,
TFTP-8) are MAY: they report what they saw and never fail a run.
"""

from __future__ import annotations

from harness.rules.model import Level, Rule

M, S, Y = Level.MUST, Level.SHOULD, Level.MAY

_RULES: list[Rule] = [
    # CLI: what clients send
    Rule(
        "CLI-1",
        S,
        "A PXE DISCOVER carries option 60 PXEClient:Arch:NNNNN:UNDI:MMMmmm "
        "(32 bytes) with options 93, 94 and 97.",
        "PXE 2.1 fig 2-1; RFC 4578",
    ),
    Rule(
        "CLI-2",
        M,
        "Option 93 is a non-empty list of 16-bit codes; 94 is 3 bytes; 97 is "
        "17 bytes starting with type 0.",
        "RFC 4578 §2.1-2.3",
    ),
    Rule(
        "CLI-3",
        S,
        "Architecture codes are registered ones (0, 6, 7, 9, 10, 11, 15, 16, 18, "
        "19 ...) and option 60's Arch field agrees with option 93.",
        "IANA processor architecture registry; RFC 4578 erratum",
    ),
    Rule(
        "CLI-4",
        Y,
        'iPXE marks itself with option 77 "iPXE" (raw or RFC 3004 form) and option 175.',
        "ipxe.org/cfg/user-class",
    ),
    Rule(
        "CLI-5",
        Y,
        "UEFI HTTP boot clients send option 60 starting HTTPClient with an HTTP architecture code.",
        "EDK2 HttpBootDxe",
    ),
    # OFFER
    Rule(
        "OFFER-1",
        M,
        "A ProxyDHCP OFFER is op 2 with the magic cookie, echoes xid, htype, "
        "hlen, chaddr, carries option 53 OFFER, ends with 255, and echoes the flags or sets "
        "the broadcast bit.",
        "RFC 2131 §3, §4.1, table 3",
    ),
    Rule("OFFER-2", M, "A ProxyDHCP OFFER has yiaddr 0.0.0.0 and ciaddr 0.", "PXE 2.1 fig 2-1"),
    Rule(
        "OFFER-3",
        M,
        "A ProxyDHCP OFFER carries option 60 PXEClient (HTTPClient for HTTP boot clients).",
        "PXE 2.1 fig 2-3; iPXE; EDK2",
    ),
    Rule(
        "OFFER-4",
        M,
        "Option 54 is an address of the proxy reachable by the client (the address it sent from).",
        "RFC 2131 §4.1",
    ),
    Rule("OFFER-5", S, "Option 97 is echoed byte for byte when the client sent it.", "[impl]"),
    Rule(
        "OFFER-6",
        M,
        "Boot information has one of three shapes: 43.6 bit 3 + siaddr + file; "
        "a 43.9/43.10 menu; or none, leaving the client to ask on UDP 4011.",
        "PXE 2.1 table 2-1; iPXE dhcp_has_pxeopts; EDK2",
    ),
    Rule(
        "OFFER-7",
        M,
        "Option 43 is well formed: no sub-option overruns, ends with 255, at most "
        "255 bytes, 43.6 bits 4-7 zero.",
        "RFC 2132 §8.4; PXE 2.1 table 2-1",
    ),
    Rule(
        "OFFER-8",
        M,
        "file and sname are NUL-terminated; options 66/67 agree with them; option "
        "overload only when needed.",
        "RFC 2131 §2; RFC 2132 §9.3",
    ),
    Rule(
        "OFFER-9",
        M,
        "A ProxyDHCP OFFER carries none of options 50, 55, 57.",
        "RFC 2131 table 3; dnsmasq",
    ),
    Rule(
        "OFFER-10",
        M,
        "An OFFER goes from port 67 to port 68, broadcast when the broadcast "
        "flag is set or ciaddr is 0.",
        "RFC 2131 §4.1",
    ),
    Rule(
        "OFFER-11",
        S,
        "The DHCP payload is at least 300 bytes and at most 576 unless option 57 allowed more.",
        "[impl]; RFC 2131 §2",
    ),
    # ACK4011
    Rule(
        "ACK4011-1",
        M,
        "A DHCPREQUEST to UDP 4011 is answered with a DHCPACK from port 4011 to "
        "the request's source address and port.",
        "PXE 2.1 fig 2-1 step 6; iPXE; EDK2",
    ),
    Rule(
        "ACK4011-2",
        M,
        "The 4011 ACK echoes xid and chaddr and carries 60, 54, 97 (echoed) and "
        "boot data (siaddr + file, or 43.9).",
        "PXE 2.1 fig 2-3",
    ),
    Rule("ACK4011-3", M, "The 4011 ACK's yiaddr is 0 or the client's ciaddr.", "[impl]"),
    Rule(
        "ACK4011-4",
        M,
        "A boot-server ACK echoes 43.71 with the same type and layer.",
        "iPXE dhcp_pxebs_rx",
    ),
    # RELAY
    Rule(
        "RELAY-1",
        M,
        "When giaddr is set, the reply goes to giaddr port 67 with giaddr echoed "
        "and the broadcast flag set.",
        "RFC 2131 §4.1",
    ),
    Rule(
        "RELAY-2",
        M,
        "In relayed replies option 54 and siaddr name the proxy itself (routable "
        "from the client's subnet), not the relay.",
        "RFC 2131 §4.1",
    ),
    Rule(
        "RELAY-3",
        M,
        "Option 82 is echoed verbatim as the last option, or omitted; never added.",
        "RFC 3046 §2.0",
    ),
    # SILENT
    Rule(
        "SILENT-1",
        M,
        "A proxy does not answer clients whose option 60 is not PXEClient or "
        "HTTPClient (or a configured equivalent).",
        "dnsmasq; pixiecore; smee",
    ),
    Rule(
        "SILENT-2",
        M,
        "A proxy sends no ACK/NAK on port 67 to address requests and does not "
        "answer INFORM, RELEASE, DECLINE; only REQUESTs with 43.71.",
        "RFC 2131 §4.3.2",
    ),
    Rule(
        "SILENT-3",
        M,
        "A proxy does not answer a REQUEST whose option 54 names another server, on "
        "port 67 as on 4011.",
        "RFC 2131 §3.1 step 4",
    ),
    Rule("SILENT-4", M, "A proxy never sets a non-zero yiaddr on port 67.", "PXE 2.1 (OFFER-2)"),
    Rule(
        "SILENT-5",
        M,
        "With MAC filtering, a proxy sends nothing to a MAC it does not serve: "
        "no offer, no 4011 ACK, no TFTP file, no HTTP script.",
        "[impl]",
    ),
    # TIME
    Rule(
        "TIME-1",
        M,
        "The proxy answers every DISCOVER retransmission of a client it serves, "
        "including ones with the same xid.",
        "EDK2 mPxeDhcpTimeout; iPXE",
    ),
    Rule(
        "TIME-2",
        S,
        "A proxy OFFER follows its DISCOVER within 1 s.",
        "iPXE DHCP_DISC_PROXY_TIMEOUT_SEC",
    ),
    Rule("TIME-3", M, "A 4011 ACK follows its request within 1 s.", "iPXE; EDK2"),
    Rule(
        "TIME-4", Y, "Replies may be delayed by a configured amount.", "dnsmasq --dhcp-reply-delay"
    ),
    # IPXE
    Rule(
        "IPXE-1",
        M,
        "A client without the iPXE marker gets the iPXE binary for its "
        "architecture; a client with it gets a script URL, never the binary again.",
        "ipxe.org/cfg/user-class",
    ),
    Rule(
        "IPXE-2",
        M,
        "A stock iPXE is given a name it can fetch: a full http:// or tftp:// URL in file, "
        "or a relative name with siaddr set to a TFTP server that serves it.",
        "[impl]; iPXE resolves a relative file against tftp://siaddr/",
    ),
    Rule(
        "IPXE-3",
        Y,
        "The per-machine script is keyed on the MAC (colon form) or UUID.",
        "ipxe.org/cfg",
    ),
    Rule(
        "IPXE-4",
        M,
        "An HTTP boot offer has an absolute URL in file or option 67, with an IP "
        "literal host when the site gives no DNS server.",
        "EDK2 HttpBootDxe",
    ),
    Rule(
        "IPXE-5", M, "HTTP HEAD is answered as well as GET for boot files.", "EDK2 HttpBootClient"
    ),
    # TFTP
    Rule(
        "TFTP-1",
        M,
        "The server answers from a new port (the transfer id) and keeps it.",
        "RFC 1350 §4",
    ),
    Rule(
        "TFTP-2",
        M,
        "Blocks are numbered from 1, all full but the last, with a zero-length "
        "final block when the size is a multiple of blksize.",
        "RFC 1350; RFC 2348",
    ),
    Rule(
        "TFTP-3",
        M,
        "The OACK holds only options the client asked for and the server understands.",
        "RFC 2347",
    ),
    Rule(
        "TFTP-4", M, "After an OACK the server waits for ACK 0; after ERROR 8 it stops.", "RFC 2347"
    ),
    Rule(
        "TFTP-5",
        M,
        "Option values within limits: blksize 8-65464 and <= requested, timeout "
        "1-255 echoed, tsize exact, windowsize 1-65535 and <= requested.",
        "RFC 2348, 2349, 7440",
    ),
    Rule(
        "TFTP-6",
        M,
        "Errors use the right codes (1 not found, 2 access, 4 bad opcode or "
        "mode) and are not resent.",
        "RFC 1350 §5, §7",
    ),
    Rule(
        "TFTP-7",
        M,
        "The server retransmits only on timeout, never on a duplicate ACK, and caps its retries.",
        "RFC 1123 §4.2.3.1; RFC 7440 §6",
    ),
    Rule("TFTP-8", Y, "A client that never ACKs the last block is not an error.", "[impl]"),
    Rule(
        "TFTP-9",
        M,
        "Nothing outside the boot root is served (.., absolute system paths).",
        "[security]",
    ),
    # SITE
    Rule("SITE-1", M, "Exactly one ProxyDHCP answers a given MAC.", "KubeFlex guide, LAN"),
    Rule(
        "SITE-2",
        M,
        "The site DHCP server does not send option 60 PXEClient unless it is "
        "itself the boot server.",
        "Microsoft KB 259670; PXE 2.1 fig 2-1",
    ),
    Rule(
        "SITE-3",
        M,
        "A PXE client receives an address offer and, if it is served, a proxy "
        "offer, within the time limits.",
        "KubeFlex guide",
    ),
    Rule(
        "SITE-4",
        M,
        "All nodes of one cluster are in the same layer-2 domain: their DHCP requests are "
        "heard directly on one segment.",
        "KubeFlex guide, LAN: all nodes in the same cluster will be in the same layer-2 domain",
    ),
    # WAN, DNS, NTP: the site around the boot LAN; judged from lab state, not a LAN capture
    Rule(
        "WAN-1",
        M,
        "Nothing on the Control Plane's side opens a connection into the site; every "
        "site-to-Control Plane flow is outbound TCP to 80, 443 or 8888, or inside the "
        "private WAN tunnel.",
        "KubeFlex guide: outbound ports; hybrid private WAN",
    ),
    Rule(
        "WAN-2",
        M,
        "The Boot Proxy and the nodes work through NAT and survive a WAN outage: known "
        "machines boot from the last good state, unknown ones are refused.",
        "KubeFlex guide: NAT on the WAN",
    ),
    Rule(
        "WAN-3",
        M,
        "Every exchange with the Control Plane across the WAN is TLS, verified against the "
        "CA the client was given.",
        "KubeFlex guide: certificates, root CA / internal CA",
    ),
    Rule(
        "DNS-1",
        S,
        "Each node's hostname is unique and, once Ready, resolves in the site's DNS, placed "
        "there by an RFC 2136 update; a refused update is reported.",
        "KubeFlex guide: RFC 2136, unique meaningful hostnames",
    ),
    Rule(
        "NTP-1",
        M,
        "A Ready node's clock is within 1 s of the site's time source.",
        "KubeFlex guide: clocks within 1 second",
    ),
]

RULES: dict[str, Rule] = {r.id: r for r in _RULES}


def rule(rule_id: str) -> Rule:
    """The catalogue entry for ``rule_id`` (KeyError names the id)."""
    return RULES[rule_id]
