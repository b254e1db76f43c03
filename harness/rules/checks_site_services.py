"""WAN-*, DNS-1, NTP-1: the site around the boot LAN.

These rules are about flows across the WAN router, TLS handshakes, DNS records
and node clocks: facts a boot-LAN capture does not hold. Until the whole-site
lab hands them to the rules, each says plainly that it was not applied, and
why; "not applicable" is never read as "holds" (a scenario naming one of these
in ``expect.rules`` fails with "never applied").
"""

from __future__ import annotations

from harness.rules.analysis import Analysis
from harness.rules.judge import Judge, check

_WHY = {
    "WAN-1": "needs the WAN router's observed flows; a boot-LAN capture does not show them",
    "WAN-2": "needs a run with NAT on the WAN and a WAN outage; not part of this capture",
    "WAN-3": "needs the TLS outcome of every Control Plane hop across the WAN",
    "DNS-1": "needs the site DNS zone and the nodes' hostnames after Ready",
    "NTP-1": "needs each Ready node's clock offset from the site's time source",
}


def _register(rule_id: str) -> None:
    def run(an: Analysis, j: Judge) -> None:
        j.not_applicable(_WHY[rule_id])

    run.__doc__ = f"{rule_id}: judged from lab state, not from a LAN capture."
    check(rule_id, unit="item")(run)


for _rule_id in _WHY:
    _register(_rule_id)
