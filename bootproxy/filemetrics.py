"""TFTP and HTTP boot counters as Prometheus families, read at scrape time.

The two file servers stay stdlib-only and count into plain dataclasses
(`TftpCounters`, `HttpCounters`) on their own hot paths; these collectors turn a
snapshot of those into metric families whenever /metrics is scraped, so a
transfer costs no metrics call at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # the HTTP boot subpackage is optional (see BootProxy._start_http)
    from bootproxy.httpboot.counters import HttpCounters
    from bootproxy.tftp.counters import TftpCounters

__all__ = ["HttpCollector", "TftpCollector"]


class TftpCollector(Collector):
    """`bootproxy_tftp_*`: bytes, transfers started/ended by result, errors by kind, in flight."""

    def __init__(self, counters: TftpCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        """The TFTP families from the counters as they are now."""
        c = self.counters
        yield CounterMetricFamily("bootproxy_tftp_bytes", "TFTP payload bytes sent",
                                  value=c.bytes_sent)
        yield CounterMetricFamily("bootproxy_tftp_transfers_started",
                                  "TFTP read transfers started (RRQ accepted)",
                                  value=c.transfers_started)
        ended = CounterMetricFamily(
            "bootproxy_tftp_transfers",
            "TFTP transfers ended, by result (option_probe: the client stopped after the "
            "OACK, e.g. an EDK2 tsize probe; not a failure)", labels=("result",))
        ended.add_metric(("completed",), c.transfers_completed)
        ended.add_metric(("failed",), c.transfers_failed)
        ended.add_metric(("option_probe",), c.option_probes)
        yield ended
        errors = CounterMetricFamily(
            "bootproxy_tftp_errors",
            "TFTP requests refused or transfers lost, by kind (file_not_found, "
            "access_violation, timeout, refused_client, busy, ...)", labels=("kind",))
        for kind, count in sorted(dict(c.errors).items()):
            errors.add_metric((kind,), count)
        yield errors
        polls = CounterMetricFamily(
            "bootproxy_tftp_ack_polls",
            "A lone transfer's polls for its next ACK before sleeping, by result (caught: "
            "the ACK came inside the window; missed: it did not, the CPU spent for nothing)",
            labels=("result",))
        polls.add_metric(("caught",), c.acks_polled)
        polls.add_metric(("missed",), c.ack_polls_missed)
        yield polls
        yield GaugeMetricFamily("bootproxy_tftp_transfers_in_flight",
                                "TFTP transfers running now", value=c.active)


class HttpCollector(Collector):
    """`bootproxy_http_*`: bytes, requests, responses by status, scripts, refusals, in flight."""

    def __init__(self, counters: HttpCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        """The HTTP boot families from the counters as they are now."""
        c = self.counters
        yield CounterMetricFamily("bootproxy_http_bytes", "HTTP boot body bytes sent",
                                  value=c.bytes_sent)
        yield CounterMetricFamily("bootproxy_http_requests", "HTTP boot requests read",
                                  value=c.requests)
        responses = CounterMetricFamily("bootproxy_http_responses",
                                        "HTTP boot responses, by status code",
                                        labels=("status",))
        for status, count in sorted(dict(c.responses).items()):
            responses.add_metric((str(status),), count)
        yield responses
        yield CounterMetricFamily("bootproxy_http_scripts",
                                  "iPXE scripts handed out (GET /boot/<mac>.ipxe answered 200)",
                                  value=c.scripts_served)
        yield CounterMetricFamily("bootproxy_http_refused",
                                  "HTTP boot requests refused by the MAC/IP filter (answered 404)",
                                  value=c.refused)
        yield GaugeMetricFamily("bootproxy_http_connections_in_flight",
                                "HTTP boot connections open now", value=c.active_connections)
