"""Requirement 6: outbound TCP to the Control Plane on ports 80, 443 and 8888.

KubeFlex nodes and the Boot Proxy reach the Control Plane (and the internet behind it)
on these ports; a site firewall that silently drops one of them shows up much later as
a node that hangs while booting. One TCP connect per port tells the three outcomes
apart: open, refused (the host is reachable but nothing listens: a firewall REJECT or
the wrong host) and timed out (packets dropped on the way: filtered).

Also home to the two small helpers the DNS and time checks share with this one:
:func:`split_server` and :func:`control_plane_get`.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness.sitecheck.model import CheckResult, CheckVerdict, SiteContext

CP_TOKEN_ENV = "FLEXLAB_CP_ADMIN_TOKEN"  # admin token, to list the Control Plane's machines
CP_CA_ENV = "FLEXLAB_CP_CA"         # CA file for a Control Plane with a private certificate


def split_server(text: str, default_port: int) -> tuple[str, int]:
    """``"10.0.0.5"``, ``"10.0.0.5:5353"``, ``"[fd00::1]:53"`` or ``"fd00::1"`` → (host, port).

    Ports other than the default are mostly for tests (servers on loopback high ports);
    a site names its servers by address.
    """
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def show_server(host: str, port: int, default_port: int) -> str:
    """How evidence names a server: the address, with the port only when unusual."""
    if port == default_port:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def control_plane_get(url: str, path: str, *, token: str | None = None,
                      timeout: float = 5.0) -> tuple[httpx.Response, float, float]:
    """GET ``path`` on the Control Plane at ``url``; returns (response, sent, received) with
    Unix times around the call (the time check uses them to bound the CP's clock).

    Raises httpx.HTTPError when the request cannot be made; a CA file in
    ``$FLEXLAB_CP_CA`` is trusted for a Control Plane with a private certificate.
    """
    verify: Any = os.environ.get(CP_CA_ENV) or True
    if isinstance(verify, str):
        import ssl

        verify = ssl.create_default_context(cafile=verify)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url.rstrip("/"), timeout=timeout, verify=verify,
                      headers=headers, trust_env=False) as client:
        sent = time.time()
        response = client.get(path)
        received = time.time()
    return response, sent, received


def target_host(ctx: SiteContext) -> tuple[str, str] | None:
    """(host, where it came from) for the port tests, or None when nothing was named."""
    opts = ctx.options
    if opts.control_plane:
        host = urlsplit(opts.control_plane).hostname
        if host:
            return host, f"the Control Plane URL {opts.control_plane}"
    if opts.port_target:
        target = opts.port_target
        host = urlsplit(target).hostname if "://" in target else split_server(target, 0)[0]
        if host:
            return host, "--port-target"
    return None


def probe_port(host: str, port: int, timeout: float) -> tuple[str, str, float]:
    """One TCP connect: (outcome, detail, seconds) with outcome open|refused|timeout|
    unreachable|unresolved|error."""
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        return "refused", "connection refused (RST)", time.monotonic() - start
    except TimeoutError:
        return "timeout", f"no answer within {timeout:g} s", time.monotonic() - start
    except socket.gaierror as exc:
        return "unresolved", f"cannot resolve {host}: {exc.strerror}", time.monotonic() - start
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable", exc.strerror or str(exc), time.monotonic() - start
        return "error", exc.strerror or str(exc), time.monotonic() - start
    return "open", "connected", time.monotonic() - start


def _port_result(host: str, port: int, timeout: float) -> CheckResult:
    outcome, detail, took = probe_port(host, port, timeout)
    name = f"outbound.tcp{port}"
    evidence = [f"TCP connect {host}:{port}: {detail} after {took * 1000:.0f} ms"]
    data = {"host": host, "port": port, "outcome": outcome, "ms": round(took * 1000, 1)}
    if outcome == "open":
        return CheckResult("outbound", name, CheckVerdict.PASS, f"port {port} to {host}: open",
                           evidence, data=data)
    if outcome == "refused":
        return CheckResult(
            "outbound", name, CheckVerdict.WARN,
            f"port {port} to {host}: refused (host reachable, nothing listens there)",
            evidence, data=data,
            hint=f"the path is open but no service answers on {port}: check the Control "
                 "Plane is running there, or that a firewall is not rejecting (REJECT) it")
    if outcome == "timeout":
        return CheckResult(
            "outbound", name, CheckVerdict.FAIL, f"port {port} to {host}: timed out (filtered?)",
            evidence, data=data,
            hint=f"packets to {host}:{port} are dropped on the way: open TCP {port} "
                 "outbound on the site firewall/proxy for the nodes' subnet")
    if outcome == "unreachable":
        return CheckResult(
            "outbound", name, CheckVerdict.FAIL, f"port {port} to {host}: {detail}", evidence,
            data=data, hint="no route to that host from this LAN: check the site's default "
                            "gateway (DHCP option 3) and routing")
    return CheckResult("outbound", name, CheckVerdict.FAIL, f"port {port} to {host}: {detail}",
                       evidence, data=data,
                       hint="fix name resolution for the target, or give an address")


def _healthz_result(url: str, timeout: float) -> CheckResult:
    try:
        response, sent, received = control_plane_get(url, "/healthz", timeout=timeout)
    except httpx.HTTPError as exc:
        hint = "the Control Plane does not answer HTTP: check the URL and the ports above"
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            hint = (f"its TLS certificate is not trusted here: set {CP_CA_ENV}=/path/ca.pem "
                    "(and make sure nodes trust it too)")
        return CheckResult("outbound", "outbound.healthz", CheckVerdict.FAIL,
                           f"GET {url}/healthz failed: {type(exc).__name__}",
                           [f"GET {url.rstrip('/')}/healthz: {exc or type(exc).__name__}"],
                           hint=hint)
    took = (received - sent) * 1000
    evidence = [f"GET {url.rstrip('/')}/healthz → {response.status_code} in {took:.0f} ms: "
                f"{response.text[:200]}"]
    ok = response.status_code == 200
    try:
        ok = ok and response.json().get("status") == "ok"
    except ValueError:
        ok = False
    if ok:
        return CheckResult("outbound", "outbound.healthz", CheckVerdict.PASS,
                           "the Control Plane answers /healthz", evidence)
    return CheckResult("outbound", "outbound.healthz", CheckVerdict.FAIL,
                       f"the Control Plane's /healthz answered {response.status_code}", evidence,
                       hint="something answers at that URL but it is not a healthy Control "
                            "Plane (a proxy or captive portal?): check the URL")


def check_outbound(ctx: SiteContext) -> list[CheckResult]:
    """One TCP connect per port in ``options.ports`` to the Control Plane's host (or
    ``--port-target``), plus GET /healthz when a Control Plane URL is given."""
    opts = ctx.options
    target = target_host(ctx)
    if target is None:
        return [CheckResult("outbound", "outbound.ports", CheckVerdict.SKIP,
                            "no target: give --control-plane URL or --port-target HOST",
                            hint="outbound ports are tested against the Control Plane's host")]
    if opts.passive:
        return [CheckResult("outbound", "outbound.ports", CheckVerdict.SKIP,
                            "passive mode: no connections made")]
    host, source = target
    ctx.log.append(f"outbound: testing TCP {','.join(map(str, opts.ports))} to {host} "
                   f"(from {source})")
    results = [_port_result(host, port, opts.connect_timeout) for port in opts.ports]
    if opts.control_plane:
        results.append(_healthz_result(opts.control_plane, max(opts.connect_timeout, 2.0)))
    return results
