"""The Boot Proxy's Prometheus metrics (prometheus_client) and its `/metrics` + `/healthz` endpoint.

Every family the proxy itself bumps is declared once in `FAMILIES`, on a registry of the
proxy's own rather than prometheus_client's global one: tests run several proxies in one
process, and each must count only its own traffic. The TFTP and HTTP boot servers keep
plain counters (they are stdlib-only) that `bootproxy.filemetrics` reads at scrape time.

The DHCP path bumps a few series per packet, so it holds label children worked out once
(`Registry.counter`, `Registry.histogram`): a bump is then one locked add, and a latency
observation two plain additions (`LatencySeries`).

`/metrics` is served by `MetricsServer`, the proxy's one small asyncio HTTP endpoint for
operators (the same listener answers `/healthz`); prometheus_client's own HTTP server
is not used, so there is no extra thread and no extra port.
"""

from __future__ import annotations

import asyncio
import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = ["FAMILIES", "LATENCY_BUCKETS", "Family", "LatencySeries", "MetricsServer",
           "Registry", "Series"]


class Series(Protocol):
    """One labelled counter series, as `Registry.counter` hands it out."""

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (>= 0)."""


class Observer(Protocol):
    """One labelled histogram series, as `Registry.histogram` hands it out."""

    def observe(self, amount: float) -> None:
        """Count one observation of `amount`."""


@dataclass(frozen=True)
class Family:
    """One metric family the proxy declares: its type, help text and label names."""

    name: str
    kind: str  # counter, gauge, histogram or info
    help: str
    labels: tuple[str, ...] = ()


# Reply latency from the datagram leaving the socket buffer to its reply's sendto: a
# healthy proxy answers in well under a millisecond; --reply-delay-ms (TIME-4) and an
# overloaded loop show up in the upper buckets, and anything past 1 s misses a ROM's
# first retransmission window.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5, 5.0)

FAMILIES: tuple[Family, ...] = (
    Family("bootproxy_dhcp_offers_total", "counter",
           "ProxyDHCP OFFERs sent, by interface", ("interface",)),
    Family("bootproxy_dhcp_acks_total", "counter",
           "ProxyDHCP ACKs sent (4011 and 43.71 on 67), by interface", ("interface",)),
    Family("bootproxy_dhcp_drops_total", "counter",
           "DHCP packets answered with silence, by reason", ("reason", "interface")),
    Family("bootproxy_dhcp_received_total", "counter",
           "DHCP packets received, by interface and port", ("interface", "port")),
    Family("bootproxy_dhcp_reply_latency_seconds", "histogram",
           "Seconds from reading a DHCP request off the socket to sending its reply "
           "(--reply-delay-ms included), by interface and reply kind", ("interface", "kind")),
    Family("bootproxy_conflicts_total", "counter",
           "Offers from another ProxyDHCP to a MAC this proxy serves", ("interface",)),
    Family("bootproxy_cp_sync_errors_total", "counter",
           "Failed Control Plane assignment syncs, by kind", ("kind",)),
    Family("bootproxy_heartbeats_total", "counter",
           "Heartbeats sent to the Control Plane, by result", ("result",)),
    Family("bootproxy_cp_tls_failures_total", "counter",
           "Control Plane certificates refused, by reason "
           "(unknown-ca, hostname-mismatch, expired, not-yet-valid, verify-failed)", ("reason",)),
    Family("bootproxy_cp_tls_ok", "gauge",
           "1 while the last Control Plane handshake verified (or none failed)"),
    Family("bootproxy_assignments", "gauge", "MACs this proxy currently serves"),
    Family("bootproxy_last_sync_timestamp_seconds", "gauge",
           "Unix time of the last good answer from the Control Plane (or of loading "
           "--assignments-file); 0 until the first one"),
    Family("bootproxy_build", "info", "The Boot Proxy's version"),
)


class Registry:
    """The proxy's metric families on a prometheus_client registry of its own (thread-safe)."""

    def __init__(self) -> None:
        self.prometheus = CollectorRegistry()
        self._families: dict[str, Any] = {}
        for family in FAMILIES:
            self._families[family.name] = _make(family, self.prometheus)

    def _family(self, name: str) -> Any:
        try:
            return self._families[name]
        except KeyError:
            raise KeyError(f"metric {name!r} is not declared in bootproxy.metrics.FAMILIES"
                           ) from None

    def counter(self, name: str, **labels: str) -> Series:
        """The counter series `name{labels}`, for code that bumps it often.

        The series appears on /metrics from this call on (at 0 until bumped).
        """
        family = self._family(name)
        return family.labels(**labels) if labels else family

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add `amount` to counter `name` with `labels`."""
        self.counter(name, **labels).inc(amount)

    def histogram(self, name: str, **labels: str) -> Observer:
        """The histogram series `name{labels}`; hold it where observations are frequent."""
        return self._family(name).labels(**labels)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Make gauge `name` read `read()` at every scrape."""
        self._family(name).set_function(read)

    def build_info(self, **labels: str) -> None:
        """Set `bootproxy_build_info{labels} 1` (version and such)."""
        self._family("bootproxy_build").info(labels)

    def register(self, collector: Collector) -> None:
        """Add a collector read at scrape time (TFTP/HTTP counters kept elsewhere)."""
        self.prometheus.register(collector)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when absent), by its sample name; for tests and probes."""
        found = self.prometheus.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def total(self, name: str) -> float:
        """The sum of sample `name` over all its label sets."""
        return sum(s.value for s in self._samples() if s.name == name)

    def _samples(self) -> Iterable[Any]:
        for metric in self.prometheus.collect():
            yield from metric.samples

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The page for a scraper's `Accept` header: (body, content type).

        Prometheus' text format unless the scraper asks for OpenMetrics.
        """
        encode, content_type = choose_encoder(accept)
        return encode(self.prometheus), content_type

    def render(self) -> str:
        """The page in Prometheus' text format (what a scrape without Accept gets)."""
        return self.exposition()[0].decode()


class LatencySeries:
    """One histogram series kept as plain numbers, for the DHCP reply path.

    prometheus_client's `Histogram.observe` takes two locks and scans the buckets
    (~0.8 µs, a few per cent of a ~20 µs reply); this is a bisect and two additions.
    No lock: the proxy observes and is scraped on its one event loop thread, and a
    scrape from another thread can at worst see one observation half counted.
    """

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, amount: float) -> None:
        """Count `amount` in the first bucket whose bound is >= it (`le` semantics)."""
        self.counts[bisect_left(LATENCY_BUCKETS, amount)] += 1
        self.total += amount


class _Histograms(Collector):
    """A histogram family of `LatencySeries`, one per label set, rendered at scrape time."""

    def __init__(self, family: Family) -> None:
        self.family = family
        self._series: dict[tuple[str, ...], LatencySeries] = {}
        self._bounds = [floatToGoString(b) for b in LATENCY_BUCKETS] + ["+Inf"]

    def labels(self, **labels: str) -> LatencySeries:
        key = tuple(labels[name] for name in self.family.labels)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = LatencySeries()
        return series

    def collect(self) -> Iterator[Metric]:
        metric = HistogramMetricFamily(self.family.name, self.family.help,
                                       labels=self.family.labels)
        for key, series in sorted(self._series.items()):
            running, buckets = 0, []
            for bound, count in zip(self._bounds, series.counts, strict=True):
                running += count
                buckets.append((bound, float(running)))
            metric.add_metric(list(key), buckets, series.total)
        yield metric


def _make(family: Family, registry: CollectorRegistry) -> Any:
    if family.kind == "counter":
        return Counter(family.name, family.help, family.labels, registry=registry)
    if family.kind == "gauge":
        return Gauge(family.name, family.help, family.labels, registry=registry)
    if family.kind == "histogram":
        histograms = _Histograms(family)
        registry.register(histograms)
        return histograms
    if family.kind == "info":
        return Info(family.name, family.help, family.labels, registry=registry)
    raise ValueError(f"{family.name}: unknown metric kind {family.kind!r}")


class MetricsServer:
    """The proxy's operator endpoint: `/metrics` and `/healthz` (GET and HEAD), HTTP/1.1.

    `health` returns (ok, details); `/healthz` answers 200 or 503 with the
    details as JSON so a probe can tell why the proxy is unhealthy.
    """

    def __init__(
        self,
        registry: Registry,
        health: Callable[[], tuple[bool, dict[str, object]]],
        host: str = "127.0.0.1",
        port: int = 9467,
    ) -> None:
        self.registry = registry
        self.health = health
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Bind the listener; `port` is updated with the real port when 0 was asked for."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and wait for the server to close."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _answer(self, method: str, path: str, accept: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET or HEAD\n"
        if path == "/metrics":
            body, ctype = self.registry.exposition(accept)
            return "200 OK", ctype, body
        if path == "/healthz":
            ok, details = self.health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", **details}).encode()
            return ("200 OK" if ok else "503 Service Unavailable"), "application/json", body
        return "404 Not Found", "text/plain", b"try /metrics or /healthz\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            request, *header_lines = head.decode("latin-1").split("\r\n")
            method, _, rest = request.partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            accept = ""
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "accept":
                    accept = value.strip()
            status, ctype, body = self._answer(method, path, accept)
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except ConnectionError:
            pass
        finally:
            writer.close()
