"""`flexlab demo`: the smallest real lab — site DHCP and one client — shown and reported.

It proves the host is ready for the sim tier: namespaces, a bridge, dnsmasq,
a real DHCP client, a capture and its decoding, and a teardown that leaves
nothing behind.
"""

from __future__ import annotations

import html
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.capture.decode import decode_pcap
from harness.capture.events import DhcpEvent
from harness.cliout import emit
from harness.components.dhcp_client import Lease, obtain_lease
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Host, HostLink, Lab, Segment, Topology

DEMO_TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(
        Host("dhcp", (HostLink("lan"),)),
        Host("client", (HostLink("lan", address=None),)),
    ),
)


@dataclass
class DemoResult:
    """What the demo saw, written to report.json."""

    lab_id: str
    lease: Lease
    events: list[DhcpEvent]
    pcap: Path
    seconds: float

    def exchange_ok(self) -> bool:
        """True when the capture holds DISCOVER, OFFER, REQUEST, ACK of one xid."""
        kinds = [e.msg_type for e in self.events]
        xids = {e.xid for e in self.events}
        return kinds[:4] == ["DISCOVER", "OFFER", "REQUEST", "ACK"] and len(xids) == 1


def run_lab(reports: Path) -> DemoResult:
    """Build the demo lab, lease an address, and decode the capture; always tear down."""
    started = time.monotonic()
    with Lab(DEMO_TOPOLOGY, reports_dir=reports / "labs") as lab:
        with SiteDhcp(lab, "dhcp", "lan"):
            lease = obtain_lease(lab, "client", "lan")
        pcap = lab.pcaps["lan"]
        lab_id = lab.id
    events = [e for e in decode_pcap(str(pcap)).dhcp if e.op in (1, 2)]
    return DemoResult(lab_id, lease, events, pcap, time.monotonic() - started)


def _table(result: DemoResult) -> Table:
    table = Table(title=f"DHCP on segment lan (lab {result.lab_id})")
    for col in ("frame", "t (ms)", "type", "xid", "chaddr", "from", "to", "yiaddr", "server"):
        table.add_column(col)
    t0 = result.events[0].time if result.events else 0.0
    for e in result.events:
        table.add_row(
            str(e.frame), f"{(e.time - t0) * 1000:.1f}", e.msg_type, f"{e.xid:#010x}", e.chaddr,
            f"{e.src_ip}:{e.sport}", f"{e.dst_ip}:{e.dport}", e.yiaddr, e.server_id or "",
        )
    return table


def write_report(result: DemoResult, directory: Path) -> tuple[Path, Path]:
    """Write report.json and a self-contained report.html; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    dhcp_rows: list[dict[str, Any]] = [
            {"frame": e.frame, "time": e.time, "type": e.msg_type, "xid": e.xid,
             "chaddr": e.chaddr, "src": f"{e.src_ip}:{e.sport}", "dst": f"{e.dst_ip}:{e.dport}",
             "yiaddr": e.yiaddr, "server_id": e.server_id}
            for e in result.events
    ]
    verdict = "pass" if result.exchange_ok() else "fail"
    data = {"lab_id": result.lab_id, "verdict": verdict, "seconds": round(result.seconds, 3),
            "lease": result.lease.__dict__, "pcap": str(result.pcap), "dhcp": dhcp_rows}
    json_path = directory / "report.json"
    json_path.write_text(json.dumps(data, indent=2))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            d["frame"], d["type"], f"{d['xid']:#010x}", d["chaddr"], d["src"], d["dst"],
            d["yiaddr"], d["server_id"] or "")) + "</tr>"
        for d in dhcp_rows
    )
    html_path = directory / "report.html"
    html_path.write_text(
        "<!doctype html><meta charset=utf-8><title>flexlab demo</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd}.pass{color:#080}.fail{color:#b00}</style>"
        f"<h1>flexlab demo — <span class={verdict}>{verdict.upper()}</span></h1>"
        f"<p>Lab <code>{result.lab_id}</code>: client leased <b>{result.lease.ip}"
        f"/{result.lease.prefixlen}</b> from {result.lease.server_id} in "
        f"{result.seconds:.2f} s. Capture: <a href='{html.escape(str(result.pcap.resolve()))}'>"
        f"{html.escape(result.pcap.name)}</a></p>"
        "<table><tr><th>frame<th>type<th>xid<th>chaddr<th>from<th>to<th>yiaddr<th>server</tr>"
        f"{rows}</table>"
    )
    return json_path, html_path


def run_demo(reports: str = "reports", as_json: bool = False) -> int:
    """The `flexlab demo --dhcp-only` command; returns the exit status. With ``as_json``
    the table and progress go to stderr and stdout holds one ``flexlab.demo/v1``
    document (docs/formats/demo.md)."""
    out = sys.stderr if as_json else sys.stdout
    # wide enough for the table when stdout is a log file (make demo in CI)
    console = Console(file=out) if out.isatty() else Console(file=out, width=150)
    base = Path(reports)
    with console.status("building lab: namespaces, bridge, site DHCP (dnsmasq), client"):
        result = run_lab(base)
    console.print(_table(result))
    json_path, html_path = write_report(result, base / "demo" / result.lab_id)
    ok = result.exchange_ok()
    console.print(
        f"[{'green' if ok else 'red'}]{'PASS' if ok else 'FAIL'}[/]: client got "
        f"{result.lease.ip}/{result.lease.prefixlen} from {result.lease.server_id} "
        f"in {result.seconds:.2f} s; lab {result.lab_id} torn down"
    )
    console.print(f"report: {html_path}  (data: {json_path}, capture: {result.pcap})")
    if as_json:
        report = json.loads(json_path.read_text())
        emit("demo", {"ok": ok, **report,
                      "reports": {"json": str(json_path), "html": str(html_path)}})
    return 0 if ok else 1
