"""`python -m controlplane`: run the Control Plane as a plain process.

Prints one JSON line `{"event": "ready", "url": ...}` on stdout once the
socket listens (the harness waits for it), then one JSON event per line.
`--dump-openapi` prints the API document instead of serving.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import secrets
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from .app import create_app
from .dns_update import DnsUpdateConfig, DnsUpdater
from .errors import ControlPlaneError
from .logs import JsonLog
from .seed import apply_seed, load_seed
from .store import Store
from .tls import TLS_FAULTS, TlsFiles, fault_server_cert, make_lab_ca

ADMIN_TOKEN_ENV = "FLEXLAB_CP_ADMIN_TOKEN"


def invoked_as(argv0: str | None = None) -> str:
    """How the user started the service, for usage lines: ``python -m controlplane`` or
    the console script's name (``flexlab cp serve`` passes its own)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if argv0.endswith("__main__.py") or argv0 in ("-m", "-c", ""):
        return "python -m controlplane"
    return os.path.basename(argv0) or "flexlab-controlplane"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line, shared with `flexlab cp serve`; ``prog`` is how it was invoked."""
    parser = argparse.ArgumentParser(
        prog=prog or invoked_as(),
        description="The flexlab mock Control Plane (HTTP API + SQLite store).",
    )
    parser.add_argument("--listen", default="127.0.0.1:8700", metavar="HOST:PORT",
                        help="address to listen on; port 0 picks a free one (default %(default)s)")
    parser.add_argument("--db", default="controlplane.sqlite3", metavar="PATH",
                        help="SQLite file; state survives restarts (default %(default)s)")
    parser.add_argument("--admin-token", default=None,
                        help=f"admin bearer token (default: ${ADMIN_TOKEN_ENV}, else random "
                             "and printed in the ready line)")
    parser.add_argument("--tls-dir", default=None, metavar="DIR",
                        help="serve HTTPS with a lab CA kept in DIR (created if missing)")
    parser.add_argument("--tls-name", action="append", default=[], metavar="NAME_OR_IP",
                        help="extra DNS name or IP for the server certificate (repeatable)")
    parser.add_argument("--tls-fault", choices=TLS_FAULTS, default=None,
                        help="serve a certificate clients must refuse (with --tls-dir): "
                             "signed by another CA, for another name, or expired; the "
                             "ready line still names the lab CA clients trust")
    parser.add_argument("--seed", default=None, metavar="FILE",
                        help="YAML/JSON of clusters, artifacts, profiles, proxies, machines")
    parser.add_argument("--public-url", default=None,
                        help="base URL put into boot data (default: the URL each client used)")
    parser.add_argument("--lab", default=None, help="lab id added to every log line")
    parser.add_argument("--dns-server", default=None, metavar="IP[:PORT]",
                        help="put each Ready node's hostname in this DNS server (RFC 2136)")
    parser.add_argument("--dns-zone", default=None, metavar="ZONE",
                        help="the forward zone node names go in (with --dns-server)")
    parser.add_argument("--dns-reverse-zone", action="append", default=[], metavar="ZONE",
                        help="an in-addr.arpa zone for PTR records (repeatable; the one "
                             "holding a node's address is updated)")
    parser.add_argument("--dns-key-file", default=None, metavar="FILE",
                        help="TSIG key NAME:BASE64SECRET (hmac-sha256) signing the updates")
    parser.add_argument("--dump-openapi", nargs="?", const="-", default=None, metavar="FILE",
                        help="write the OpenAPI document to FILE (or stdout) and exit")
    parser.add_argument("--http", default=None, metavar="PARSER",
                        help=f"HTTP/1.1 parser: {' or '.join(HTTP_PARSERS)} (default "
                             f"{HTTP_PARSERS[0]}, or ${HTTP_ENV})")
    parser.add_argument("--loop", default=None, metavar="LOOP",
                        help=f"event loop: {' or '.join(EVENT_LOOPS)} (default "
                             f"{EVENT_LOOPS[0]}, or ${LOOP_ENV})")
    return parser


# The C parser and loop first: a storm's every machine costs the Control Plane four
# requests, and on h11 and asyncio's own loop its CPU per request was what a 2-core lab
# host ran short of (bench/results/controlplane_cpu.json); the pure-Python pair stays
# selectable so that the difference can be measured and the pure-Python path tested.
HTTP_PARSERS = ("httptools", "h11")
EVENT_LOOPS = ("uvloop", "asyncio")
HTTP_ENV = "FLEXLAB_CP_HTTP"
LOOP_ENV = "FLEXLAB_CP_LOOP"


def _choice(given: str | None, env: str, allowed: tuple[str, ...], flag: str) -> str:
    """The flag's value, else the environment's, else the first allowed; one of ``allowed``."""
    value = given or os.environ.get(env) or allowed[0]
    if value not in allowed:
        source = flag if given else f"${env}"
        raise ControlPlaneError(f"{source} {value!r}: choose {' or '.join(allowed)}")
    return value


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, generated from the code (no server needed)."""
    with tempfile.TemporaryDirectory(prefix="flexlab-cp-openapi-") as tmp:
        store = Store(Path(tmp) / "openapi.sqlite3")
        try:
            return create_app(store, "unused").openapi()
        finally:
            store.close()


def render_openapi() -> str:
    """The committed form of the document: two-space indent, trailing newline."""
    return json.dumps(openapi_document(), indent=2) + "\n"


def parse_listen(text: str) -> tuple[str, int]:
    """Split HOST:PORT (IPv6 as [addr]:port); raise ControlPlaneError when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ControlPlaneError(f"--listen {text!r}: write it as HOST:PORT, e.g. 127.0.0.1:8700")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the service until SIGINT/SIGTERM; return the process exit code."""
    args = build_parser(prog).parse_args(argv)
    if args.dump_openapi is not None:
        text = render_openapi()
        if args.dump_openapi == "-":
            sys.stdout.write(text)
        else:
            Path(args.dump_openapi).write_text(text)
        return 0
    log = JsonLog(lab=args.lab)
    try:
        args.http = _choice(args.http, HTTP_ENV, HTTP_PARSERS, "--http")
        args.loop = _choice(args.loop, LOOP_ENV, EVENT_LOOPS, "--loop")
        return _serve(args, log)
    except ControlPlaneError as exc:
        log("error", error=exc.error, detail=exc.detail)
        return 2
    except (OSError, sqlite3.Error) as exc:
        log("error", error="cannot open the store",
            detail=f"{args.db}: {exc}; check that the directory is writable")
        return 2


def _serve(args: argparse.Namespace, log: JsonLog) -> int:
    host, port = parse_listen(args.listen)
    admin_token = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV)
    generated = admin_token is None
    admin_token = admin_token or secrets.token_urlsafe(24)
    store = Store(args.db, log=log)
    try:
        tokens: dict[str, str] = {}
        if args.seed:
            tokens = apply_seed(store, load_seed(args.seed), Path(args.seed).resolve().parent)
            log("seeded", file=args.seed, revision=store.revision())
        if args.tls_fault and not args.tls_dir:
            raise ControlPlaneError("--tls-fault needs --tls-dir (the lab CA it is a fault of)")
        tls = _tls(args, host) if args.tls_dir else None
        sock = _bind(host, port)
        bound = sock.getsockname()[1]
        scheme = "https" if tls else "http"
        shown = f"[{host}]" if ":" in host else host
        app = create_app(store, admin_token, public_url=args.public_url, log=log,
                         dns=_dns_updater(args))
        config = uvicorn.Config(
            app, log_config=None, access_log=False, log_level="warning",
            ssl_certfile=str(tls.server_cert) if tls else None,
            ssl_keyfile=str(tls.server_key) if tls else None,
            timeout_graceful_shutdown=2, http=args.http,
        )
        server = _Server(config)
        ready: dict[str, Any] = {"url": f"{scheme}://{shown}:{bound}", "db": str(args.db),
                                 "pid": os.getpid(), "revision": store.revision()}
        if tls:
            ready["ca_cert"] = str(tls.ca_cert)
        if tls and args.tls_fault:
            ready["tls_fault"] = args.tls_fault
            log("tls_fault", fault=args.tls_fault, server_cert=str(tls.server_cert),
                detail="this Control Plane serves a certificate verifying clients must refuse")
        if generated:
            ready["admin_token"] = admin_token
        if tokens:
            ready["proxy_tokens"] = tokens
        ready["http"], ready["loop"] = args.http, args.loop
        with asyncio.Runner(loop_factory=_loop_factory(args.loop)) as runner:
            runner.run(_run(server, sock, lambda: log("ready", **ready)))
        log("stopped")
        return 0
    finally:
        store.close()


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop, or None for asyncio's own."""
    if name == "uvloop":
        import uvloop  # only when chosen: h11 with asyncio needs nothing more

        return uvloop.new_event_loop
    return None


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM/SIGINT ends `main()` normally.

    Stock uvicorn re-raises the signal after shutting down, so the process
    dies with 143 before the store is closed and the `stopped` line printed.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: graceful stop; second: stop now. Never re-raised."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


async def _run(server: uvicorn.Server, sock: socket.socket, announce: Any) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        announce()
    await task


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted
    # sockets whose proto says TCP, and without it every keep-alive answer waits
    # ~40 ms for Nagle + delayed ACK. NODELAY on the listener is inherited too.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ControlPlaneError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another --listen"
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _dns_updater(args: argparse.Namespace) -> DnsUpdater | None:
    """The RFC 2136 updater the flags ask for, or None; bad flags are a clear error."""
    if args.dns_server is None:
        if args.dns_zone or args.dns_key_file or args.dns_reverse_zone:
            raise ControlPlaneError("--dns-zone/--dns-key-file need --dns-server")
        return None
    if not args.dns_zone:
        raise ControlPlaneError("--dns-server needs --dns-zone (the zone node names go in)")
    server, _, port = args.dns_server.partition(":")
    if port and not port.isdigit():
        raise ControlPlaneError(f"--dns-server {args.dns_server!r}: write it as IP[:PORT]")
    key: tuple[str | None, str | None] = (None, None)
    if args.dns_key_file:
        try:
            key = DnsUpdateConfig.parse_key(Path(args.dns_key_file).read_text())
        except OSError as exc:
            raise ControlPlaneError(f"--dns-key-file: {exc.strerror}: {args.dns_key_file}") \
                from exc
    return DnsUpdater(DnsUpdateConfig(server, args.dns_zone, int(port or 53), key[0], key[1],
                                      tuple(args.dns_reverse_zone)))


def _tls(args: argparse.Namespace, host: str) -> TlsFiles:
    names, ips = ["localhost"], ["127.0.0.1", "::1"]
    for item in [host, *args.tls_name]:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            names.append(item)
        else:
            if item not in ("0.0.0.0", "::"):
                ips.append(item)
    if args.tls_fault:
        return fault_server_cert(args.tls_dir, args.tls_fault, sorted(set(names)),
                                 sorted(set(ips)))
    return make_lab_ca(args.tls_dir, sorted(set(names)), sorted(set(ips)))


if __name__ == "__main__":
    raise SystemExit(main())
