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
- a proxy silent to a client it serves: SITE-3; silent to a retransmission
  after answering before: TIME-1; an unanswered 4011 request: ACK4011-1;
  a late one: TIME-3.

Servers are identified by option 54 (falling back to the source address), so
captures on the client side of a relay attribute replies correctly. Without a
context, proxies are inferred (OFFER with yiaddr 0, or replies on 4011) and
rules needing the MAC filter (SILENT-5, the served half of SITE-3) say
not-applicable.
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
