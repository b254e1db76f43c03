"""What crossed the WAN router, read back from its nftables flow sets.

The router's ruleset (:meth:`WanRouterConfig.nft_ruleset`) adds every forwarded or
refused packet's flow key (interface, source, destination, protocol, port) to a dynamic
set whose elements count packets. Reading ``nft -j list table`` back gives one
:class:`ObservedFlow` per key: who talked to whom on which port, in which direction,
on the plain WAN or inside the tunnel, and whether the router let it through. Rule
WAN-1 and the report read these.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from harness.wan.config import ROUTER, WanAddressing
from harness.wanflow import RouterFlow

# set name -> (direction, verdict)
FLOW_SETS = {"out_accepted": ("out", "accepted"), "out_dropped": ("out", "dropped"),
             "in_dropped": ("in", "dropped")}


@dataclass(frozen=True)
class ObservedFlow(RouterFlow):
    """One flow key seen by the router, with its packet and byte counts.

    The fields are :class:`harness.wanflow.RouterFlow`'s (``path`` ``tunnel`` is inside
    WireGuard); addresses are as the router saw them before NAT (``src`` of an ``out``
    flow is the site host). For ``out`` flows ``packets`` counts the site's packets only
    (replies are counted together in the ``in_replies`` counter).
    """

    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for run.json."""
        return asdict(self)


def _path(iface: str, a: WanAddressing) -> str:
    if iface == a.wan_iface:
        return "wan"
    if iface == a.wg_iface(ROUTER):
        return "tunnel"
    return iface


def parse_flows(nft_json: str, a: WanAddressing) -> list[ObservedFlow]:
    """Flows from ``nft -j list table inet flexlab_wan`` output, sorted for stable reports."""
    flows = []
    for item in json.loads(nft_json).get("nftables", []):
        nft_set = item.get("set")
        if not nft_set or nft_set.get("name") not in FLOW_SETS:
            continue
        direction, verdict = FLOW_SETS[nft_set["name"]]
        for elem in nft_set.get("elem", []):
            body = elem.get("elem", elem) if isinstance(elem, dict) else {"val": elem}
            iface, src, dst, proto, dport = body["val"]["concat"]
            counter = body.get("counter") or {}
            flows.append(ObservedFlow(
                src=src, dst=dst, protocol=str(proto), dport=int(dport),
                direction=direction, path=_path(iface, a), verdict=verdict,
                packets=int(counter.get("packets", 0)), bytes=int(counter.get("bytes", 0))))
    return sorted(flows, key=lambda f: (f.direction, f.verdict, f.path, f.dport, f.src, f.dst))


def parse_counters(nft_json: str) -> dict[str, int]:
    """Packet count of every named counter (``out_wan_tcp_443``, ``in_dropped``, …)."""
    counters = {}
    for item in json.loads(nft_json).get("nftables", []):
        counter = item.get("counter")
        if counter and "name" in counter:
            counters[counter["name"]] = int(counter.get("packets", 0))
    return counters
