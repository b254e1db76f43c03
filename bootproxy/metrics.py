"""Prometheus text metrics and the `/metrics` + `/healthz` HTTP endpoint.

A tiny in-process registry (no prometheus_client dependency): counters with
labels, gauges read from callables at scrape time (so CP sync age is always
current), rendered in the text exposition format 0.0.4.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

Series = dict[tuple[tuple[str, str], ...], float]

__all__ = ["REGISTRY_HELP", "Counter", "MetricsServer", "Registry"]

REGISTRY_HELP: dict[str, str] = {
    "bootproxy_dhcp_offers_total": "ProxyDHCP OFFERs sent, by interface",
    "bootproxy_dhcp_acks_total": "ProxyDHCP ACKs sent (4011 and 43.71 on 67), by interface",
    "bootproxy_dhcp_drops_total": "DHCP packets answered with silence, by reason",
    "bootproxy_dhcp_received_total": "DHCP packets received, by interface and port",
    "bootproxy_tftp_bytes_total": "TFTP payload bytes sent",
    "bootproxy_http_bytes_total": "HTTP boot body bytes sent",
    "bootproxy_conflicts_total": "Offers from another ProxyDHCP to a MAC this proxy serves",
    "bootproxy_cp_sync_age_seconds": "Seconds since the last good answer from the Control Plane",
    "bootproxy_cp_sync_errors_total": "Failed Control Plane assignment syncs, by kind",
    "bootproxy_assignments": "MACs this proxy currently serves",
    "bootproxy_heartbeats_total": "Heartbeats sent to the Control Plane, by result",
    "bootproxy_cp_tls_failures_total": "Control Plane certificates refused, by reason "
    "(unknown-ca, hostname-mismatch, expired, not-yet-valid, verify-failed)",
    "bootproxy_cp_tls_ok": "1 while the last Control Plane handshake verified (or none failed)",
}


def _label_text(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"


class Registry:
    """Counters and gauges shared by every part of the proxy (thread-safe, cheap to bump)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self._gauges: dict[str, Callable[[], float | None]] = {}
        self._collectors: dict[str, Callable[[], Series]] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add `amount` to counter `name` with `labels`."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._counters.setdefault(name, {})
            series[key] = series.get(key, 0.0) + amount

    def counter(self, name: str, **labels: str) -> Counter:
        """A handle on one counter series with its label key worked out once.

        The DHCP path bumps a few series per packet; sorting the labels on every
        bump was a measurable share of its time. The series only appears in
        `render` once it has been bumped, exactly as with `inc`.
        """
        return Counter(self, name, tuple(sorted(labels.items())))

    def _add(self, name: str, key: tuple[tuple[str, str], ...], amount: float) -> None:
        with self._lock:
            series = self._counters.get(name)
            if series is None:
                series = self._counters[name] = {}
            series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        """Current counter value (0 if never bumped); used by tests and /healthz."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            return self._counters.get(name, {}).get(key, 0.0)

    def total(self, name: str) -> float:
        """Sum of a counter over all its label sets."""
        with self._lock:
            return sum(self._counters.get(name, {}).values())

    def gauge(self, name: str, read: Callable[[], float | None]) -> None:
        """Register a gauge read at scrape time; `read` returning None omits the sample."""
        with self._lock:
            self._gauges[name] = read

    def collector(self, name: str, read: Callable[[], Series]) -> None:
        """Register a counter owned elsewhere (e.g. TFTP bytes), read at scrape time."""
        with self._lock:
            self._collectors[name] = read

    def render(self) -> str:
        """Render every metric in Prometheus text format."""
        lines: list[str] = []
        with self._lock:
            counters = {n: dict(s) for n, s in self._counters.items()}
            gauges = dict(self._gauges)
            collectors = dict(self._collectors)
        for cname, collect in collectors.items():
            counters[cname] = {**counters.get(cname, {}), **collect()}
        # Every known counter is rendered, at 0 before its first bump, so dashboards and
        # conformance checks can rely on the series existing.
        known_counters = {n for n in REGISTRY_HELP if n.endswith("_total")}
        for name in sorted((set(counters) | known_counters) - set(gauges)):
            lines.append(f"# HELP {name} {REGISTRY_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} counter")
            series = counters.get(name) or {(): 0.0}
            for labels, value in sorted(series.items()):
                lines.append(f"{name}{_label_text(labels)} {value:g}")
        for name, read in sorted(gauges.items()):
            sample = read()
            lines.append(f"# HELP {name} {REGISTRY_HELP.get(name, name)}")
            lines.append(f"# TYPE {name} gauge")
            if sample is not None:
                lines.append(f"{name} {sample:g}")
        return "\n".join(lines) + "\n"


class Counter:
    """One labelled series of a `Registry` counter (see `Registry.counter`)."""

    __slots__ = ("_key", "_name", "_registry")

    def __init__(
        self, registry: Registry, name: str, key: tuple[tuple[str, str], ...]
    ) -> None:
        self._registry = registry
        self._name = name
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` to this series."""
        self._registry._add(self._name, self._key, amount)


class MetricsServer:
    """A minimal asyncio HTTP/1.1 server for `/metrics` and `/healthz` (GET and HEAD).

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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET or HEAD\n"
            elif path == "/metrics":
                status, ctype = "200 OK", "text/plain; version=0.0.4"
                body = self.registry.render().encode()
            elif path == "/healthz":
                ok, details = self.health()
                status = "200 OK" if ok else "503 Service Unavailable"
                ctype = "application/json"
                body = json.dumps({"status": "ok" if ok else "unhealthy", **details}).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics or /healthz\n"
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
