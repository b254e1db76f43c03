"""Conformance rules for Boot Proxies, judged on decoded packet captures.

Use::

    from harness.capture import decode_pcap
    from harness.rules import RuleContext, check_capture

    report = check_capture(decode_pcap("lan.pcap"),
                           RuleContext(proxies=frozenset({"10.0.0.2"}),
                                       serves={"10.0.0.2": frozenset({"52:54:00:00:00:11"})}))
    report.ok, report.failures(), report.for_rule("OFFER-2")

Every rule yields FAIL findings (one per violation, with frames, client and
server), or one PASS (how much it checked), or one NOT_APPLICABLE (why not).

One defect, one rule. Where CONFORMANCE.md states the same requirement twice,
one rule owns each case so that a defective responder is flagged once:

- yiaddr in an OFFER: OFFER-2; in other port-67 replies: SILENT-4.
- an ACK/NAK to an address REQUEST: SILENT-2 (not SILENT-4); when that REQUEST's
  option 54 names another server, SILENT-3 too (CONFORMANCE.md judges each on its own).
- answering INFORM/RELEASE/DECLINE: SILENT-2 (not SILENT-1).
- giaddr echo and the reply's destination when relayed: RELAY-1 (not OFFER-1/10);
  option 54 in relayed replies: RELAY-2 (not OFFER-4).
- malformed option 43: OFFER-7 (OFFER-6 does not judge that packet).
- OACK options not asked for: TFTP-3 (TFTP-5 only judges requested ones).
- a path outside the boot root served: TFTP-9; refused with the wrong ERROR code:
  TFTP-6 (which owns every refusal: 1 missing, 2 ``..``, 4 bad mode/opcode).
- a relative boot file for iPXE: IPXE-2 when siaddr is 0 or its TFTP read fails; an
  offer of shape (a) without siaddr also breaks OFFER-6 (two requirements, two rules).
- a proxy silent to a client it serves: SITE-3; silent to a retransmission
  after answering before: TIME-1; an unanswered 4011 request: ACK4011-1;
  a late one: TIME-3.

Servers are identified by option 54 (falling back to the source address), so
captures on the client side of a relay attribute replies correctly. Without a
context, servers are classified as CONFORMANCE.md's SITE preamble says: an OFFER
with yiaddr 0 makes a proxy; an OFFER/ACK with an address makes an address server,
and one that also carries boot data or answers on 4011 is a combined DHCP+PXE server,
judged by SITE-2 and never by a proxy's rules (``Report.servers`` says who was what).
Servers declared as proxies are judged as proxies whatever they send. Rules needing
the MAC filter (SILENT-5, the served half of SITE-3) say not-applicable without it.
"""

from harness.rules.analysis import Analysis, ClientView
from harness.rules.catalog import RULES, rule
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture
from harness.rules.errors import RulesError
from harness.rules.model import Finding, Level, Report, Rule, Verdict

__all__ = [
    "RULES",
    "Analysis",
    "ClientView",
    "Finding",
    "Level",
    "Report",
    "Rule",
    "RuleContext",
    "RulesError",
    "Verdict",
    "check_capture",
    "rule",
]
