"""/metrics of a real `python -m bootproxy` process, read with Prometheus' own text parser.

Every family the proxy documents is on the page with its type; one DHCP exchange, one
TFTP read (and one of a missing file), and one HTTP GET move exactly the series they
should; label values survive escaping; every log line the process writes has the shared
schema (ts, level, component, event, msg).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bootproxy.app import VERSION
from bootproxy.dhcp.codec import DhcpPacket, MessageType, Opt, encode, parse
from bootproxy.logs import HEAD
from bootproxy.metrics import FAMILIES, LATENCY_BUCKETS, Registry
from bootproxy.tftp import TransferError, fetch
from harness.components.bootproxy_process import BootProxyProcess
from harness.wait import wait_until

pytestmark = [pytest.mark.unit, pytest.mark.timeout(90)]

MAC = "52:54:00:aa:bb:cd"
EFI = b"E" * 3000

# family name as the parser reports it (a counter's without _total) -> type
EXPECTED_TYPES = {
    "bootproxy_dhcp_offers": "counter",
    "bootproxy_dhcp_acks": "counter",
    "bootproxy_dhcp_drops": "counter",
    "bootproxy_dhcp_received": "counter",
    "bootproxy_dhcp_reply_latency_seconds": "histogram",
    "bootproxy_conflicts": "counter",
    "bootproxy_cp_sync_errors": "counter",
    "bootproxy_heartbeats": "counter",
    "bootproxy_cp_tls_failures": "counter",
    "bootproxy_cp_tls_ok": "gauge",
    "bootproxy_assignments": "gauge",
    "bootproxy_last_sync_timestamp_seconds": "gauge",
    "bootproxy_build_info": "gauge",
    "bootproxy_tftp_bytes": "counter",
    "bootproxy_tftp_transfers_started": "counter",
    "bootproxy_tftp_transfers": "counter",
    "bootproxy_tftp_errors": "counter",
    "bootproxy_tftp_ack_polls": "counter",
    "bootproxy_tftp_transfers_in_flight": "gauge",
    "bootproxy_http_bytes": "counter",
    "bootproxy_http_requests": "counter",
    "bootproxy_http_responses": "counter",
    "bootproxy_http_scripts": "counter",
    "bootproxy_http_refused": "counter",
    "bootproxy_http_connections_in_flight": "gauge",
}


class Page:
    """One scrape, parsed by prometheus_client's parser (the format Prometheus reads)."""

    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.samples: list[Sample] = []
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            self.samples += family.samples

    def get(self, name: str, **labels: str) -> float | None:
        """The sample `name{labels}` (labels compared exactly), or None."""
        for s in self.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
        return None

    def value(self, name: str, **labels: str) -> float:
        """Like `get`, but 0 when absent (a labelled counter before its first bump)."""
        found = self.get(name, **labels)
        return 0.0 if found is None else found


def _scrape(url: str) -> Page:
    resp = httpx.get(url, timeout=5)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return Page(resp.text)


def _request(xid: int) -> bytes:
    return encode(DhcpPacket(
        xid=xid, ciaddr="127.0.0.1", chaddr=bytes.fromhex(MAC.replace(":", "")),
        options=[(Opt.MESSAGE_TYPE, bytes((MessageType.REQUEST,))),
                 (Opt.VENDOR_CLASS, b"PXEClient:Arch:00007:UNDI:003016"),
                 (Opt.CLIENT_ARCH, b"\x00\x07")]))


def _dhcp_exchange(port: int) -> DhcpPacket:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind(("127.0.0.1", 0))
        client.settimeout(5)
        client.sendto(_request(41), ("127.0.0.1", port))
        return parse(client.recv(2048))


@pytest.fixture
def proxy(tmp_path: Path) -> Any:
    assignments = tmp_path / "assignments.yaml"
    assignments.write_text(f"revision: '1'\nassignments:\n- {{mac: '{MAC}', cluster: c1, "
                           "hostname: n1, role: worker, profile: p}\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "ipxe.efi").write_bytes(EFI)
    args = ["--name", "bp-metrics", "--interfaces", "lo", "--dhcp-port", "0", "--pxe-port", "0",
            "--tftp-port", "0", "--http-port", "0", "--metrics-host", "127.0.0.1",
            "--metrics-port", "0", "--conflict-watch", "off",
            "--assignments-file", str(assignments), "--boot-root", str(root),
            "--cache-path", str(tmp_path / "cache.json")]
    started = time.time()
    with BootProxyProcess(args, tmp_path / "bp.log") as proc:
        yield proc, started


def test_every_family_is_typed_and_traffic_moves_it(proxy: Any) -> None:
    proc, started = proxy
    ready = proc.ready
    url = f"http://127.0.0.1:{ready['metrics_port']}/metrics"
    pxe_port = ready["interfaces"][0]["pxe_port"]
    before = _scrape(url)

    missing = {name: kind for name, kind in EXPECTED_TYPES.items()
               if before.types.get(name) != kind}
    assert not missing, f"families absent or of the wrong type: {missing}"
    assert before.get("bootproxy_build_info", version=VERSION) == 1
    assert started - 1 <= before.value("bootproxy_last_sync_timestamp_seconds") <= time.time()
    assert before.value("bootproxy_assignments") == 1
    assert before.value("bootproxy_dhcp_acks_total", interface="lo") == 0
    assert before.value("bootproxy_dhcp_reply_latency_seconds_count",
                        interface="lo", kind="ack") == 0
    assert before.value("bootproxy_tftp_transfers_total", result="completed") == 0
    assert before.value("bootproxy_http_responses_total", status="200") == 0

    ack = _dhcp_exchange(pxe_port)  # also teaches the file filter 127.0.0.1 -> MAC
    assert ack.message_type == MessageType.ACK and ack.file == b"ipxe.efi"
    got = asyncio.run(fetch("127.0.0.1", ready["tftp_port"], "ipxe.efi", timeout=2))
    assert got.data == EFI
    with pytest.raises(TransferError):
        asyncio.run(fetch("127.0.0.1", ready["tftp_port"], "nope.efi", timeout=1, retries=1))
    assert httpx.get(f"http://127.0.0.1:{ready['http_port']}/ipxe.efi").content == EFI

    def moved() -> Page | None:
        # the server counts a transfer's end when it reads the final ACK, a moment
        # after the client has its data: scrape until the page shows every effect
        page = _scrape(url)
        done = (page.value("bootproxy_tftp_transfers_total", result="completed") == 1
                and page.value("bootproxy_http_bytes_total") >= len(EFI)
                and page.value("bootproxy_tftp_errors_total", kind="file_not_found") == 1)
        return page if done else None

    after = wait_until(moved, timeout=10, what="the traffic to show on /metrics",
                       evidence=lambda: httpx.get(url, timeout=5).text[-3000:])
    assert after.value("bootproxy_dhcp_received_total", interface="lo", port=str(pxe_port)) == 1
    assert after.value("bootproxy_dhcp_acks_total", interface="lo") == 1
    assert after.value("bootproxy_dhcp_reply_latency_seconds_count",
                       interface="lo", kind="ack") == 1
    assert after.value("bootproxy_dhcp_reply_latency_seconds_bucket",
                       interface="lo", kind="ack", le="+Inf") == 1
    assert 0 < after.value("bootproxy_dhcp_reply_latency_seconds_sum",
                           interface="lo", kind="ack") < 1
    assert after.value("bootproxy_tftp_transfers_started_total") == 1
    assert after.value("bootproxy_tftp_bytes_total") == len(EFI)
    assert after.value("bootproxy_tftp_transfers_in_flight") == 0
    # the transfer ran alone, so its thread polled for at least its first ACK
    assert (after.value("bootproxy_tftp_ack_polls_total", result="caught")
            + after.value("bootproxy_tftp_ack_polls_total", result="missed")) >= 1
    assert after.value("bootproxy_http_requests_total") == 1
    assert after.value("bootproxy_http_responses_total", status="200") == 1
    assert after.value("bootproxy_http_connections_in_flight") <= 1
    assert after.value("bootproxy_http_refused_total") == 0


def test_openmetrics_when_the_scraper_asks(proxy: Any) -> None:
    proc, _ = proxy
    resp = httpx.get(f"http://127.0.0.1:{proc.ready['metrics_port']}/metrics",
                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.headers["content-type"].startswith("application/openmetrics-text")
    assert resp.text.rstrip().endswith("# EOF")


def test_the_process_logs_only_schema_lines(proxy: Any) -> None:
    proc, _ = proxy
    _dhcp_exchange(proc.ready["interfaces"][0]["pxe_port"])
    wait_until(lambda: "dhcp_ack" in proc.log_text(), timeout=5, what="the dhcp_ack log line")
    records = [json.loads(line) for line in proc.log_text().splitlines() if line.strip()]
    logged = [r for r in records if "ts" in r]
    assert [r["event"] for r in records if "ts" not in r] == ["ready"]  # stdout's one line
    assert logged and all(list(r)[:5] == list(HEAD) for r in logged), logged[:3]
    ack = next(r for r in logged if r["event"] == "dhcp_ack")
    assert ack["level"] == "info" and ack["component"] == "bootproxy.dhcp"
    assert ack["msg"] == "dhcp_ack" and ack["proxy"] == "bp-metrics" and ack["mac"] == MAC
    plain = [r for r in logged if r["component"] == "bootproxy.httpboot"]
    assert plain and plain[0]["event"] == "message" and "listening" in plain[0]["msg"]


@pytest.mark.parametrize("value", ['we"ird', "back\\slash", "new\nline", "ünï"])
def test_label_values_round_trip_through_the_parser(value: str) -> None:
    registry = Registry()
    registry.inc("bootproxy_dhcp_drops_total", reason=value, interface="lo")
    page = Page(registry.render())
    assert page.get("bootproxy_dhcp_drops_total", reason=value, interface="lo") == 1


def test_latency_buckets_count_as_prometheus_client_does() -> None:
    """The DHCP path's cheap histogram puts every value (bounds included) where
    prometheus_client's own Histogram does."""
    values = [0.0, 0.0001, 0.00010001, 0.003, 0.025, 0.9, 1.0, 4.99, 5.0, 7.5]
    ours = Registry()
    series = ours.histogram("bootproxy_dhcp_reply_latency_seconds", interface="lo", kind="ack")
    reference = CollectorRegistry()
    theirs = Histogram("bootproxy_dhcp_reply_latency_seconds", "x", ("interface", "kind"),
                       buckets=LATENCY_BUCKETS, registry=reference)
    for value in values:
        series.observe(value)
        theirs.labels(interface="lo", kind="ack").observe(value)

    def histogram_samples(text: str) -> dict[tuple[str, str], float]:
        return {(s.name, s.labels.get("le", "")): s.value for s in Page(text).samples
                if s.name.startswith("bootproxy_dhcp_reply_latency_seconds_")
                and not s.name.endswith("_created")}

    got = histogram_samples(ours.render())
    assert got == histogram_samples(generate_latest(reference).decode())
    assert got[("bootproxy_dhcp_reply_latency_seconds_bucket", "0.0001")] == 2
    assert got[("bootproxy_dhcp_reply_latency_seconds_count", "")] == len(values)


def test_every_declared_family_is_expected_here() -> None:
    """A family added to FAMILIES must be added above too (and so to the docs' list)."""
    names = {f.name.removesuffix("_total") + ("_info" if f.kind == "info" else "")
             for f in FAMILIES}
    assert names <= set(EXPECTED_TYPES)
