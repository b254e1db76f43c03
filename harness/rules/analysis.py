"""Group decoded events into per-client exchanges that rules can judge.

A reply is matched to the latest earlier request with the same (chaddr, xid),
whatever ports it used, so that a reply sent to the wrong port is still judged
as the answer it was meant to be. Servers are classified as proxies (declared,
or inferred: an OFFER with yiaddr 0, or a reply on UDP 4011 from a server that hands
out no addresses) or as address servers (an OFFER/ACK with a non-zero yiaddr); an
address server that also answers on 4011 is a combined DHCP+PXE server, not a proxy.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from harness.capture.events import Capture, DhcpEvent, HttpEvent, TftpEvent
from harness.rules.context import RuleContext

ZERO = "0.0.0.0"


def has_boot_data(r: DhcpEvent) -> bool:
    """The reply tells a PXE client where to boot: option 60 PXEClient, PXE sub-options
    in 43, or a boot file (``file`` or option 67)."""
    return ((r.vendor_class or "").startswith("PXEClient") or bool(r.file or r.bootfile_opt)
            or bool(r.pxe is not None and r.pxe.suboptions))


@dataclass
class Exchange:
    """One client request and the replies matched to it."""

    request: DhcpEvent
    replies: list[DhcpEvent] = field(default_factory=list)

    @property
    def to_4011(self) -> bool:
        """The request went to the boot-server port."""
        return self.request.dport == 4011

    @property
    def relayed(self) -> bool:
        """The request came through a relay."""
        return self.request.giaddr != ZERO


def _answers(reply: TftpEvent, request: TftpEvent) -> bool:
    """Could ``reply`` (a server's first packet) answer ``request``? An OACK names only
    options the request asked for (RFC 2347); anything else could answer any request."""
    if reply.op_name != "OACK":
        return True
    asked = {name.lower() for name, _ in request.options}
    return all(name.lower() in asked for name, _ in reply.options)


def _takes_over(ev: TftpEvent, old: TftpTransfer, ended_at: float,
                pending: list[TftpTransfer]) -> TftpTransfer | None:
    """The request, made after the client ended ``old``, that server packet ``ev`` on
    ``old``'s port answers; None when ``ev`` repeats what ``old`` sent (a late resend,
    TFTP-4's to judge) or no such request waits."""
    if any(e.opcode == ev.opcode and e.block == ev.block and e.options == ev.options
           for e in old.from_server()):
        return None
    return next((t for t in pending
                 if t.request.time >= ended_at and _answers(ev, t.request)), None)


@dataclass
class TftpTransfer:
    """One TFTP transfer: the request and every packet of the conversation."""

    request: TftpEvent
    events: list[TftpEvent] = field(default_factory=list)

    @property
    def client(self) -> tuple[str, int]:
        """The client's (ip, port)."""
        return self.request.src_ip, self.request.sport

    @property
    def server_ip(self) -> str:
        """The address the request was sent to."""
        return self.request.dst_ip

    def from_server(self) -> list[TftpEvent]:
        """Packets the server sent to the client."""
        ip, port = self.client
        return [e for e in self.events if e.dst_ip == ip and e.dport == port]

    def from_client(self) -> list[TftpEvent]:
        """Packets the client sent after its request."""
        ip, port = self.client
        return [e for e in self.events if e.src_ip == ip and e.sport == port]


@dataclass
class HttpExchange:
    """An HTTP request and the first response on the same TCP connection after it."""

    request: HttpEvent
    response: HttpEvent | None = None


@dataclass
class ClientView:
    """Everything one client (by MAC) did: DHCP exchanges, TFTP transfers, HTTP requests.

    Scenario expectations and ladder diagrams read this instead of raw events.
    """

    mac: str
    exchanges: list[Exchange] = field(default_factory=list)
    transfers: list[TftpTransfer] = field(default_factory=list)
    http: list[HttpExchange] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)


class Analysis:
    """Indexes over one capture, built once and shared by all rules."""

    def __init__(self, capture: Capture, context: RuleContext) -> None:
        self.capture = capture
        self.ctx = context
        self.end_time = self._end_time()
        self.requests = [e for e in capture.dhcp if e.op == 1]
        self.replies = [e for e in capture.dhcp if e.op == 2]
        # per-client indexes: rules that ask "this client's DISCOVERs / replies" for every
        # client scanned the whole capture each time, O(clients x packets): the judge of a
        # 5,000-machine storm ran for many minutes in TIME-1 and SITE-3 alone
        self._discovers = [q for q in self.requests if q.msg_type == "DISCOVER"]
        self._discovers_by_mac: dict[str, list[DhcpEvent]] = defaultdict(list)
        for q in self._discovers:
            self._discovers_by_mac[q.chaddr].append(q)
        self._replies_by_mac: dict[str, list[DhcpEvent]] = defaultdict(list)
        for r in self.replies:
            self._replies_by_mac[r.chaddr].append(r)
        self.exchanges: list[Exchange] = []
        self.unmatched_replies: list[DhcpEvent] = []
        self.reply_exchange: dict[int, Exchange] = {}
        self._match_replies()
        self.proxies = self._proxies()
        self.address_servers = self._address_servers()
        self.combined_servers = self._combined_servers()
        self.ip_to_mac = self._ip_to_mac()
        self.transfers = self._tftp_transfers()
        self.http = self._http_exchanges()

    # -- construction ------------------------------------------------------
    def _end_time(self) -> float:
        times = [e.time for e in self.capture.dhcp]
        times += [e.time for e in self.capture.tftp] + [e.time for e in self.capture.http]
        return max(times) if times else 0.0

    def _match_replies(self) -> None:
        latest: dict[tuple[str, int], Exchange] = {}
        for ev in self.capture.dhcp:
            key = (ev.chaddr, ev.xid)
            if ev.op == 1:
                ex = Exchange(ev)
                self.exchanges.append(ex)
                latest[key] = ex
            elif ev.op == 2:
                found = latest.get(key)
                if found is None:
                    self.unmatched_replies.append(ev)
                else:
                    found.replies.append(ev)
                    self.reply_exchange[ev.frame] = found

    def _proxies(self) -> frozenset[str]:
        """Declared proxies, or the servers the capture shows to be ProxyDHCPs.

        CONFORMANCE.md's SITE preamble: an OFFER with yiaddr 0 comes from a ProxyDHCP;
        a server that hands out addresses is an address server, and if it also answers
        on 4011 (or carries boot data) it is a combined DHCP+PXE server — the classic
        non-proxy set-up, judged by SITE-2, never by a proxy's OFFER/SILENT rules.
        Only servers declared as proxies are judged as proxies whatever they send. An
        offer of no address counts with or without option 60: it can only be a
        ProxyDHCP's, and OFFER-3 then names the missing 60.
        """
        if self.ctx.proxies:
            return self.ctx.proxies
        proxy_offers = {self.server_of(r) for r in self.replies
                        if r.msg_type == "OFFER" and r.yiaddr == ZERO}
        addressing = {self.server_of(r) for r in self.replies
                      if r.msg_type in ("OFFER", "ACK") and r.yiaddr != ZERO and r.sport == 67}
        boot_servers = {r.src_ip for r in self.replies if r.sport == 4011 or r.dport == 4011}
        return frozenset((proxy_offers | (boot_servers - addressing)) - self.ctx.site_dhcp)

    def _address_servers(self) -> frozenset[str]:
        found = {
            self.server_of(r)
            for r in self.replies
            if r.msg_type in ("OFFER", "ACK") and r.yiaddr != ZERO and r.sport == 67
        }
        return frozenset((found - self.ctx.proxies) | self.ctx.site_dhcp)

    def _combined_servers(self) -> frozenset[str]:
        """Address servers that are also PXE boot servers (the classic non-proxy set-up):
        their address offers carry boot data (option 60 PXEClient, 43, a boot file) or
        they answer on UDP 4011. SITE-2's exception covers them; no proxy rule judges them."""
        boot = {self.server_of(r) for r in self.replies
                if r.msg_type in ("OFFER", "ACK") and r.yiaddr != ZERO and has_boot_data(r)}
        boot |= {r.src_ip for r in self.replies if r.sport == 4011}
        return frozenset((boot & self.address_servers) - self.proxies)

    def _ip_to_mac(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for r in self.replies:
            if r.msg_type == "ACK" and r.yiaddr != ZERO:
                out.setdefault(r.yiaddr, r.chaddr)
        for q in self.requests:
            if q.ciaddr != ZERO:
                out.setdefault(q.ciaddr, q.chaddr)
            if q.requested_ip:
                out.setdefault(q.requested_ip, q.chaddr)
        pairs = [(e.src_ip, e.src_mac) for e in self.capture.tftp]
        pairs += [(e.src_ip, e.src_mac) for e in self.capture.http]
        for ip, mac in pairs:
            if ip not in self.proxies and mac:
                out.setdefault(ip, mac)
        return out

    def _tftp_transfers(self) -> list[TftpTransfer]:
        """Group TFTP packets into transfers by the full pair of transfer ids.

        A client that resends its RRQ from the same port gets one answer per request,
        each from a new server port (RFC 1350 §4); keying on the client's port alone
        would merge those into one transfer that seems to change its server port.
        So each server port binds to the oldest request of that client it has not
        answered yet. A server packet from an unknown port with no request waiting
        joins the client's latest transfer: that is the port change TFTP-1 catches.

        Once the client has ended a transfer with an ERROR (EDK2's size probe) and asked
        again from the same port, the kernel may give the new answer the old server port:
        a server packet there that answers the new request, and is not one the old
        transfer already sent, belongs to the new one (`_takes_over`).
        """
        out: list[TftpTransfer] = []
        waiting: dict[tuple[str, int], list[TftpTransfer]] = defaultdict(list)
        latest: dict[tuple[str, int], TftpTransfer] = {}
        bound: dict[tuple[str, int, int], TftpTransfer] = {}
        # transfers the client ended with an ERROR, and when
        ended: dict[int, float] = {}
        for ev in self.capture.tftp:
            # a read or write request starts a transfer; so does anything else sent to
            # port 69 by a port that is not in a transfer yet (an illegal operation the
            # server must refuse with ERROR 4, TFTP-6); a client of a server that wrongly
            # answers from 69 keeps talking to 69 inside its transfer (TFTP-1's case)
            bound_client = (ev.src_ip, ev.sport) in latest
            if ev.dport == 69 and (ev.opcode in (1, 2) or not bound_client):
                t = TftpTransfer(ev)
                out.append(t)
                waiting[(ev.src_ip, ev.sport)].append(t)
                latest[(ev.src_ip, ev.sport)] = t
                continue
            to_client = (ev.dst_ip, ev.dport, ev.sport)
            from_client = (ev.src_ip, ev.sport, ev.dport)
            found = bound.get(to_client) or bound.get(from_client)
            if found is not None and to_client in bound and id(found) in ended:
                newer = _takes_over(ev, found, ended[id(found)],
                                    waiting[(ev.dst_ip, ev.dport)])
                if newer is not None:
                    waiting[(ev.dst_ip, ev.dport)].remove(newer)
                    bound[to_client] = found = newer
            if found is None and (ev.dst_ip, ev.dport) in latest:
                pending = waiting[(ev.dst_ip, ev.dport)]
                if pending:
                    # a request that was never answered (dropped under load) must not
                    # capture the answer to a later one: prefer the oldest request
                    # whose options the reply fits
                    fits = [t for t in pending if _answers(ev, t.request)]
                    found = fits[0] if fits else pending[0]
                    pending.remove(found)
                else:
                    found = latest[(ev.dst_ip, ev.dport)]
                bound[to_client] = found
            if found is not None:
                found.events.append(ev)
                if ev.op_name == "ERROR" and from_client in bound and id(found) not in ended:
                    ended[id(found)] = ev.time
        return out

    def _http_exchanges(self) -> list[HttpExchange]:
        out: list[HttpExchange] = []
        open_: dict[tuple[str, int, str, int], list[HttpExchange]] = defaultdict(list)
        for ev in self.capture.http:
            if ev.kind == "request":
                ex = HttpExchange(ev)
                out.append(ex)
                open_[(ev.src_ip, ev.sport, ev.dst_ip, ev.dport)].append(ex)
            else:
                waiting = open_.get((ev.dst_ip, ev.dport, ev.src_ip, ev.sport))
                if waiting:
                    waiting.pop(0).response = ev
        return out

    # -- queries -----------------------------------------------------------
    def clients(self) -> dict[str, ClientView]:
        """Per-client view, keyed by colon MAC, in order of first appearance."""
        out: dict[str, ClientView] = {}
        for ex in self.exchanges:
            out.setdefault(ex.request.chaddr, ClientView(ex.request.chaddr)).exchanges.append(ex)
        for ip, mac in self.ip_to_mac.items():
            out.setdefault(mac, ClientView(mac)).addresses.add(ip)
        for t in self.transfers:
            tmac = self.mac_of(t.request.src_ip)
            if tmac is not None:
                out.setdefault(tmac, ClientView(tmac)).transfers.append(t)
        for h in self.http:
            hmac = self.mac_of(h.request.src_ip)
            if hmac is not None:
                out.setdefault(hmac, ClientView(hmac)).http.append(h)
        return out

    def is_proxy(self, ip: str) -> bool:
        """The address belongs to a Boot Proxy under test."""
        return ip in self.proxies

    @staticmethod
    def server_of(r: DhcpEvent) -> str:
        """Who sent a reply: option 54 when present, else the source address.

        On the client side of a relay every reply comes from the relay's address;
        option 54 still names the server that made it.
        """
        return r.server_id if r.server_id and r.server_id != ZERO else r.src_ip

    def proxy_of(self, r: DhcpEvent) -> str:
        """The proxy a reply belongs to (its option 54 if that is a proxy, else its source)."""
        sid = self.server_of(r)
        return sid if self.is_proxy(sid) else r.src_ip

    def proxy_replies(self) -> list[DhcpEvent]:
        """Every DHCP reply made by a proxy under test (directly or through a relay)."""
        return [
            r for r in self.replies if self.is_proxy(self.server_of(r)) or self.is_proxy(r.src_ip)
        ]

    def proxy_offers(self) -> list[DhcpEvent]:
        """OFFERs sent by a proxy under test."""
        return [r for r in self.proxy_replies() if r.msg_type == "OFFER"]

    def request_of(self, reply: DhcpEvent) -> DhcpEvent | None:
        """The request a reply answers (latest earlier request with its chaddr and xid)."""
        ex = self.reply_exchange.get(reply.frame)
        return ex.request if ex else None

    def served(self, proxy: str, mac: str, at: float | None = None) -> bool | None:
        """Whether ``proxy`` is configured to serve ``mac`` (at capture time ``at``, for a
        MAC the Control Plane assigned during the capture); None when not known."""
        macs = self.ctx.serves.get(proxy)
        if macs is None:
            return None
        return mac.lower() in macs and not self.assigned_after(mac, at)

    def assigned_after(self, mac: str, at: float | None) -> bool:
        """True when ``mac`` was not yet assigned at capture time ``at``."""
        since = self.ctx.served_from.get(mac.lower())
        return since is not None and at is not None and at < since

    def served_by_any(self, mac: str) -> bool | None:
        """Whether any proxy is configured to serve ``mac``; None when no filter is known."""
        if not self.ctx.serves:
            return None
        return any(mac.lower() in macs for macs in self.ctx.serves.values())

    def mac_of(self, ip: str) -> str | None:
        """The MAC of the client using ``ip``, learnt from DHCP or Ethernet."""
        return self.ip_to_mac.get(ip)

    def discovers(self) -> list[DhcpEvent]:
        """DHCPDISCOVERs (direct or relayed), in capture order."""
        return list(self._discovers)

    def discovers_of(self, mac: str) -> list[DhcpEvent]:
        """The DHCPDISCOVERs of client ``mac`` (its chaddr), in capture order."""
        return list(self._discovers_by_mac.get(mac, ()))

    def replies_of(self, mac: str) -> list[DhcpEvent]:
        """Every DHCP reply addressed to client ``mac`` (its chaddr), in capture order."""
        return list(self._replies_by_mac.get(mac, ()))

    def scaled(self, seconds: float) -> float:
        """A timing limit scaled by the context's factor."""
        return seconds * self.ctx.time_scale
